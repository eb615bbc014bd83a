/**
 * Upstream trust with real gpg and a loopback mirror: the signing key is fetched through the mirror from its key
 * URL and accepted only with the pinned primary fingerprint; a signature by any other key, a key under another
 * fingerprint, an unreachable key or an unpinned fingerprint fail closed; an unsigned upstream needs a pinned
 * checksum over plain HTTP.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveDirectory, type StaticServer } from "../../builder/local/http-server";
import { mirrorAs, mirrorPath } from "../../builder/local/mirror";
import { publicKey, sign, TEST_KEYS } from "../../builder/local/test-keys";
import { resolveSource, UntrustedSourceError } from "../../builder/resolve";
import { SignatureError } from "../../builder/signature";
import { run } from "../../builder/exec";
import { readStackSettings } from "../../builder/stack-files";
import { projectRoot } from "../../builder/paths";
import { loadCatalog, withOverrides, type OsRelease, type Signature } from "../../images";

const KEY_URL = "https://image-factory-test.invalid/keys/fixture-upstream.asc";
const debian = () => structuredClone(loadCatalog().byId.get("debian-12") as OsRelease);
const signed = (sig: Partial<Signature> = {}): OsRelease => {
  const r = debian();
  r.upstream.signature = {
    url: `${r.upstream.checksums}.sign`,
    kind: "detached",
    fingerprint: TEST_KEYS.upstream.fingerprint,
    keyUrl: KEY_URL,
    source: "https://image-factory-test.invalid/",
    ...sig,
  };
  return r;
};

const localDebian = () => {
  const catalog = loadCatalog();
  return withOverrides(catalog, readStackSettings(projectRoot(), "local", catalog)).byId.get("debian-12") as OsRelease;
};

let work: string;
let www: string;
let mirror: StaticServer;
const upstream = () => `${mirror.url}/upstream`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "factory-trust-"));
  www = join(work, "www");
  process.env.FACTORY_CACHE = join(work, "cache");
  const image = join(work, "image.qcow2");
  writeFileSync(image, "not really a disk, but its digest is real\n");
  await mirrorAs(www, signed(), "x86_64", image, TEST_KEYS.upstream);
  // The local stack's own debian-12, signed where its upstreamSignatures setting says.
  await mirrorAs(www, localDebian(), "x86_64", image, TEST_KEYS.upstream);
  mirror = await serveDirectory(www);
});

afterAll(async () => {
  await mirror?.close();
  delete process.env.FACTORY_CACHE;
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the local stack's fixture upstream", () => {
  it("is signed by the committed test keys, whose fingerprints are the ones pinned", async () => {
    for (const key of Object.values(TEST_KEYS)) {
      const { stdout } = await run("gpg", ["--batch", "--homedir", work, "--with-colons", "--import-options", "show-only", "--import", key.file]);
      expect(stdout.split("\n").find((l) => l.startsWith("fpr:"))?.split(":")[9]).toBe(key.fingerprint);
    }
  });

  it("resolves through the signature path Ubuntu takes, with the key the stack pins", async () => {
    const source = await resolveSource(localDebian(), "x86_64", upstream());
    expect(source.trust).toBe(`pgp:${TEST_KEYS.upstream.fingerprint}`);
  });
});

describe("a signed upstream", () => {
  it("is verified with the key fetched through the mirror, checked against its pin and cached by fingerprint", async () => {
    const source = await resolveSource(signed(), "x86_64", upstream());
    expect(source.trust).toBe(`pgp:${TEST_KEYS.upstream.fingerprint}`);
    expect(existsSync(join(work, "cache", "keys", `${TEST_KEYS.upstream.fingerprint}.asc`))).toBe(true);
  });

  it("uses the cached key once fetched, even when the key URL no longer answers", async () => {
    const keyFile = mirrorPath(www, KEY_URL);
    const saved = await publicKey(TEST_KEYS.upstream);
    rmSync(keyFile);
    try {
      expect((await resolveSource(signed(), "x86_64", upstream())).trust).toBe(`pgp:${TEST_KEYS.upstream.fingerprint}`);
    } finally {
      writeFileSync(keyFile, saved);
    }
  });

  it("refuses a key whose fingerprint is not the pin, naming both", async () => {
    const wrong = signed({ fingerprint: TEST_KEYS.ecosystem.fingerprint });
    await expect(resolveSource(wrong, "x86_64", upstream())).rejects.toThrow(SignatureError);
    await expect(resolveSource(wrong, "x86_64", upstream())).rejects.toThrow(
      new RegExp(`has fingerprint ${TEST_KEYS.upstream.fingerprint}, not the pinned ${TEST_KEYS.ecosystem.fingerprint}`),
    );
  });

  it("refuses a signature by another key, even one published in the same key file", async () => {
    // The key URL serves both keys; the checksum file is signed by the one that is not pinned.
    // A fresh cache, so the key file is read again rather than the pinned key cached earlier.
    process.env.FACTORY_CACHE = join(work, "cache-both");
    const both = signed({ keyUrl: "https://image-factory-test.invalid/keys/both.asc" });
    const r = debian();
    const checksums = mirrorPath(www, r.upstream.checksums.replaceAll("{serial}", r.upstream.pins.x86_64!.serial));
    writeFileSync(mirrorPath(www, "https://image-factory-test.invalid/keys/both.asc"), (await publicKey(TEST_KEYS.upstream)) + (await publicKey(TEST_KEYS.ecosystem)));
    const sigPath = `${checksums}.sign`;
    const good = join(work, "good.sign");
    await run("cp", [sigPath, good]);
    await sign(TEST_KEYS.ecosystem, checksums, sigPath, "detached");
    try {
      await expect(resolveSource(both, "x86_64", upstream())).rejects.toThrow(/not signed by the pinned key 56D26DDC/);
    } finally {
      await run("cp", [good, sigPath]);
      process.env.FACTORY_CACHE = join(work, "cache");
    }
  });

  it("fails closed when the key URL is unreachable, saying where the key is published", async () => {
    process.env.FACTORY_CACHE = join(work, "cache-empty");
    try {
      const missing = signed({ keyUrl: "https://image-factory-test.invalid/keys/nowhere.asc" });
      await expect(resolveSource(missing, "x86_64", upstream())).rejects.toThrow(
        /cannot get the pinned key 56D26DDC1084F765F849EB832779D1AE892F5665 from .*nowhere\.asc .*published at https:\/\/image-factory-test\.invalid\/keys\/nowhere\.asc/,
      );
    } finally {
      process.env.FACTORY_CACHE = join(work, "cache");
    }
  });

  it("fails closed while the catalog's fingerprint is unverified, saying what to pin", async () => {
    const unverified = signed({ fingerprint: "unverified", keyUrl: undefined });
    await expect(resolveSource(unverified, "x86_64", upstream())).rejects.toThrow(/fingerprint is unverified in the catalog: pin signature\.fingerprint/);
  });
});

describe("an unsigned upstream", () => {
  it("is refused over plain HTTP without a pinned checksum, even when discovering", async () => {
    await expect(resolveSource(debian(), "x86_64", upstream())).rejects.toThrow(UntrustedSourceError);
    await expect(resolveSource(debian(), "x86_64", upstream(), { discover: true })).rejects.toThrow(/pins no checksum .*is not HTTPS/);
  });

  it("is trusted on its pinned checksum, and says so", async () => {
    const r = debian();
    const sum = (await resolveSource(signed(), "x86_64", upstream())).checksum.hex;
    r.upstream.pins.x86_64!.checksum = sum;
    expect((await resolveSource(r, "x86_64", upstream())).trust).toBe("pinned-checksum");
  });
});
