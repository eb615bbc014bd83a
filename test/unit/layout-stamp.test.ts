/**
 * The local job keeps its served tree (mirror, stand-ins, ecosystem repository) while its stamp is unchanged: the
 * stamp must change with anything the tree is made from, and only with that.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { codeDigest, layoutStamp, type LayoutInputs } from "../../builder/local/layout-stamp";

const BASE: LayoutInputs = {
  upstreams: [
    {
      release: "debian-12",
      arch: "x86_64",
      location: { image: "https://cloud.debian.org/x.qcow2", checksums: "https://cloud.debian.org/SHA512SUMS" },
      format: "sha512sums",
      signature: { kind: "detached" },
      hex: "a".repeat(128),
    },
  ],
  standIns: { "https://wordpress.org/a.tar.gz": "b".repeat(64), "https://example.org/c": "c".repeat(64) },
  ecosystem: { version: "1.0.0+local0123456789", keyPath: "scaleway-ecosystem.asc" },
  keys: [{ fingerprint: "56D26DDC1084F765F849EB832779D1AE892F5665", sha256: "d".repeat(64) }],
  code: "e".repeat(64),
};

describe("the served tree's stamp", () => {
  it("does not depend on the order the stand-ins are listed in", () => {
    const reversed = Object.fromEntries(Object.entries(BASE.standIns).reverse());
    expect(layoutStamp({ ...BASE, standIns: reversed })).toBe(layoutStamp(BASE));
  });

  it.each<[string, LayoutInputs]>([
    ["another fixture digest", { ...BASE, upstreams: [{ ...BASE.upstreams[0]!, hex: "f".repeat(128) }] }],
    ["another pinned URL", { ...BASE, upstreams: [{ ...BASE.upstreams[0]!, location: { image: "https://x/y" } }] }],
    ["another checksum format", { ...BASE, upstreams: [{ ...BASE.upstreams[0]!, format: "sha256sums" }] }],
    ["another signature spec", { ...BASE, upstreams: [{ ...BASE.upstreams[0]!, signature: null }] }],
    ["another architecture", { ...BASE, upstreams: [{ ...BASE.upstreams[0]!, arch: "arm64" }] }],
    ["one upstream more", { ...BASE, upstreams: [...BASE.upstreams, { ...BASE.upstreams[0]!, release: "d13" }] }],
    ["another stand-in digest", { ...BASE, standIns: { ...BASE.standIns, "https://example.org/c": "0".repeat(64) } }],
    ["one stand-in fewer", { ...BASE, standIns: { "https://example.org/c": "c".repeat(64) } }],
    ["another ecosystem version", { ...BASE, ecosystem: { ...BASE.ecosystem, version: "1.0.1+local0123456789" } }],
    ["another key path", { ...BASE, ecosystem: { ...BASE.ecosystem, keyPath: "key.asc" } }],
    ["another key file", { ...BASE, keys: [{ ...BASE.keys[0]!, sha256: "0".repeat(64) }] }],
    ["other code", { ...BASE, code: "0".repeat(64) }],
  ])("changes with %s", (_, changed) => {
    expect(layoutStamp(changed)).not.toBe(layoutStamp(BASE));
  });
});

describe("the digest of the code laying the tree out", () => {
  const dir = mkdtempSync(join(tmpdir(), "layout-code-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("changes with a source's name or content, not with a source map or another file", () => {
    writeFileSync(join(dir, "mirror.js"), "a");
    const before = codeDigest(dir);
    writeFileSync(join(dir, "mirror.js.map"), "{}");
    writeFileSync(join(dir, "README.md"), "x");
    expect(codeDigest(dir)).toBe(before);
    writeFileSync(join(dir, "mirror.js"), "b");
    expect(codeDigest(dir)).not.toBe(before);
    writeFileSync(join(dir, "mirror.js"), "a");
    expect(codeDigest(dir)).toBe(before);
    writeFileSync(join(dir, "mirror.ts"), "a");
    expect(codeDigest(dir)).not.toBe(before);
  });
});
