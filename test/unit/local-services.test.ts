import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { digestsOf, ensureFixtureDigests } from "../../builder/local/fixture";
import { projectRoot } from "../../builder/system/paths";
import { upstreamsToMirror } from "../../builder/local/local-services";

describe("the upstreams the local job mirrors", () => {
  const debian = { id: "debian-12" };
  const ubuntu = { id: "ubuntu-24.04" };
  it.each([
    { name: "none", bases: [], want: [] },
    {
      name: "a base and two apps layered on it: one upstream",
      bases: [
        { os: debian, arch: "x86_64" },
        { os: debian, arch: "x86_64" },
        { os: debian, arch: "x86_64" },
      ],
      want: ["debian-12/x86_64"],
    },
    {
      name: "another architecture or release is another upstream, in first-seen order",
      bases: [
        { os: debian, arch: "x86_64" },
        { os: ubuntu, arch: "x86_64" },
        { os: debian, arch: "arm64" },
        { os: ubuntu, arch: "x86_64" },
      ],
      want: ["debian-12/x86_64", "ubuntu-24.04/x86_64", "debian-12/arm64"],
    },
  ])("$name", ({ bases, want }) => {
    expect(upstreamsToMirror(bases).map((u) => `${u.os.id}/${u.arch}`)).toEqual(want);
  });
});

describe("digests of one file from one read", () => {
  const dir = mkdtempSync(join(tmpdir(), "digests-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // Across the 1 MiB read size, so a chunk boundary falls inside the file.
  const bytes = Buffer.alloc(3 * 2 ** 20 + 12_345);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  const file = join(dir, "image");
  writeFileSync(file, bytes);
  const expected = (algo: string) => createHash(algo).update(bytes).digest("hex");

  it.each([[["sha256"]], [["sha256", "sha512"]], [["sha512", "sha1"]], [[]]] as const)("%j", async (algos) => {
    const got = await digestsOf(file, algos);
    expect(got).toEqual(Object.fromEntries(algos.map((a) => [a, expected(a)])));
  });
});

describe("the fixture's digests for the mirror", () => {
  const cache = mkdtempSync(join(tmpdir(), "fixture-cache-"));
  const saved = process.env.FACTORY_CACHE;
  afterAll(() => {
    if (saved === undefined) delete process.env.FACTORY_CACHE;
    else process.env.FACTORY_CACHE = saved;
    rmSync(cache, { recursive: true, force: true });
  });
  // A cached fixture as ensureFixture names it (by the build script's digest), with its recorded sha256.
  const placeFixture = (bytes: Buffer) => {
    process.env.FACTORY_CACHE = cache;
    const script = readFileSync(join(projectRoot(), "test", "fixtures", "build-debian-image.sh"));
    const file = join(
      cache,
      "fixtures",
      `debian-12-${createHash("sha256").update(script).digest("hex").slice(0, 16)}.qcow2`,
    );
    mkdirSync(join(cache, "fixtures"), { recursive: true });
    writeFileSync(file, bytes);
    writeFileSync(`${file}.sha256`, `${createHash("sha256").update(bytes).digest("hex")}\n`);
    return file;
  };
  const bytes = Buffer.from("a fixture's bytes ".repeat(10_000));
  const sha = (algo: string, b = bytes) => createHash(algo).update(b).digest("hex");

  it("hashes once, records the sha512 beside the sha256 it was read with, and trusts it only for that sha256", async () => {
    const file = placeFixture(bytes);
    expect(await ensureFixtureDigests(["sha512"])).toEqual({
      file,
      digests: { sha256: sha("sha256"), sha512: sha("sha512") },
    });
    expect(JSON.parse(readFileSync(`${file}.digests.json`, "utf8"))).toEqual({
      sha256: sha("sha256"),
      sha512: sha("sha512"),
    });
    // A record naming another sha256 (other bytes) is not used: the sha512 is read again.
    writeFileSync(`${file}.digests.json`, JSON.stringify({ sha256: sha("sha256", Buffer.from("x")), sha512: "0" }));
    expect((await ensureFixtureDigests(["sha512"])).digests.sha512).toBe(sha("sha512"));
    // A record for these bytes is used as it stands (what the sha256 read proves is that the bytes are the same).
    writeFileSync(`${file}.digests.json`, JSON.stringify({ sha256: sha("sha256"), sha512: "recorded" }));
    expect((await ensureFixtureDigests(["sha512"])).digests).toEqual({ sha256: sha("sha256"), sha512: "recorded" });
  });
});
