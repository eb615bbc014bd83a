/**
 * The supply-chain files beside each artifact in the bucket, and their checks: the SBOM (`<key>.cdx.json`), the
 * signed provenance (`<key>.provenance.dsse.json`) and the release notes with the package diff against the
 * release's previous build (`<key>.notes.md`). publish writes them before the artifact and verifies the whole set
 * in the bucket before it reports success, which is what the snapshot import waits for.
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import type { KeyObject } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { accelerator } from "../system/accel";
import { stampFile } from "../build-stamp";
import { BUILDER_REVISION } from "../core/plan";
import { diffPackages, packageDiffMarkdown, type BuildDiff, type PackageVersion } from "../core/package-diff";
import { projectRoot } from "../system/paths";
import {
  companionKeys,
  provenanceStatement,
  scsProvenanceMismatches,
  signProvenance,
  verifyRelease,
  type ProvenanceSource,
  type Statement,
} from "./provenance";
import { cycloneDx, readDebianPackages, sbomPackages, type InstalledPackage } from "./sbom";
import { SignatureError } from "../core/signing";
import { objectSha256, objectSha256Reused } from "./bucket-digests";

/** What the supply chain reads of a build manifest (builder/pipeline/build.ts). */
export type SupplyManifest = ProvenanceSource & {
  label: string;
  output: { sha256: string };
  /** The build's package list (manifest.json); for rpm and pacman with the source RPM and licences it names. */
  packages: InstalledPackage[];
  scs: ProvenanceSource["scs"] & { os_distro: string | number; os_version: string | number };
};

/** The compiled CLI's build stamp: which builder sources ran. */
export function builderStamp(): string {
  try {
    return String(
      (JSON.parse(readFileSync(stampFile(projectRoot()), "utf8")) as { sources?: unknown }).sources ?? "unknown",
    );
  } catch {
    return "unknown";
  }
}

/**
 * The artifact's SBOM, written beside it (`<artifact>.cdx.json`) on first use: Debian-family images read from their
 * dpkg database in one read-only appliance session, the others from the package list the build read in the guest.
 */
export async function ensureSbom(
  artifact: string,
  m: SupplyManifest,
  family: "debian" | "rhel" | "arch",
): Promise<string> {
  const file = `${artifact}.cdx.json`;
  if (existsSync(file)) return readFileSync(file, "utf8");
  const packages: InstalledPackage[] =
    family === "debian" ? (await readDebianPackages(artifact, await accelerator())).packages : m.packages;
  const bom = cycloneDx(
    {
      release: m.release,
      label: m.label,
      arch: m.arch,
      contentHash: m.contentHash,
      sha256: m.output.sha256,
      osDistro: String(m.scs.os_distro),
      osVersion: String(m.scs.os_version),
      family,
      timestamp: statSync(artifact).mtime.toISOString(),
      builderStamp: builderStamp(),
    },
    packages,
  );
  const text = `${JSON.stringify(bom, null, 2)}\n`;
  writeFileSync(file, text);
  return text;
}

/** The signed provenance of the artifact as it sits under `artifactKey`; it finished when the artifact was written. */
export function provenanceFor(
  artifactKey: string,
  artifact: string,
  m: SupplyManifest,
  manifest: string,
  sbom: string,
  key: KeyObject,
): string {
  const statement = provenanceStatement({ artifactKey, artifactSha256: m.output.sha256, manifest, sbom }, m, {
    builderStamp: builderStamp(),
    builderRevision: BUILDER_REVISION,
    finishedOn: statSync(artifact).mtime.toISOString(),
  });
  return signProvenance(statement, key);
}

export async function getText(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    return await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
  } catch (err) {
    if ((err as Error).name === "NoSuchKey") return undefined;
    throw err;
  }
}

/**
 * Verifies the artifact under `artifactKey` in the bucket against its signed provenance: the envelope by `key`,
 * then the artifact's, manifest's and SBOM's digests, then the SCS metadata against the provenance. The manifest,
 * SBOM and provenance are read every time; the artifact's sha256 too, unless `reuseDigest` and this machine already
 * read this very object version in full (builder/pipeline/bucket-digests.ts says what proves its bytes then).
 */
export async function verifyInBucket(
  s3: S3Client,
  where: { endpoint: string; bucket: string },
  artifactKey: string,
  key: KeyObject,
  opts: { reuseDigest?: boolean; onArtifactDigest?: (d: { sha256: string; read: boolean }) => void } = {},
): Promise<Statement> {
  const bucket = where.bucket;
  const k = companionKeys(artifactKey);
  const [manifest, sbom, provenance] = await Promise.all([
    getText(s3, bucket, k.manifest),
    getText(s3, bucket, k.sbom),
    getText(s3, bucket, k.provenance),
  ]);
  const missing = [
    [k.manifest, manifest],
    [k.sbom, sbom],
    [k.provenance, provenance],
  ]
    .filter(([, v]) => v === undefined)
    .map(([n]) => n);
  if (missing.length)
    throw new SignatureError(
      `${artifactKey}: ${missing.join(", ")} missing from bucket ${bucket}: nothing to verify the artifact against`,
    );
  const object = { ...where, key: artifactKey };
  const artifact = opts.reuseDigest
    ? await objectSha256Reused(s3, object)
    : { sha256: await objectSha256(s3, object), read: true };
  opts.onArtifactDigest?.(artifact);
  const statement = verifyRelease(
    {
      artifactKey,
      artifactSha256: artifact.sha256,
      manifest: manifest!,
      sbom: sbom!,
      provenance: provenance!,
    },
    key,
  );
  const mismatches = scsProvenanceMismatches(statement, (JSON.parse(manifest!) as SupplyManifest).scs);
  if (mismatches.length)
    throw new SignatureError(
      `${k.manifest}: SCS metadata disagrees with the signed provenance: ${mismatches.join("; ")}`,
    );
  return statement;
}

export interface BuildRef {
  key: string;
  lastModified: Date;
}

/** The release's builds in the bucket (artifacts under `images/<release>/<arch>/`), newest first. */
export async function buildsInBucket(s3: S3Client, bucket: string, release: string, arch: string): Promise<BuildRef[]> {
  const out: BuildRef[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `images/${release}/${arch}/`, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? [])
      if (o.Key?.endsWith(".qcow2") && o.LastModified) out.push({ key: o.Key, lastModified: o.LastModified });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out.sort((a, b) => b.lastModified.getTime() - a.lastModified.getTime() || (a.key < b.key ? 1 : -1));
}

/** A build's packages: from its SBOM, else (built before SBOMs) its manifest's list; undefined when neither is there. */
export async function packagesInBucket(
  s3: S3Client,
  bucket: string,
  artifactKey: string,
): Promise<PackageVersion[] | undefined> {
  const k = companionKeys(artifactKey);
  const sbom = await getText(s3, bucket, k.sbom);
  if (sbom) return sbomPackages(JSON.parse(sbom));
  const manifest = await getText(s3, bucket, k.manifest);
  return manifest ? (JSON.parse(manifest) as { packages: PackageVersion[] }).packages : undefined;
}

/** The diff between `to` and the newest other build of the release in the bucket (none: everything is added). */
export async function diffAgainstPrevious(
  s3: S3Client,
  bucket: string,
  release: string,
  arch: string,
  to: string,
  toPackages: PackageVersion[],
): Promise<BuildDiff> {
  const previous = (await buildsInBucket(s3, bucket, release, arch)).find((b) => b.key !== to);
  const before = previous ? ((await packagesInBucket(s3, bucket, previous.key)) ?? []) : [];
  return { release, arch, ...(previous ? { from: previous.key } : {}), to, changes: diffPackages(before, toPackages) };
}

/** The release notes the factory writes beside a new build: what it is built from, and what changed. */
export function releaseNotes(d: BuildDiff, m: Pick<SupplyManifest, "label" | "contentHash" | "upstream">): string {
  return [
    `# ${m.label} (${d.arch}): build ${m.contentHash.slice(0, 16)}`,
    "",
    `Upstream: ${m.upstream.imageUrl} (serial ${m.upstream.serial}, ${m.upstream.checksum.algo} ${m.upstream.checksum.hex.slice(0, 16)}…).`,
    "",
    d.from ? `## Packages since \`${d.from}\`` : "## Packages (first build of this release in the bucket)",
    "",
    packageDiffMarkdown(d.changes),
  ].join("\n");
}
