/**
 * The sha256 of an artifact in the bucket, read in full once per object version on this machine. publish verifies
 * the artifact against its signed provenance before every import; reading hundreds of MiB back each time an
 * unchanged artifact is published again (every zone's stack, every second run) was most of such a run.
 *
 * What proves the bytes when they are not read again: the server's own identity of the object version. Its ETag is
 * computed by the server from the content (the MD5 of the object, or of its parts' MD5s for a multipart upload), its
 * Last-Modified is set by the server on every write, and its size: a PUT or a completed upload replacing the bytes
 * gives a new ETag and Last-Modified, which no client chooses. The sha256 recorded for an identity was computed here
 * from the very response that carried that identity, so the record says what those bytes hash to, not what anyone
 * claimed (the object's `sha256` metadata is the uploader's claim, and is never used). Records live in the per-user
 * cache, trusted as the content-addressed artifact cache beside it is: whoever can write there can already swap an
 * artifact before its upload. No identity (a server without ETag or Last-Modified): the bytes are read every time.
 */
import { GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { cacheDir } from "../system/paths";

/** One version of one object, as the server identifies it. */
export interface ObjectIdentity {
  endpoint: string;
  bucket: string;
  key: string;
  etag: string;
  size: number;
  lastModified: string;
  /** Only in a versioned bucket. */
  versionId?: string;
}

/** What HeadObject and GetObject both answer. */
export interface ObjectHeaders {
  ETag?: string;
  ContentLength?: number;
  LastModified?: Date;
  VersionId?: string;
}

/** The identity the headers give, or undefined when one part is missing (then nothing may be reused). */
export function identityOf(
  where: { endpoint: string; bucket: string; key: string },
  h: ObjectHeaders,
): ObjectIdentity | undefined {
  if (!h.ETag || h.ContentLength === undefined || !h.LastModified || Number.isNaN(h.LastModified.getTime()))
    return undefined;
  return {
    endpoint: where.endpoint.replace(/\/+$/, ""),
    bucket: where.bucket,
    key: where.key,
    etag: h.ETag,
    size: h.ContentLength,
    lastModified: h.LastModified.toISOString(),
    ...(h.VersionId && h.VersionId !== "null" ? { versionId: h.VersionId } : {}),
  };
}

/** The canonical text of an identity: fixed field order, so equal identities give one record name. */
function canonical(id: ObjectIdentity): string {
  return JSON.stringify([id.endpoint, id.bucket, id.key, id.etag, id.size, id.lastModified, id.versionId ?? null]);
}

/** The record's file name: one file per object version, so concurrent publishes of other objects never collide. */
export function recordName(id: ObjectIdentity): string {
  return `${createHash("sha256").update(canonical(id)).digest("hex")}.json`;
}

interface DigestRecord {
  identity: ObjectIdentity;
  sha256: string;
  hashedAt: string;
}

/** The recorded sha256 when the record is for exactly this identity and holds a sha256; otherwise undefined. */
export function recordedSha256(id: ObjectIdentity, record: unknown): string | undefined {
  const r = record as Partial<DigestRecord> | undefined;
  if (!r?.identity || typeof r.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(r.sha256)) return undefined;
  return canonical(r.identity) === canonical(id) ? r.sha256 : undefined;
}

const recordsDir = () => cacheDir("bucket-digests");

function readRecord(id: ObjectIdentity): unknown {
  try {
    return JSON.parse(readFileSync(join(recordsDir(), recordName(id)), "utf8"));
  } catch {
    return undefined;
  }
}

function writeRecord(id: ObjectIdentity, sha256: string): void {
  const dir = recordsDir();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, recordName(id));
  const record: DigestRecord = { identity: id, sha256, hashedAt: new Date().toISOString() };
  writeFileSync(`${file}.${process.pid}.tmp`, `${JSON.stringify(record)}\n`);
  renameSync(`${file}.${process.pid}.tmp`, file);
}

/**
 * sha256 of an object, streamed: what the snapshot import will read, not what its metadata claims. (The client asks
 * for no response CRC, see s3Client: this sha256 is compared with a signed digest.) The identity that came with the
 * bytes is recorded with their sha256, for `objectSha256Reused`.
 */
export async function objectSha256(
  s3: S3Client,
  where: { endpoint: string; bucket: string; key: string },
): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: where.bucket, Key: where.key }));
  const h = createHash("sha256");
  for await (const chunk of res.Body as Readable) h.update(chunk as Buffer);
  const sha256 = h.digest("hex");
  const id = identityOf(where, res);
  if (id) writeRecord(id, sha256);
  return sha256;
}

/**
 * sha256 of an object: the one recorded when this machine last read this very object version in full (see the top
 * of this file for what proves the bytes unchanged), else read and hashed now. `read` says which.
 */
export async function objectSha256Reused(
  s3: S3Client,
  where: { endpoint: string; bucket: string; key: string },
): Promise<{ sha256: string; read: boolean }> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: where.bucket, Key: where.key }));
  const id = identityOf(where, head);
  const known = id && recordedSha256(id, readRecord(id));
  if (known) return { sha256: known, read: false };
  return { sha256: await objectSha256(s3, where), read: true };
}
