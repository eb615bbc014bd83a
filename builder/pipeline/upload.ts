/**
 * Upload to S3-compatible Object Storage with the AWS SDK: multipart, retried per part, resumable across runs
 * (an interrupted upload of the same key and content hash is continued, its finished parts kept), and skipped
 * when the object with that content hash already exists. A failed upload is aborted so nothing half-written
 * stays in the bucket.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { open } from "node:fs/promises";

export interface S3Target {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function s3Client(t: S3Target): S3Client {
  return new S3Client({
    endpoint: t.endpoint,
    region: t.region,
    // Scaleway and local servers both serve path-style; virtual-host style needs DNS per bucket.
    forcePathStyle: true,
    credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey },
    maxAttempts: 5,
    // No response CRC unless a request asks for one: the SDK computes it in JavaScript (seconds per artifact read
    // back), and what is read back is checked by sha256 against signed digests.
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/** Scaleway allows up to 1000 parts; 64 MiB parts keep a 60 GiB image under that. */
export const DEFAULT_PART_SIZE = 64 * 2 ** 20;

export interface UploadResult {
  key: string;
  skipped: boolean;
  bytes: number;
  /** Parts reused from an interrupted earlier upload. */
  resumedParts: number;
}

const HASH_META = "content-hash";

export async function objectContentHash(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.Metadata?.[HASH_META] ?? "";
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (err as Error).name === "NotFound") return undefined;
    throw err;
  }
}

async function readPart(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export interface UploadOptions {
  partSize?: number;
  /** Called after each part; tests interrupt uploads through it. */
  onPart?: (partNumber: number, parts: number) => void | Promise<void>;
  /** Extra object metadata (sha256, release). */
  metadata?: Record<string, string>;
  /** Parts uploaded at once (default 4). */
  concurrency?: number;
}

/**
 * Uploads `file` to `key` tagged with `contentHash`. Same key and hash already there: nothing is sent.
 * On an error the multipart upload is aborted, unless the process dies first, in which case the next run
 * resumes it.
 */
export async function uploadArtifact(
  s3: S3Client,
  bucket: string,
  key: string,
  file: string,
  contentHash: string,
  opts: UploadOptions = {},
): Promise<UploadResult> {
  const size = statSync(file).size;
  const existing = await objectContentHash(s3, bucket, key);
  if (existing === contentHash) return { key, skipped: true, bytes: 0, resumedParts: 0 };
  const metadata = { ...opts.metadata, [HASH_META]: contentHash };
  const partSize = Math.max(5 * 2 ** 20, opts.partSize ?? DEFAULT_PART_SIZE);
  if (size <= partSize) {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: createReadStream(file),
        ContentLength: size,
        Metadata: metadata,
      }),
    );
    return { key, skipped: false, bytes: size, resumedParts: 0 };
  }

  // Resume an upload of the same content that an earlier run left unfinished.
  const pending = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  let uploadId: string | undefined;
  const done = new Map<number, CompletedPart & { Size?: number }>();
  for (const u of pending.Uploads ?? []) {
    if (u.Key !== key || !u.UploadId) continue;
    if (uploadId === undefined) {
      uploadId = u.UploadId;
      const parts = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      for (const p of parts.Parts ?? [])
        done.set(p.PartNumber!, { PartNumber: p.PartNumber, ETag: p.ETag, Size: p.Size });
    } else {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: u.UploadId }));
    }
  }
  uploadId ??= (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: metadata })))
    .UploadId!;

  const count = Math.ceil(size / partSize);
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  let resumedParts = 0;
  let bytes = 0;
  try {
    const parts = new Array<CompletedPart>(count);
    let next = 1;
    let failed = false;
    // A few parts in flight at once, as the standard managed uploaders do; each part retried by the SDK.
    const worker = async () => {
      while (next <= count && !failed) {
        const n = next++;
        const offset = (n - 1) * partSize;
        const body = await readPart(file, offset, Math.min(partSize, size - offset));
        const prior = done.get(n);
        // A part from the earlier run counts only if it holds these very bytes.
        if (prior && prior.ETag === `"${createHash("md5").update(body).digest("hex")}"` && prior.Size === body.length) {
          parts[n - 1] = { PartNumber: n, ETag: prior.ETag };
          resumedParts++;
          continue;
        }
        const res = await s3.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body }),
        );
        parts[n - 1] = { PartNumber: n, ETag: res.ETag };
        bytes += body.length;
        await opts.onPart?.(n, count);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(concurrency, count) }, () =>
        worker().catch((err: unknown) => {
          failed = true;
          throw err;
        }),
      ),
    );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (err) {
    await s3
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
      .catch(() => undefined);
    throw err;
  }
  return { key, skipped: false, bytes, resumedParts };
}

/** Multipart uploads younger than this may belong to a publisher still uploading: the sweep keeps them. */
export const DEFAULT_STALE_UPLOAD_MS = 24 * 3600_000;

export interface PendingUpload {
  key: string;
  uploadId: string;
  initiated?: Date;
}

/** The uploads old enough to abort: initiated at least `olderThanMs` before `now` (no date: kept, age unknown). */
export function staleUploads(uploads: PendingUpload[], now: number, olderThanMs: number): PendingUpload[] {
  return uploads.filter((u) => u.initiated !== undefined && now - u.initiated.getTime() >= olderThanMs);
}

export interface SweepOptions {
  /** Only uploads under this prefix (the factory's, `images/`). */
  prefix?: string;
  olderThanMs?: number;
  now?: () => number;
}

/**
 * Aborts multipart uploads under the prefix that were started long ago: a publisher killed mid-upload leaves its
 * parts billed in the bucket, and only a rerun for the same key would resume or abort them.
 */
export async function sweepStaleUploads(
  s3: S3Client,
  bucket: string,
  opts: SweepOptions = {},
): Promise<{ aborted: PendingUpload[]; kept: number }> {
  const all: PendingUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    const page = await s3.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        Prefix: opts.prefix ?? "images/",
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      }),
    );
    for (const u of page.Uploads ?? [])
      if (u.Key && u.UploadId) all.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
    [keyMarker, uploadIdMarker] = page.IsTruncated
      ? [page.NextKeyMarker, page.NextUploadIdMarker]
      : [undefined, undefined];
  } while (keyMarker);
  const stale = staleUploads(all, (opts.now ?? Date.now)(), opts.olderThanMs ?? DEFAULT_STALE_UPLOAD_MS);
  for (const u of stale)
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
  return { aborted: stale, kept: all.length - stale.length };
}
