/**
 * The local job's served tree (fixture mirror, stand-ins, signed scaleway-ecosystem repository) is laid out once and
 * kept while its stamp holds: a second start signs nothing again, and a file missing from the tree, or a stamp that
 * no longer matches, lays it out again. Real parts: the cached fixture, gpg, dpkg-deb, versitygw, on free ports.
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { osBase, withOverrides } from "../../images";
import { localStack } from "../../builder/local/local-job";
import { startLocalServices } from "../../builder/local/local-services";
import { mirrorPath } from "../../builder/local/mirror";
import { freePort } from "../../builder/system/free-port";
import { upstreamLocation } from "../../builder/core/upstream-url";

let state: string;
const saved = process.env.FACTORY_LOCAL_STATE;

beforeAll(() => {
  state = mkdtempSync(join(tmpdir(), "local-layout-"));
  process.env.FACTORY_LOCAL_STATE = state;
});
afterAll(() => {
  if (saved === undefined) delete process.env.FACTORY_LOCAL_STATE;
  else process.env.FACTORY_LOCAL_STATE = saved;
  rmSync(state, { recursive: true, force: true });
});

describe("the local job's served tree", () => {
  it("is laid out once, kept while its stamp holds, and laid out again when a file is missing or the stamp differs", async () => {
    const stack = await localStack();
    const settings = {
      ...stack.settings,
      mirror: `http://127.0.0.1:${await freePort()}/upstream`,
      s3Endpoint: `http://127.0.0.1:${await freePort()}`,
    };
    const catalog = withOverrides(stack.catalog, settings);
    const debian = stack.plans.find((p) => p.release.id === "debian-12")!;
    const where = upstreamLocation(osBase(catalog, debian.release), debian.arch);
    const start = async () => {
      const services = await startLocalServices({ settings, plans: stack.plans, catalog, standIns: stack.standIns });
      try {
        // What publish resolves first: the signed checksum file, served.
        const res = await fetch(
          `${services.mirror.url}/upstream/${new URL(where.checksums).host}${new URL(where.checksums).pathname}`,
        );
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      } finally {
        await services.close();
      }
    };
    const www = join(state, "www");
    const inRelease = join(www, "packages", "debian", "InRelease");
    const signedAt = () => statSync(inRelease).mtimeMs;

    await start();
    expect(existsSync(`${www}.stamp`)).toBe(true);
    const first = signedAt();
    await start();
    expect(signedAt(), "kept: nothing signed again").toBe(first);

    const checksums = mirrorPath(www, where.checksums);
    rmSync(checksums);
    await start();
    expect(existsSync(checksums), "a missing file lays the tree out again").toBe(true);
    expect(signedAt()).not.toBe(first);

    const second = signedAt();
    writeFileSync(`${www}.stamp`, "another layout\n");
    await start();
    expect(signedAt(), "another stamp lays the tree out again").not.toBe(second);
  });
});
