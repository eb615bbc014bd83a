/** The build pipeline's subcommands: resolve, fetch, build, upload, publish, unpublish. */
import { register } from "./registry";
import { buildImage } from "../pipeline/build";
import { PublishContract, UnpublishContract } from "../core/contract";
import { fetchUpstreamImage } from "../pipeline/inspect-upstream";
import { publish, unpublish } from "../pipeline/publish";
import { s3Client, uploadArtifact } from "../pipeline/upload";
import {
  need,
  sourceOptions,
  buildOptions,
  JSON_OUTPUT,
  buildInputs,
  inputsFrom,
  s3Options,
  S3_CREDENTIALS,
  CACHE,
  APPLIANCE,
  s3Target,
  s3From,
  out,
  resolveFor,
} from "./command-inputs";

register("resolve", {
  summary: "read the upstream checksum file (verifying its signature) for a release's pinned build",
  usage: "image-factory resolve <id> [--arch x86_64] [--mirror URL]",
  options: { ...sourceOptions("x86_64"), ...JSON_OUTPUT },
  async run(v, p) {
    out((await resolveFor(v, p)).source);
  },
});

register("fetch", {
  summary: "download and verify a release's upstream image into the cache; prints its path",
  usage: "image-factory fetch <id> [--arch x86_64] [--mirror URL]",
  options: { ...sourceOptions("x86_64"), ...JSON_OUTPUT },
  environment: CACHE,
  async run(v, p) {
    const { release, arch, source } = await resolveFor(v, p);
    out({
      path: await fetchUpstreamImage(source, `${release.id} ${arch}`),
      checksum: source.checksum,
    });
  },
});

register("build", {
  summary: "resolve, fetch, customise and finalise an image into DIR (qcow2 + manifest.json)",
  usage:
    "image-factory build <id> --out DIR --release-epoch 2026Q4 --ecosystem-version V --ecosystem-repository URL [--arch] [--mirror] [--security-epoch N]",
  options: {
    ...buildOptions("x86_64"),
    out: { type: "string", value: "DIR", description: "where to write the qcow2 and manifest.json" },
    ...JSON_OUTPUT,
  },
  environment: { ...CACHE, ...APPLIANCE },
  async run(v, p) {
    const result = await buildImage({ ...buildInputs(v, p), outDir: need(v, "out") });
    out({
      artifact: result.artifact,
      manifest: result.manifestFile,
      contentHash: result.manifest.contentHash,
      sha256: result.manifest.output.sha256,
    });
  },
});

register("upload", {
  summary: "upload a built artifact to Object Storage (multipart, resumable, skipped when present)",
  usage: "image-factory upload --file F --bucket B --key K --region R [--endpoint URL] --content-hash H",
  options: {
    ...s3Options,
    file: { type: "string", value: "FILE", description: "the built qcow2" },
    "content-hash": {
      type: "string",
      value: "SHA256",
      env: "FACTORY_CONTENT_HASH",
      description: "the artifact's content hash, recorded on the object",
    },
  },
  environment: S3_CREDENTIALS,
  async run(v) {
    const target = s3Target(v);
    out(
      await uploadArtifact(s3Client(target), target.bucket, need(v, "key"), need(v, "file"), need(v, "content-hash")),
    );
  },
});

register("publish", {
  summary: "build and upload unless the bucket already holds this content hash (the ZonalImage Command)",
  usage: "image-factory publish   (FACTORY_* environment, as the ZonalImage Command sets it)",
  options: {
    ...buildOptions(undefined),
    ...s3Options,
    ref: { type: "string", value: "STACK/NAME", description: "the stack's reference to the artifact" },
    "stale-upload-hours": {
      type: "string",
      value: "HOURS",
      description: "abort multipart uploads under images/ older than this (24 when unset)",
    },
  },
  environment: { ...CACHE, ...APPLIANCE, ...S3_CREDENTIALS },
  contract: PublishContract,
  async run(_v, _p, e) {
    // Multipart uploads under images/ older than this are aborted (default 24 h): younger ones may be in progress.
    const staleUploadMs = e.staleUploadHours === undefined ? undefined : e.staleUploadHours * 3600_000;
    out(
      await publish({
        ...inputsFrom({ ...e, contentHash: e.contentHash }),
        s3: s3From(e),
        key: e.key,
        ref: e.ref,
        staleUploadMs,
        releaseKey: e.releaseKey,
      }),
    );
  },
});

register("unpublish", {
  summary: "drop a stack's reference to an artifact; delete the artifact with the last reference",
  usage: "image-factory unpublish   (FACTORY_BUCKET, FACTORY_KEY, FACTORY_REF, FACTORY_S3_*)",
  options: { ...s3Options, ref: { type: "string", value: "STACK/NAME", description: "the stack's reference to drop" } },
  environment: S3_CREDENTIALS,
  contract: UnpublishContract,
  async run(_v, _p, e) {
    out(await unpublish(s3From(e), e.key, e.ref));
  },
});
