import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareVersions, diffPackages, packageDiffMarkdown } from "../../builder/core/package-diff";
import {
  provenanceStatement,
  scsProvenanceMismatches,
  signProvenance,
  verifyRelease,
  type ProvenanceSource,
} from "../../builder/pipeline/provenance";
import {
  cycloneDx,
  dep5Licenses,
  parseDpkgStatus,
  purl,
  sbomPackages,
  sbomSchemaErrors,
  type SbomSubject,
} from "../../builder/pipeline/sbom";
import {
  keyId,
  openEnvelope,
  pae,
  releasePrivateKey,
  releasePublicKey,
  signEnvelope,
  SignatureError,
} from "../../builder/core/signing";
import { projectRoot } from "../../builder/system/paths";
import { parseStackSettings } from "../../builder/core/settings";
import { readStackSettings } from "../../builder/system/stack-files";
import { markdownReport } from "../../builder/core/plan-report";
import { TEST_RELEASE_KEY } from "../../builder/local/test-keys";
import { loadCatalog, osBase } from "../../images";
import { planStack } from "../../builder/core/plan";
import { releaseTags, withBuildDate } from "../../builder/core/release-spec";
import { SCS_TAG_PREFIX, scsFromTags } from "../../builder/core/scs";
import { upstreamLocation } from "../../builder/core/upstream-url";
import { settingsFor } from "./helpers";

describe("dpkg version order", () => {
  it.each([
    ["1.0", "1.0", 0],
    ["1.0", "1.1", -1],
    ["1.0~rc1", "1.0", -1],
    ["1.0", "1.0+deb12u1", -1],
    ["1:0.9", "2.0", 1],
    ["3.0.11-1~deb12u2", "3.0.15-1~deb12u1", -1],
    ["6.1.0-26", "6.1.0-9", 1],
    ["2.36-9+deb12u7", "2.36-9+deb12u10", -1],
    ["1.0a", "1.0", 1],
    ["1.0-1", "1.0", 1],
  ])("%s vs %s → %d", (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
  });
});

describe("package diff", () => {
  const before = [
    { name: "bash", version: "5.2.15-2+b7", arch: "amd64" },
    { name: "linux-image-6.1.0-26-amd64", version: "6.1.112-1", arch: "amd64" },
    { name: "openssl", version: "3.0.11-1~deb12u2", arch: "amd64" },
    { name: "vim-tiny", version: "2:9.0.1378-2", arch: "amd64" },
  ];
  const after = [
    { name: "bash", version: "5.2.15-2+b7", arch: "amd64" },
    { name: "linux-image-6.1.0-27-amd64", version: "6.1.115-1", arch: "amd64" },
    { name: "openssl", version: "3.0.15-1~deb12u1", arch: "amd64" },
    { name: "htop", version: "3.2.2-2", arch: "amd64" },
  ];
  it("lists the kernel, then security packages, then the rest, each with its versions", () => {
    expect(diffPackages(before, after).map((c) => [c.class, c.change, c.name])).toEqual([
      ["kernel", "removed", "linux-image-6.1.0-26-amd64"],
      ["kernel", "added", "linux-image-6.1.0-27-amd64"],
      ["security", "upgraded", "openssl"],
      ["other", "added", "htop"],
      ["other", "removed", "vim-tiny"],
    ]);
    const md = packageDiffMarkdown(diffPackages(before, after));
    expect(md).toContain("| `openssl` | amd64 | upgraded | 3.0.11-1~deb12u2 → 3.0.15-1~deb12u1 | **security** |");
    expect(md.split("\n")[0]).toBe("1 upgraded, 2 added, 2 removed.");
  });
  it("is empty for the same list and says so", () => {
    expect(diffPackages(before, [...before].reverse())).toEqual([]);
    expect(packageDiffMarkdown([])).toBe("No package changed.\n");
  });
  it("calls a version going back a downgrade", () => {
    expect(diffPackages(after, before).find((c) => c.name === "openssl")).toMatchObject({
      change: "downgraded",
      from: "3.0.15-1~deb12u1",
      to: "3.0.11-1~deb12u2",
    });
  });
});

const STATUS = `Package: libssl3
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.15-1~deb12u1
Description: Secure Sockets Layer toolkit
 multi-line description

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14

Package: adduser
Status: install ok installed
Architecture: all
Version: 3.134
`;

const DEP5 = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: OpenSSL

Files: *
Copyright: 1998-2024 The OpenSSL Project
License: Apache-2.0

Files: debian/*
License: GPL-2+ or Apache-2.0
 Some text of the licence

License: Apache-2.0
 The full text
`;

describe("package database", () => {
  it("lists installed packages with their source package, not removed ones", () => {
    expect(parseDpkgStatus(STATUS)).toEqual([
      { name: "adduser", version: "3.134", arch: "all", source: "adduser", sourceVersion: "3.134" },
      { name: "libgcc-s1", version: "12.2.0-14", arch: "amd64", source: "gcc-12", sourceVersion: "12.2.0-14" },
      {
        name: "libssl3",
        version: "3.0.15-1~deb12u1",
        arch: "amd64",
        source: "openssl",
        sourceVersion: "3.0.15-1~deb12u1",
      },
    ]);
  });
  it("reads licences only from machine-readable copyright files", () => {
    expect(dep5Licenses(DEP5)).toEqual(["Apache-2.0", "GPL-2+ or Apache-2.0"]);
    expect(dep5Licenses("This package was debianized by someone.\nLicense: GPL\n")).toBeUndefined();
  });
});

const subject: SbomSubject = {
  release: "debian-12",
  label: "Debian 12",
  arch: "x86_64",
  contentHash: "a".repeat(64),
  sha256: "b".repeat(64),
  osDistro: "debian",
  osVersion: "12",
  family: "debian",
  timestamp: "2026-12-01T22:44:00.000Z",
  builderStamp: "c".repeat(64),
};

describe("CycloneDX SBOM", () => {
  it("is valid CycloneDX 1.6 with every package, its purl and licence, and lists the packages back", async () => {
    const packages = parseDpkgStatus(STATUS).map((p) =>
      p.name === "libssl3" ? { ...p, licenses: dep5Licenses(DEP5) } : p,
    );
    const bom = cycloneDx(subject, packages);
    expect(await sbomSchemaErrors(JSON.stringify(bom))).toBeNull();
    expect(sbomPackages(bom)).toEqual(packages.map(({ name, version, arch }) => ({ name, version, arch })));
    expect(JSON.stringify(bom)).toContain(
      '"purl":"pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12"',
    );
    // The same artifact gets the same document.
    expect(JSON.stringify(cycloneDx(subject, packages))).toBe(JSON.stringify(bom));
  });
  it("the validator refuses a broken document", async () => {
    const bom = cycloneDx(subject, parseDpkgStatus(STATUS));
    expect(
      await sbomSchemaErrors(JSON.stringify({ ...bom, specVersion: "1.6", serialNumber: "not-a-urn" })),
    ).not.toBeNull();
  });
  it.each([
    ["debian", "1.2-3", "pkg:deb/debian/p@1.2-3?arch=amd64&distro=debian-12"],
    ["rhel", "0:1.2-3.el9", "pkg:rpm/debian/p@1.2-3.el9?arch=amd64&distro=debian-12"],
    ["rhel", "2:1.2-3.el9", "pkg:rpm/debian/p@1.2-3.el9?arch=amd64&distro=debian-12&epoch=2"],
  ] as const)("purl of a %s package %s", (family, version, expected) => {
    expect(purl({ ...subject, family }, { name: "p", version, arch: "amd64" })).toBe(expected);
  });
});

const { privateKey } = generateKeyPairSync("ed25519");
const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();

describe("DSSE signatures", () => {
  it("uses DSSE's pre-authentication encoding", () => {
    expect(pae("http://example.com/HelloWorld", Buffer.from("hello world")).toString()).toBe(
      "DSSEv1 29 http://example.com/HelloWorld 11 hello world",
    );
  });
  it("opens what the key signed and refuses another key, another type or an altered payload", () => {
    const key = releasePrivateKey(pem);
    const env = signEnvelope(Buffer.from("{}"), "application/x-test", key);
    const text = JSON.stringify(env);
    const pub = releasePublicKey(pem);
    expect(keyId(pub)).toBe(keyId(key));
    expect(openEnvelope(text, pub, "application/x-test", "t").toString()).toBe("{}");
    const other = generateKeyPairSync("ed25519").publicKey;
    expect(() => openEnvelope(text, other, "application/x-test", "t")).toThrow(/not signed by the release key/);
    expect(() => openEnvelope(text, pub, "application/other", "t")).toThrow(/payload type/);
    const altered = JSON.stringify({ ...env, payload: Buffer.from("[]").toString("base64") });
    expect(() => openEnvelope(altered, pub, "application/x-test", "t")).toThrow(/does not verify/);
  });
  it("refuses a key that is not Ed25519", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    expect(() => releasePrivateKey(rsa, "image-factory:releaseKey")).toThrow(
      /image-factory:releaseKey: an rsa key, expected ed25519/,
    );
  });
  it("the committed local test key is an Ed25519 pair whose public part matches", () => {
    const dir = join(projectRoot(), "builder", "local", "test-keys");
    const secret = releasePrivateKey(readFileSync(join(dir, "release.TEST-ONLY.secret.pem"), "utf8"));
    expect(keyId(releasePublicKey(readFileSync(join(dir, "release.TEST-ONLY.pub.pem"), "utf8")))).toBe(keyId(secret));
  });
});

const manifestSource: ProvenanceSource = {
  release: "debian-12",
  arch: "x86_64",
  contentHash: "a".repeat(64),
  recipeHash: "d".repeat(64),
  hashInputs: { releaseEpoch: "2026Q4" },
  upstream: {
    imageUrl: "https://cloud.debian.org/images/cloud/bookworm/20261101-1/debian-12-generic-amd64-20261101-1.qcow2",
    serial: "20261101-1",
    trust: "pgp:X",
    checksum: { algo: "sha512", hex: "e".repeat(128) },
  },
  tools: { node: "v24" },
  accelerator: "tcg",
  scs: {
    image_source: "https://cloud.debian.org/images/cloud/bookworm/20261101-1/debian-12-generic-amd64-20261101-1.qcow2",
    image_build_date: "2026-12-01",
  },
};

describe("signed provenance", () => {
  const files = {
    artifactKey: `images/debian-12/x86_64/${"a".repeat(64)}.qcow2`,
    artifactSha256: "f".repeat(64),
    manifest: '{"m":1}\n',
    sbom: '{"s":1}\n',
  };
  const statement = provenanceStatement(files, manifestSource, {
    builderStamp: "c".repeat(64),
    builderRevision: 1,
    host: "builder-1",
    finishedOn: "2026-12-01T22:44:00.000Z",
  });
  const provenance = signProvenance(statement, releasePrivateKey(pem));
  const pub = releasePublicKey(pem);

  it("verifies the three files it names", () => {
    const s = verifyRelease({ ...files, provenance }, pub);
    expect(s.predicate.buildDefinition.resolvedDependencies[0]).toMatchObject({
      uri: manifestSource.upstream.imageUrl,
      digest: { sha512: "e".repeat(128) },
    });
    expect(s.predicate.buildDefinition.internalParameters.host).toBe("builder-1");
    expect(s.predicate.buildDefinition.externalParameters.recipeHash).toBe("d".repeat(64));
  });
  const flip = (s: string) => s.slice(0, 2) + String.fromCharCode(s.charCodeAt(2) ^ 1) + s.slice(3);
  it.each([
    ["the artifact's digest", { artifactSha256: "0" + "f".repeat(63) }, /qcow2: sha256 .* is not the signed/],
    ["the manifest", { manifest: flip(files.manifest) }, /manifest\.json: sha256 .* altered after signing/],
    ["the SBOM", { sbom: flip(files.sbom) }, /cdx\.json: sha256 .* altered after signing/],
    [
      "the provenance's payload",
      { provenance: provenance.replace(/"payload": "(.)/, (_m, c: string) => `"payload": "${c === "A" ? "B" : "A"}`) },
      /does not verify|not a DSSE/,
    ],
  ])("refuses a flipped byte in %s", (_what, change, message) => {
    expect(() => verifyRelease({ ...files, provenance, ...change }, pub)).toThrow(SignatureError);
    expect(() => verifyRelease({ ...files, provenance, ...change }, pub)).toThrow(message);
  });
  it("agrees with the image's SCS-0102 image_source and build date, and says where not", () => {
    expect(scsProvenanceMismatches(statement, manifestSource.scs)).toEqual([]);
    expect(
      scsProvenanceMismatches(statement, {
        image_source: "https://mirror.example/x.qcow2",
        image_build_date: "2026-12-02",
      }),
    ).toEqual([
      `image_source https://mirror.example/x.qcow2 is not the signed upstream ${manifestSource.upstream.imageUrl}`,
      "image_build_date 2026-12-02 is not the signed build day 2026-12-01",
    ]);
    const lateBuild = provenanceStatement(files, manifestSource, {
      builderStamp: "c",
      builderRevision: 1,
      finishedOn: "2026-12-31T23:59:58.000Z",
    });
    expect(scsProvenanceMismatches(lateBuild, { ...manifestSource.scs, image_build_date: "2027-01-01" })).toEqual([]);
    expect(scsProvenanceMismatches(lateBuild, { ...manifestSource.scs, image_build_date: "2027-01-02" })).toHaveLength(
      1,
    );
  });
});

describe("release key settings", () => {
  const config = (extra: Record<string, string>) => ({
    "image-factory:environment": "test",
    "image-factory:zone": "fr-par-2",
    "image-factory:images": '["debian-12"]',
    "image-factory:bucket": "scw-image-factory-fr-par",
    "image-factory:releaseEpoch": "2026Q4",
    "image-factory:ecosystemVersion": "1.0.0",
    "image-factory:ecosystemRepository": "https://packages.example.org/scaleway",
    "image-factory:ecosystemKeyFingerprint": "5F359FD65C4EFC1B89E8E639CF7AF890E68E0677",
    ...extra,
  });
  const pubLine = (k: string) => releasePublicKey(k).export({ type: "spki", format: "der" }).toString("base64");
  it("keeps the key id, never the secret, and accepts the stack file's encrypted form", () => {
    const s = parseStackSettings(
      "t",
      config({ "image-factory:releaseKey": pem, "image-factory:releasePublicKey": pubLine(pem) }),
      loadCatalog(),
    );
    expect(s.releaseKey).toEqual({ keyId: keyId(releasePublicKey(pem)) });
    expect(JSON.stringify(s)).not.toContain("PRIVATE KEY");
    expect(
      parseStackSettings("t", config({ "image-factory:releaseKey": '{"secure":"v1:abc"}' }), loadCatalog()).releaseKey,
    ).toEqual({ keyId: undefined });
  });
  it("refuses a release key of another pair than releasePublicKey, and a public key that is not Ed25519", () => {
    const other = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(() =>
      parseStackSettings(
        "t",
        config({ "image-factory:releaseKey": other, "image-factory:releasePublicKey": pubLine(pem) }),
        loadCatalog(),
      ),
    ).toThrow(/image-factory:releaseKey: its public part sha256:[0-9a-f]{64} is not image-factory:releasePublicKey/);
    expect(() =>
      parseStackSettings("t", config({ "image-factory:releasePublicKey": "MCowBQYDK2VwAyEA" }), loadCatalog()),
    ).toThrow(/image-factory:releasePublicKey/);
  });
  it("the local stack's releasePublicKey is the committed test pair's", () => {
    const local = readStackSettings(projectRoot(), "local", loadCatalog());
    expect(keyId(releasePublicKey(local.releasePublicKey!))).toBe(
      keyId(releasePrivateKey(readFileSync(TEST_RELEASE_KEY.secret, "utf8"))),
    );
  });
});

describe("the PR report's package tables", () => {
  it("adds one table per rebuilt release after the plan's changes", () => {
    const md = markdownReport(
      [{ stack: "prod-fr-par-1", image: "debian-12-x86_64", change: "rebuild", reasons: ["security rebuild 1 → 2"] }],
      [
        {
          release: "debian-12",
          arch: "x86_64",
          from: `images/debian-12/x86_64/${"1".repeat(64)}.qcow2`,
          to: `images/debian-12/x86_64/${"2".repeat(64)}.qcow2`,
          changes: diffPackages(
            [{ name: "openssl", version: "3.0.11-1", arch: "amd64" }],
            [{ name: "openssl", version: "3.0.15-1", arch: "amd64" }],
          ),
        },
      ],
    );
    expect(md).toContain(
      "### Packages of `debian-12` x86_64 since `1111111111111111`\n\n1 upgraded, 0 added, 0 removed.",
    );
    expect(md.indexOf("security rebuild 1 → 2")).toBeLessThan(
      md.indexOf("| `openssl` | amd64 | upgraded | 3.0.11-1 → 3.0.15-1 | **security** |"),
    );
  });
});

describe("SCS-0102 tags and the signed provenance", () => {
  // Every image the whole catalog ships: the tags the ZonalImage declares (releaseTags + the build date publish
  // reports) read back, against provenance made from the upstream the build resolves (upstreamLocation, as resolve does).
  const catalog = loadCatalog();
  const plans = planStack(catalog, settingsFor({ images: ["*"], architectures: ["x86_64", "arm64"] }));
  it.each(plans.map((p) => [p.name, p] as const))("%s: image_source and image_build_date agree", (_name, plan) => {
    const imageUrl = upstreamLocation(osBase(catalog, plan.release), plan.arch).image;
    const statement = provenanceStatement(
      { artifactKey: plan.artifactKey, artifactSha256: "f".repeat(64), manifest: "{}", sbom: "{}" },
      {
        ...manifestSource,
        release: plan.release.id,
        arch: plan.arch,
        contentHash: plan.contentHash,
        upstream: { ...manifestSource.upstream, imageUrl },
      },
      { builderStamp: "c".repeat(64), builderRevision: 1, finishedOn: "2026-12-01T22:44:00.000Z" },
    );
    const tags = withBuildDate(releaseTags(plan, []), "2026-12-01", plan.name);
    // image_build_date is not among scsFromTags' keys: read back as release-commands' liveImages reads it.
    const built = tags.find((t) => t.startsWith(`${SCS_TAG_PREFIX}image_build_date=`))?.split("=")[1];
    expect(
      scsProvenanceMismatches(statement, { image_source: scsFromTags(tags).image_source, image_build_date: built }),
    ).toEqual([]);
    expect(tags).toContain(
      `factory:content-hash=${statement.predicate.buildDefinition.externalParameters.contentHash}`,
    );
  });
});
