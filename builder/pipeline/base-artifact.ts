/**
 * Layering: an InstantApp is built on its base's published artifact, found by the base's content hash (which the
 * app's inputs carry), instead of customising the upstream again. The artifact is taken from this machine's
 * artifact cache or downloaded from the bucket, and used only when its sha256 is the one its manifest records.
 */
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import type { Architecture, Release } from "../../images/schema";
import { artifactFileName, type BaseArtifact, type Manifest } from "./build";
import { digestFile } from "./fetch";
import { artifactKey, type HashInputs } from "../core/plan";
import { objectContentHash } from "./upload";

export interface BaseLookup {
  /** Where the base artifact was found, or why the app is customised from the upstream instead. */
  found: BaseArtifact | undefined;
  note: string;
}

async function verified(artifact: string, manifest: Manifest): Promise<BaseArtifact | undefined> {
  return (await digestFile(artifact, "sha256")) === manifest.output.sha256 ? { artifact, manifest } : undefined;
}

/**
 * The base artifact an app's inputs name, from `cacheDir` (the local artifact cache) or else the bucket. Absent
 * (not published yet, or not under that hash) is not an error: the caller customises from the upstream, which
 * gives an app with the same inputs, only slower.
 */
export async function findBaseArtifact(
  s3: S3Client,
  bucket: string,
  base: Release,
  arch: Architecture,
  inputs: HashInputs,
  cacheDir: string,
): Promise<BaseLookup> {
  const hash = inputs.baseContentHash;
  if (!hash || inputs.base !== base.id) return { found: undefined, note: "not an app" };
  const file = join(cacheDir, artifactFileName(base, arch, hash));
  if (existsSync(file) && existsSync(`${file}.manifest.json`)) {
    const manifest = JSON.parse(readFileSync(`${file}.manifest.json`, "utf8")) as Manifest;
    const found = manifest.contentHash === hash ? await verified(file, manifest) : undefined;
    if (found) return { found, note: `base ${base.id} ${hash.slice(0, 16)} from the artifact cache` };
  }
  const key = artifactKey(base.id, arch, hash);
  if ((await objectContentHash(s3, bucket, key)) !== hash)
    return { found: undefined, note: `base ${base.id} ${hash.slice(0, 16)} is not in ${bucket} (${key})` };
  const manifestObj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${key}.manifest.json` }));
  const manifest = JSON.parse(await manifestObj.Body!.transformToString()) as Manifest;
  if (manifest.contentHash !== hash)
    return { found: undefined, note: `${bucket}/${key}.manifest.json names content hash ${manifest.contentHash}` };
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${file}.${process.pid}.part`;
  try {
    const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    await pipeline(obj.Body as Readable, createWriteStream(partial));
    if (!(await verified(partial, manifest)))
      return {
        found: undefined,
        note: `${bucket}/${key} does not have the sha256 its manifest records (${manifest.output.sha256})`,
      };
    writeFileSync(`${file}.manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(partial, file);
  } finally {
    rmSync(partial, { force: true });
  }
  return {
    found: { artifact: file, manifest },
    note: `base ${base.id} ${hash.slice(0, 16)} downloaded from ${bucket}`,
  };
}
