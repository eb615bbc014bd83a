/**
 * publish: what the ZonalImage's Command runs. The artifact key is the content hash, so when the object is already
 * in the regional bucket (another zone's stack built it) nothing is built and nothing is uploaded; the stack only
 * records its reference. The reference is recorded first (builder/pipeline/artifact-refs.ts), so no other stack's unpublish
 * deletes the artifact while this one looks for it, builds or uploads; a publish that fails takes its reference
 * back. Then, unless the artifact is there: build, upload the manifest, then the artifact.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { createWriteStream, existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { digestFile } from "./fetch";
import { join } from "node:path";
import { artifactFileName, buildImage, type BaseArtifact, type BuildRequest, type Manifest } from "./build";
import { findBaseArtifact } from "./base-artifact";
import { hashInputs, withBaseEpoch } from "../core/plan";
import { loadCatalog, osBase } from "../../images";
import { resolveSource } from "./resolve";
import { cacheDir } from "../system/paths";
import { dropReference, withReference, type RefsOptions } from "./artifact-refs";
import { companionKeys } from "./provenance";
import { releasePrivateKey, releasePublicKey, SignatureError } from "../core/signing";
import { diffAgainstPrevious, ensureSbom, getText, provenanceFor, releaseNotes, verifyInBucket } from "./supply-chain";
import { sbomPackages } from "./sbom";
import {
  objectContentHash,
  s3Client,
  sweepStaleUploads,
  uploadArtifact,
  type S3Target,
  type UploadOptions,
} from "./upload";

export interface PublishRequest extends Omit<BuildRequest, "outDir"> {
  s3: S3Target;
  key: string;
  /** Who holds the artifact (`<stack>/<name>`); the artifact goes with the last reference. */
  ref: string;
  upload?: UploadOptions;
  /** Multipart uploads under `images/` older than this are aborted first (default 24 h). */
  staleUploadMs?: number;
  refs?: RefsOptions;
  /** The release key (Ed25519 PKCS#8 PEM, `FACTORY_RELEASE_KEY`): signs the provenance, verified before returning. */
  releaseKey?: string;
}

export interface PublishResult {
  key: string;
  contentHash: string;
  built: boolean;
  uploaded: boolean;
  uploadedBytes: number;
  sha256?: string;
  /** SCS `image_build_date` of the artifact in the bucket (its manifest's): the Instance image is tagged with it. */
  imageBuildDate?: string;
}

export async function publish(req: PublishRequest): Promise<PublishResult> {
  if (!req.expectedContentHash) throw new Error("publish needs the planned content hash (FACTORY_CONTENT_HASH)");
  const hash = req.expectedContentHash;
  if (!req.key.includes(hash) || !req.key.endsWith(".qcow2"))
    throw new Error(`artifact key ${req.key} must contain the content hash and end in .qcow2`);
  const s3 = s3Client(req.s3);
  const bucket = req.s3.bucket;
  const catalog = req.catalog ?? loadCatalog();
  const release = catalog.byId.get(req.releaseId);
  if (!release) throw new Error(`no release "${req.releaseId}" in the catalog`);
  // Resolving is cheap and verifies the upstream again: an upstream serial whose bytes changed (no checksum
  // pinned) must never be covered by an artifact built from the old bytes.
  const upstream = await resolveSource(osBase(catalog, release), req.arch, req.mirror);
  const sameUpstream = (m: Manifest) => m.upstream.checksum.hex === upstream.checksum.hex;

  const swept = await sweepStaleUploads(s3, bucket, { olderThanMs: req.staleUploadMs });
  for (const u of swept.aborted)
    process.stderr.write(
      `publish: aborted the multipart upload of ${u.key} started ${u.initiated!.toISOString()} (stale)\n`,
    );

  return withReference(s3, bucket, req.key, req.ref, req.refs ?? {}, () =>
    buildAndUpload(req, s3, upstream, sameUpstream),
  );
}

async function buildAndUpload(
  req: PublishRequest,
  s3: ReturnType<typeof s3Client>,
  upstream: Awaited<ReturnType<typeof resolveSource>>,
  sameUpstream: (m: Manifest) => boolean,
): Promise<PublishResult> {
  const hash = req.expectedContentHash!;
  const bucket = req.s3.bucket;
  const catalog = req.catalog ?? loadCatalog();
  const release = catalog.byId.get(req.releaseId)!;
  if ((await objectContentHash(s3, bucket, req.key)) === hash) {
    const existing = await readManifest(s3, bucket, `${req.key}.manifest.json`);
    if (existing && !sameUpstream(existing))
      throw new UpstreamChangedError(
        `${req.key}: upstream ${upstream.fileName} (serial ${upstream.serial}) now has ${upstream.checksum.algo} ${upstream.checksum.hex}, ` +
          `but the published artifact was built from ${existing.upstream.checksum.hex}: upstream replaced a build in place; ` +
          `pin the checksum in the catalog (a new content hash) after checking why`,
      );
    process.stderr.write(`publish ${req.key}: already in ${bucket}, nothing to build or upload\n`);
    if (req.releaseKey && existing && !(await getText(s3, bucket, companionKeys(req.key).provenance)))
      await attestPublished(req, s3, existing);
    await verifyBeforeImport(req, s3);
    return {
      key: req.key,
      contentHash: hash,
      built: false,
      uploaded: false,
      uploadedBytes: 0,
      imageBuildDate: existing?.scs.image_build_date,
    };
  }

  // The local artifact cache is content-addressed too: a rerun after a failed upload does not rebuild.
  const outDir = cacheDir("artifacts");
  const cached = join(outDir, artifactFileName(release, req.arch, hash));
  const cachedManifest =
    existsSync(cached) && existsSync(`${cached}.manifest.json`)
      ? (JSON.parse(readFileSync(`${cached}.manifest.json`, "utf8")) as Manifest)
      : undefined;
  let artifact: string;
  let manifest: Manifest;
  let built = false;
  if (cachedManifest && sameUpstream(cachedManifest)) {
    artifact = cached;
    manifest = cachedManifest;
  } else {
    const base = await layeringBase(req, s3, outDir);
    const result = await buildImage({ ...req, outDir, source: upstream, ...(base ? { base } : {}) });
    ({ artifact, manifest } = result);
    built = true;
  }

  // The manifest, SBOM, release notes and signed provenance go first; the artifact last marks the set complete.
  const companions = companionKeys(req.key);
  const manifestText = readFileSync(`${artifact}.manifest.json`, "utf8");
  const sbom = await ensureSbom(artifact, manifest, osBase(catalog, release).family);
  const notes = releaseNotes(
    await diffAgainstPrevious(s3, bucket, manifest.release, manifest.arch, req.key, sbomPackages(JSON.parse(sbom))),
    manifest,
  );
  const key = req.releaseKey ? releasePrivateKey(req.releaseKey, "FACTORY_RELEASE_KEY") : undefined;
  const bodies: [string, string, string][] = [
    [companions.manifest, manifestText, "application/json"],
    [companions.sbom, sbom, "application/vnd.cyclonedx+json"],
    [companions.notes, notes, "text/markdown"],
    ...(key
      ? [
          [
            companions.provenance,
            provenanceFor(req.key, artifact, manifest, manifestText, sbom, key),
            "application/vnd.dsse.envelope.v1+json",
          ] as [string, string, string],
        ]
      : []),
  ];
  for (const [Key, Body, ContentType] of bodies)
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body, ContentType }));
  try {
    const up = await uploadArtifact(s3, bucket, req.key, artifact, hash, {
      ...req.upload,
      metadata: { sha256: manifest.output.sha256, release: manifest.release, arch: manifest.arch },
    });
    process.stderr.write(
      `publish ${req.key}: uploaded ${(up.bytes / 2 ** 20).toFixed(1)} MiB${up.resumedParts ? `, ${up.resumedParts} parts resumed` : ""}\n`,
    );
    await verifyBeforeImport(req, s3);
    return {
      key: req.key,
      contentHash: hash,
      built,
      uploaded: !up.skipped,
      uploadedBytes: up.bytes,
      sha256: manifest.output.sha256,
      imageBuildDate: manifest.scs.image_build_date,
    };
  } catch (err) {
    // No manifest without its artifact (unless another publisher of the same key has just finished it).
    if ((await objectContentHash(s3, bucket, req.key).catch(() => undefined)) !== hash)
      for (const [Key] of bodies)
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key })).catch(() => undefined);
    throw err;
  }
}

/**
 * An app's base artifact when it is published under the hash the app's inputs name; otherwise the app is
 * customised from the upstream (same inputs, same hash, only slower), so a stack shipping an app without its base,
 * or a base whose publish failed, still ships the app. The log says which road was taken.
 */
async function layeringBase(
  req: PublishRequest,
  s3: ReturnType<typeof s3Client>,
  outDir: string,
): Promise<BaseArtifact | undefined> {
  const catalog = req.catalog ?? loadCatalog();
  const release = catalog.byId.get(req.releaseId)!;
  if (release.kind !== "app") return undefined;
  const os = osBase(catalog, release);
  const inputs = hashInputs(
    catalog,
    release,
    req.arch,
    withBaseEpoch(catalog, release, req.arch, req.dials, req.expectedContentHash),
  );
  const { found, note } = await findBaseArtifact(s3, req.s3.bucket, os, req.arch, inputs, outDir);
  process.stderr.write(
    `publish ${req.key}: ${found ? `layering on ${note}` : `${note}: customising from the upstream`}\n`,
  );
  return found;
}

export class UpstreamChangedError extends Error {}

/**
 * An artifact published before the factory signed anything: its bytes (the cached file, else downloaded) are
 * signed only if their sha256 is the one its manifest recorded at build time; the SBOM is read from them.
 */
async function attestPublished(
  req: PublishRequest,
  s3: ReturnType<typeof s3Client>,
  manifest: Manifest,
): Promise<void> {
  const bucket = req.s3.bucket;
  const catalog = req.catalog ?? loadCatalog();
  const release = catalog.byId.get(req.releaseId)!;
  const artifact = join(cacheDir("artifacts"), artifactFileName(release, req.arch, manifest.contentHash));
  if (!existsSync(artifact) || (await digestFile(artifact, "sha256")) !== manifest.output.sha256) {
    const body = (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: req.key }))).Body as Readable;
    await pipeline(body, createWriteStream(`${artifact}.part`));
    renameSync(`${artifact}.part`, artifact);
    rmSync(`${artifact}.cdx.json`, { force: true });
  }
  const sha256 = await digestFile(artifact, "sha256");
  if (sha256 !== manifest.output.sha256)
    throw new SignatureError(
      `${req.key}: sha256 ${sha256} is not the ${manifest.output.sha256} its manifest recorded at build time: refusing to sign it`,
    );
  const companions = companionKeys(req.key);
  const manifestText = (await getText(s3, bucket, companions.manifest))!;
  const sbom = await ensureSbom(artifact, manifest, osBase(catalog, release).family);
  const notes = releaseNotes(
    await diffAgainstPrevious(s3, bucket, manifest.release, manifest.arch, req.key, sbomPackages(JSON.parse(sbom))),
    manifest,
  );
  const provenance = provenanceFor(
    req.key,
    artifact,
    manifest,
    manifestText,
    sbom,
    releasePrivateKey(req.releaseKey!, "FACTORY_RELEASE_KEY"),
  );
  for (const [Key, Body] of [
    [companions.sbom, sbom],
    [companions.notes, notes],
    [companions.provenance, provenance],
  ] as const)
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body }));
  process.stderr.write(
    `publish ${req.key}: signed the provenance of an artifact published before signing (its bytes match its manifest)\n`,
  );
}

/**
 * The artifact in the bucket, checked against its signed provenance before publish reports success: the snapshot
 * import depends on publish, so a tampered artifact, manifest or SBOM is never imported. Without a release key
 * there is nothing to check against: said on stderr, not hidden.
 */
async function verifyBeforeImport(req: PublishRequest, s3: ReturnType<typeof s3Client>): Promise<void> {
  if (!req.releaseKey) {
    process.stderr.write(
      `publish ${req.key}: no release key (image-factory:releaseKey): the artifact is neither signed nor verified\n`,
    );
    return;
  }
  // The artifact's sha256 is reused when this machine read this object version in full before (a second publish
  // of an unchanged artifact): the signature, the manifest and the SBOM are checked again every time.
  let read = true;
  await verifyInBucket(s3, req.s3, req.key, releasePublicKey(req.releaseKey, "FACTORY_RELEASE_KEY"), {
    reuseDigest: true,
    onArtifactDigest: (d) => (read = d.read),
  });
  process.stderr.write(
    `publish ${req.key}: provenance signature and digests verified${read ? "" : " (the artifact's sha256 as this machine read this object version before)"}\n`,
  );
}

async function readManifest(
  s3: ReturnType<typeof s3Client>,
  bucket: string,
  key: string,
): Promise<Manifest | undefined> {
  try {
    const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await obj.Body!.transformToString()) as Manifest;
  } catch (err) {
    if ((err as Error).name === "NoSuchKey") return undefined;
    throw err;
  }
}

export async function unpublish(
  s3Target: S3Target,
  key: string,
  ref: string,
  refs?: RefsOptions,
): Promise<{ deleted: boolean }> {
  return dropReference(s3Client(s3Target), s3Target.bucket, key, ref, refs);
}
