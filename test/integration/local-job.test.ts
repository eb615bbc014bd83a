/**
 * The README's main command, `image-factory local`, run as the built CLI: the local stack's images built and
 * published through the mirror into the embedded S3 server, then a second run that finds everything in place.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../builder/exec";
import { planStack } from "../../builder/plan";
import { readStackSettings } from "../../builder/stack-files";
import { loadCatalog } from "../../images";

const ROOT = join(__dirname, "..", "..");
const state = mkdtempSync(join(tmpdir(), "factory-local-"));
const cli = (...args: string[]) =>
  run(process.execPath, [join(ROOT, "dist", "builder", "cli.js"), ...args], { env: { ...process.env, FACTORY_LOCAL_STATE: state } });

afterAll(() => rmSync(state, { recursive: true, force: true }));

describe("image-factory local", () => {
  const settings = readStackSettings(ROOT, "local", loadCatalog());
  const plans = planStack(loadCatalog(), settings);

  it("publishes every image the local stack plans into the embedded S3 bucket", async () => {
    expect(existsSync(join(ROOT, "dist", "builder", "cli.js"))).toBe(true);
    const { stdout } = await cli("local", "--json");
    const results = JSON.parse(stdout) as { image: string; key: string; uploadedBytes: number }[];
    expect(results.map((r) => r.image)).toEqual(plans.map((p) => p.name));
    for (const r of results) expect(r.uploadedBytes).toBeGreaterThan(0);
    // versitygw's posix backend keeps objects as files under <root>/<bucket>/<key>.
    for (const p of plans) expect(existsSync(join(state, "s3", settings.bucket, p.artifactKey))).toBe(true);
    expect(readdirSync(join(state, "s3", settings.bucket, "images", "debian-12", "x86_64")).sort()).toEqual(
      [`${plans[0]!.contentHash}.qcow2`, `${plans[0]!.contentHash}.qcow2.manifest.json`, `${plans[0]!.contentHash}.qcow2.refs`].sort(),
    );
  });

  it("does nothing the second time: no build, no upload", async () => {
    const { stdout } = await cli("local", "--json");
    const results = JSON.parse(stdout) as { built: boolean; uploadedBytes: number }[];
    expect(results.every((r) => !r.built && r.uploadedBytes === 0)).toBe(true);
  });
});
