import { describe, expect, it } from "vitest";
import { CATALOG_SOURCES, loadCatalog, parseCatalog } from "../../images";
import { overridesEnvironment, planStack, rebuildReasons } from "../../builder/core/plan";
import { readStackSettings, stackNames } from "../../builder/system/stack-files";
import { publishEnvironment } from "../../builder/local/local-job";
import { settingsFor } from "./helpers";

const ROOT = `${__dirname}/../..`;
const catalog = loadCatalog();
/** The committed throwaway test keys (builder/local/test-keys/README.md). */
const TEST_FINGERPRINTS = ["56D26DDC1084F765F849EB832779D1AE892F5665", "5F359FD65C4EFC1B89E8E639CF7AF890E68E0677"];
const FIXTURE_SIGNATURE =
  "debian-12 detached https://image-factory-test.invalid/fixture/bookworm/{serial}/SHA512SUMS.sign https://image-factory-test.invalid/keys/fixture-upstream.asc 56D26DDC1084F765F849EB832779D1AE892F5665";

describe("upstream signatures in the catalog", () => {
  it("pin a fingerprint with the key URL upstream publishes, or say unverified, and cite a source", () => {
    for (const r of catalog.releases) {
      if (r.kind !== "os" || !r.upstream.signature) continue;
      const s = r.upstream.signature;
      expect(s.source, r.id).toMatch(/^https:\/\//);
      if (s.fingerprint === "unverified") continue;
      expect(s.fingerprint, r.id).toMatch(/^[0-9A-F]{40}$/);
      expect(s.keyUrl, r.id).toMatch(/^https:\/\//);
      expect(TEST_FINGERPRINTS, r.id).not.toContain(s.fingerprint);
    }
  });

  it.each([
    {
      name: "a pinned fingerprint without its key URL",
      sig: { fingerprint: "A".repeat(40), keyUrl: undefined },
      problem: /signature\.keyUrl: a pinned fingerprint needs the keyUrl/,
    },
    {
      name: "a short fingerprint",
      sig: { fingerprint: "ABCD1234", keyUrl: "https://k.example/k.asc" },
      problem: /signature\.fingerprint/,
    },
    {
      name: "a key over http",
      sig: { fingerprint: "A".repeat(40), keyUrl: "http://k.example/k.asc" },
      problem: /signature\.keyUrl: expected an https:\/\/ URL/,
    },
  ])("rejects $name", ({ sig, problem }) => {
    const entries = structuredClone(
      CATALOG_SOURCES[0]!.releases as { upstream: { signature: Record<string, unknown> } }[],
    );
    Object.assign(entries[0]!.upstream.signature, sig);
    expect(() => parseCatalog([{ file: "images/test.ts", releases: entries }])).toThrow(problem);
  });
});

describe("stack-level upstream signatures", () => {
  it("the local stack pins the committed test key for its fixture, and passes it to the build Command", () => {
    const local = readStackSettings(ROOT, "local", catalog);
    expect(local.upstreamSignatures["debian-12"]).toEqual({
      url: "https://image-factory-test.invalid/fixture/bookworm/{serial}/SHA512SUMS.sign",
      kind: "detached",
      fingerprint: TEST_FINGERPRINTS[0],
      keyUrl: "https://image-factory-test.invalid/keys/fixture-upstream.asc",
      source: "https://image-factory-test.invalid/keys/fixture-upstream.asc",
    });
    // Apps layered on the fixture verify their base's upstream the same way.
    for (const p of planStack(catalog, local))
      expect(JSON.parse(overridesEnvironment(p.overrides).FACTORY_UPSTREAM_SIGNATURES ?? "{}"), p.name).toHaveProperty(
        "debian-12.fingerprint",
        TEST_FINGERPRINTS[0],
      );
  });

  it("no production stack trusts a test key", () => {
    for (const stack of stackNames(ROOT).filter((s) => s.startsWith("prod-"))) {
      const s = readStackSettings(ROOT, stack, catalog);
      expect(s.upstreamSignatures, stack).toEqual({});
      expect(TEST_FINGERPRINTS, stack).not.toContain(s.ecosystemKeyFingerprint);
    }
  });

  it("changes trust, never a content hash", () => {
    const plain = planStack(catalog, settingsFor({ images: ["debian-12"] }));
    const signed = planStack(catalog, settingsFor({ images: ["debian-12"], upstreamSignatures: [FIXTURE_SIGNATURE] }));
    expect(signed[0]!.contentHash).toBe(plain[0]!.contentHash);
    expect(signed[0]!.overrides.upstreamSignatures?.["debian-12"]?.fingerprint).toBe(TEST_FINGERPRINTS[0]);
  });

  it.each([
    {
      entry:
        "debian-12 detached https://x.example/s.sign https://x.example/k.asc 56d26ddc1084f765f849eb832779d1ae892f5665",
      problem: /upstreamSignatures\.0: expected <release-id>/,
    },
    {
      entry:
        "app-wordpress detached https://x.example/s.sign https://x.example/k.asc 56D26DDC1084F765F849EB832779D1AE892F5665",
      problem: /upstreamSignatures\.app-wordpress: "app-wordpress" is an app/,
    },
    {
      entry:
        "debian-99 detached https://x.example/s.sign https://x.example/k.asc 56D26DDC1084F765F849EB832779D1AE892F5665",
      problem: /upstreamSignatures\.debian-99: no release/,
    },
  ])("rejects $entry", ({ entry, problem }) => {
    expect(() => settingsFor({ upstreamSignatures: [entry] })).toThrow(problem);
  });
});

describe("the scaleway-ecosystem repository's pinned key", () => {
  const FPR = "0123456789ABCDEF0123456789ABCDEF01234567";

  it("is a content hash input when pinned, and absent (hashes unchanged) when not", () => {
    const [plain] = planStack(catalog, settingsFor({ images: ["debian-12"] }));
    const [pinned] = planStack(catalog, settingsFor({ images: ["debian-12"], ecosystemKeyFingerprint: FPR }));
    expect(plain!.hashInputs).not.toHaveProperty("ecosystemKeyFingerprint");
    expect(pinned!.hashInputs.ecosystemKeyFingerprint).toBe(FPR);
    expect(pinned!.contentHash).not.toBe(plain!.contentHash);
    expect(rebuildReasons(plain!.hashInputs, pinned!.hashInputs)).toEqual([
      `scaleway-ecosystem signing key: none → ${FPR}`,
    ]);
  });

  it("the local stack pins the committed ecosystem test key and its job passes it on; settings refuse a malformed fingerprint", () => {
    const local = readStackSettings(ROOT, "local", catalog);
    expect(local.ecosystemKeyFingerprint).toBe(TEST_FINGERPRINTS[1]);
    const env = publishEnvironment(
      planStack(catalog, local)[0]!,
      local,
      { endpoint: "http://127.0.0.1:1", accessKeyId: "a", secretAccessKey: "b" },
      "local/x",
    );
    expect(env.FACTORY_ECOSYSTEM_KEY_FINGERPRINT).toBe(TEST_FINGERPRINTS[1]);
    expect(env.FACTORY_UPSTREAM_SIGNATURES).toContain(TEST_FINGERPRINTS[0]);
    expect(() => settingsFor({ ecosystemKeyFingerprint: "5f359fd6" })).toThrow(
      /image-factory:ecosystemKeyFingerprint: expected a 40-hex-digit/,
    );
  });
});
