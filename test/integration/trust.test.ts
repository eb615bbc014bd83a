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
import { resolveSource, UntrustedSourceError } from "../../builder/pipeline/resolve";
import { SignatureError } from "../../builder/pipeline/signature";
import { run } from "../../builder/system/exec";
import { readStackSettings } from "../../builder/system/stack-files";
import { projectRoot } from "../../builder/system/paths";
import { loadCatalog, withOverrides, type OsRelease, type Signature } from "../../images";
import { BuildInputError, ecosystemWithKey } from "../../builder/pipeline/build";
import { buildEcosystemRepo } from "../../builder/local/ecosystem-repo";
import { ensurePinnedKey, verifyWithKey } from "../../builder/pipeline/signature";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";

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
      const { stdout } = await run("gpg", [
        "--batch",
        "--homedir",
        work,
        "--with-colons",
        "--import-options",
        "show-only",
        "--import",
        key.file,
      ]);
      expect(
        stdout
          .split("\n")
          .find((l) => l.startsWith("fpr:"))
          ?.split(":")[9],
      ).toBe(key.fingerprint);
    }
  });

  it("reaches the built CLI as the build Command passes it (FACTORY_UPSTREAM_SIGNATURES), and without it is refused", async () => {
    const catalog = loadCatalog();
    const stack = readStackSettings(projectRoot(), "local", catalog);
    const cli = (env: NodeJS.ProcessEnv) =>
      run(
        process.execPath,
        [join(projectRoot(), "dist", "builder", "cli.js"), "resolve", "debian-12", "--mirror", upstream()],
        { env: { ...process.env, ...env } },
      );
    const { stdout } = await cli({ FACTORY_UPSTREAM_SIGNATURES: JSON.stringify(stack.upstreamSignatures) });
    expect(JSON.parse(stdout)).toMatchObject({ release: "debian-12", trust: `pgp:${TEST_KEYS.upstream.fingerprint}` });
    await expect(cli({})).rejects.toThrow(/upstream signs nothing and images\/pins\.json pins no checksum/);
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
      new RegExp(
        `has fingerprint ${TEST_KEYS.upstream.fingerprint}, not the pinned ${TEST_KEYS.ecosystem.fingerprint}`,
      ),
    );
  });

  it("refuses a signature by another key, even one published in the same key file", async () => {
    // The key URL serves both keys; the checksum file is signed by the one that is not pinned.
    // A fresh cache, so the key file is read again rather than the pinned key cached earlier.
    process.env.FACTORY_CACHE = join(work, "cache-both");
    const both = signed({ keyUrl: "https://image-factory-test.invalid/keys/both.asc" });
    const r = debian();
    const checksums = mirrorPath(www, r.upstream.checksums.replaceAll("{serial}", r.upstream.pins.x86_64!.serial));
    writeFileSync(
      mirrorPath(www, "https://image-factory-test.invalid/keys/both.asc"),
      (await publicKey(TEST_KEYS.upstream)) + (await publicKey(TEST_KEYS.ecosystem)),
    );
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
    await expect(resolveSource(unverified, "x86_64", upstream())).rejects.toThrow(
      /fingerprint is unverified in the catalog: pin signature\.fingerprint/,
    );
  });
});

describe("an unsigned upstream", () => {
  it("is refused over plain HTTP without a pinned checksum, even when discovering", async () => {
    await expect(resolveSource(debian(), "x86_64", upstream())).rejects.toThrow(UntrustedSourceError);
    await expect(resolveSource(debian(), "x86_64", upstream(), { discover: true })).rejects.toThrow(
      /pins no checksum .*is not HTTPS/,
    );
  });

  it("is trusted on its pinned checksum, and says so", async () => {
    const r = debian();
    const sum = (await resolveSource(signed(), "x86_64", upstream())).checksum.hex;
    r.upstream.pins.x86_64!.checksum = sum;
    expect((await resolveSource(r, "x86_64", upstream())).trust).toBe("pinned-checksum");
  });
});

describe("the scaleway-ecosystem repository", () => {
  const repo = () => `${mirror.url}/packages`;
  const eco = () => ({ repository: repo(), version: "1.0.0" });

  beforeAll(async () => {
    await buildEcosystemRepo(join(www, "packages"), "1.0.0");
  });

  it("is signed (InRelease, Release.gpg) over its index by the key it publishes, which the build checks against the pin", async () => {
    const withKey = await ecosystemWithKey(eco(), TEST_KEYS.ecosystem.fingerprint, "test");
    expect(withKey.signingKey).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    const key = { fingerprint: TEST_KEYS.ecosystem.fingerprint, keyUrl: `${repo()}/scaleway-ecosystem.asc` };
    const keyFile = await ensurePinnedKey(key, undefined, "test");
    const dir = join(www, "packages", "debian");
    const signedText = await verifyWithKey(key, keyFile, readFileSync(join(dir, "InRelease")), undefined, "InRelease");
    const release = readFileSync(join(dir, "Release"));
    expect(signedText.trim()).toBe(release.toString("utf8").trim());
    await verifyWithKey(key, keyFile, release, readFileSync(join(dir, "Release.gpg")), "Release.gpg");
    const packages = readFileSync(join(dir, "Packages"));
    expect(signedText).toContain(` ${createHash("sha256").update(packages).digest("hex")} ${packages.length} Packages`);
  });

  it("is accepted by apt with signed-by the fetched key, and refused with another key", async () => {
    const { signingKey } = await ecosystemWithKey(eco(), TEST_KEYS.ecosystem.fingerprint, "test");
    const aptRoot = join(work, "apt");
    for (const d of ["lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/preferences.d"])
      mkdirSync(join(aptRoot, d), { recursive: true });
    const update = async (key: string) => {
      writeFileSync(join(aptRoot, "key.asc"), key);
      writeFileSync(
        join(aptRoot, "etc", "sources.list"),
        `deb [signed-by=${join(aptRoot, "key.asc")}] ${repo()}/debian ./\n`,
      );
      rmSync(join(aptRoot, "lists"), { recursive: true, force: true });
      mkdirSync(join(aptRoot, "lists", "partial"), { recursive: true });
      const o = (k: string, v: string) => ["-o", `${k}=${v}`];
      return run("apt-get", [
        ...o("Dir::Etc", join(aptRoot, "etc")),
        ...o("Dir::State::Lists", join(aptRoot, "lists")),
        ...o("Dir::Cache", join(aptRoot, "cache")),
        ...o("Dir::State::status", "/dev/null"),
        ...o("APT::Sandbox::User", "root"),
        ...o("Debug::NoLocking", "1"),
        "update",
      ]);
    };
    const ok = await update(signingKey!);
    expect(`${ok.stdout}${ok.stderr}`).not.toMatch(/NO_PUBKEY|not signed|W: |E: /);
    const other = await publicKey(TEST_KEYS.upstream);
    const bad = await update(other).then(
      (r) => `${r.stdout}${r.stderr}`,
      (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ""}${e.stderr ?? ""}`,
    );
    expect(bad).toMatch(/NO_PUBKEY|not signed|is not signed/);
  });

  it("fails closed on a key under another fingerprint, and off loopback without a pin", async () => {
    process.env.FACTORY_CACHE = join(work, "cache-eco");
    try {
      await expect(ecosystemWithKey(eco(), TEST_KEYS.upstream.fingerprint, "test")).rejects.toThrow(
        /not the pinned 56D26DDC/,
      );
    } finally {
      process.env.FACTORY_CACHE = join(work, "cache");
    }
    await expect(
      ecosystemWithKey(
        { repository: "https://packages.example.org/scaleway", version: "1" },
        undefined,
        "debian-12 x86_64",
      ),
    ).rejects.toThrow(BuildInputError);
    await expect(
      ecosystemWithKey(
        { repository: "https://packages.example.org/scaleway", version: "1" },
        undefined,
        "debian-12 x86_64",
      ),
    ).rejects.toThrow(/set image-factory:ecosystemKeyFingerprint/);
  });
});
