/**
 * Who holds a shared artifact. Stacks share content-addressed artifacts (one per region and content hash), so the
 * artifact must exist exactly while some stack references it, whatever the interleaving of concurrent publish and
 * unpublish of the same key.
 *
 * On-bucket layout, per artifact `<key>` (e.g. `images/debian-12/x86_64/<hash>.qcow2`):
 *   <key>                  the artifact
 *   <key>.manifest.json    its build manifest; beside it the SBOM, release notes and signed provenance
 *                          (ARTIFACT_COMPANIONS), written before the artifact and deleted after it
 *   <key>.refs             the references record, JSON: {"refs": ["<stack>/<name>", …]}, or
 *                          {"refs": [], "deletingSince": "<ISO time>"} while the artifact is being deleted
 *
 * Every change of the record is a compare-and-swap: a conditional PutObject (`If-None-Match: *` to create it,
 * `If-Match: <etag>` to replace it), which both Scaleway Object Storage and the embedded server implement; a lost
 * race answers 412 (or 409) and the loser reads again. Only the writer that empties the record (marking it
 * "deleting") deletes the artifact, then the record. A publisher that finds a deletion under way waits for it, and
 * finishes it itself once it is older than `staleDeletionMs` (its deleter died). Publishers record their reference
 * before they look for the artifact, so no deletion can start while they build or upload.
 *
 * Older releases kept one empty object per reference, `<key>.refs/<ref>`; they are folded into the record the first
 * time it is written.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { z } from "zod";

export const RefsRecord = z.object({
  refs: z.array(z.string().min(1)),
  deletingSince: z.string().datetime().optional(),
});
export type RefsRecord = z.infer<typeof RefsRecord>;

export const recordKey = (key: string) => `${key}.refs`;
const legacyPrefix = (key: string) => `${key}.refs/`;

export interface RefsOptions {
  /** A deletion older than this is taken over by the next publisher (default 10 minutes: a deletion takes seconds). */
  staleDeletionMs?: number;
  /** How long a publisher sleeps between looks at a deletion under way (default 1 s). */
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const DEFAULT_STALE_DELETION_MS = 10 * 60_000;

// ---- pure transitions (table-tested) ----

export type AddStep =
  { kind: "write"; record: RefsRecord } | { kind: "held" } | { kind: "wait" } | { kind: "finish-deletion" };

/** What a publisher does with the record it read (undefined: no record). */
export function planAdd(current: RefsRecord | undefined, ref: string, now: number, staleDeletionMs: number): AddStep {
  if (!current) return { kind: "write", record: { refs: [ref] } };
  if (current.deletingSince !== undefined)
    return now - Date.parse(current.deletingSince) >= staleDeletionMs ? { kind: "finish-deletion" } : { kind: "wait" };
  if (current.refs.includes(ref)) return { kind: "held" };
  return { kind: "write", record: { refs: [...current.refs, ref].sort() } };
}

export type DropStep =
  { kind: "write"; record: RefsRecord; thenDelete: boolean } | { kind: "not-held" } | { kind: "wait" };

/** What an unpublisher does with the record it read (undefined: no record, so nothing holds the artifact). */
export function planDrop(current: RefsRecord | undefined, ref: string, now: number): DropStep {
  if (current?.deletingSince !== undefined) return { kind: "wait" };
  const refs = current?.refs ?? [];
  if (current && !refs.includes(ref) && refs.length > 0) return { kind: "not-held" };
  const left = refs.filter((r) => r !== ref);
  if (left.length > 0) return { kind: "write", record: { refs: left }, thenDelete: false };
  return { kind: "write", record: { refs: [], deletingSince: new Date(now).toISOString() }, thenDelete: true };
}

// ---- the record on the bucket ----

interface Read {
  record: RefsRecord;
  etag: string;
}

const status = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const notFound = (err: unknown) => status(err) === 404 || ["NoSuchKey", "NotFound"].includes((err as Error).name);
/**
 * A lost compare-and-swap: 412 Precondition Failed, or 409 ConditionalRequestConflict (a concurrent conditional
 * write, in S3's documentation). Not any 409: the embedded server answers 409 ExistingObjectIsDirectory too.
 */
const lostRace = (err: unknown) => status(err) === 412 || (err as Error).name === "ConditionalRequestConflict";

async function readRecord(s3: S3Client, bucket: string, key: string): Promise<Read | undefined> {
  try {
    const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: recordKey(key) }));
    const text = await obj.Body!.transformToString();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    const parsed = RefsRecord.safeParse(json);
    if (!parsed.success)
      throw new Error(
        `s3://${bucket}/${recordKey(key)}: not a references record: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(record)"}: ${i.message}`).join("; ")}`,
      );
    return { record: parsed.data, etag: obj.ETag! };
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

/** Compare-and-swap: create (no etag) or replace (etag). Undefined when another writer got there first. */
async function writeRecord(
  s3: S3Client,
  bucket: string,
  key: string,
  record: RefsRecord,
  etag?: string,
): Promise<string | undefined> {
  try {
    const res = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: recordKey(key),
        Body: JSON.stringify(record),
        ContentType: "application/json",
        ...(etag ? { IfMatch: etag } : { IfNoneMatch: "*" }),
      }),
    );
    return res.ETag ?? "";
  } catch (err) {
    // If-Match on a record deleted since it was read answers 404 (NoSuchKey) on the embedded server: lost too.
    if (lostRace(err) || (etag && notFound(err))) return undefined;
    throw err;
  }
}

async function legacyRefs(s3: S3Client, bucket: string, key: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: legacyPrefix(key), ContinuationToken: token }),
    );
    for (const c of page.Contents ?? []) keys.push(c.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/**
 * The record, after folding in the references of the older layout when there is no record yet. Where the server
 * keeps objects as files (`<key>.refs/` a directory) the record cannot be created beside the old objects, so they
 * go first there; elsewhere they go only once the record holds them.
 */
async function readOrMigrate(s3: S3Client, bucket: string, key: string): Promise<Read | undefined> {
  const cur = await readRecord(s3, bucket, key);
  if (cur) return cur;
  const legacy = await legacyRefs(s3, bucket, key);
  if (legacy.length === 0) return undefined;
  const record: RefsRecord = {
    refs: [...new Set(legacy.map((k) => decodeURIComponent(k.slice(legacyPrefix(key).length))))].sort(),
  };
  const dropLegacy = async () => {
    for (const k of legacy) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
  };
  let created: string | undefined;
  try {
    created = await writeRecord(s3, bucket, key, record);
  } catch (err) {
    if ((err as Error).name !== "ExistingObjectIsDirectory") throw err;
    await dropLegacy();
    created = await writeRecord(s3, bucket, key, record);
  }
  if (created !== undefined) await dropLegacy();
  return readRecord(s3, bucket, key);
}

/** What publish writes beside an artifact (builder/pipeline/provenance.ts's companionKeys): it goes with the artifact. */
export const ARTIFACT_COMPANIONS = [".manifest.json", ".cdx.json", ".notes.md", ".provenance.dsse.json"] as const;

async function deleteArtifact(s3: S3Client, bucket: string, key: string, recordEtag: string): Promise<void> {
  // The artifact first: without it the set is incomplete and publish rebuilds it, companions included.
  for (const k of [key, ...ARTIFACT_COMPANIONS.map((suffix) => `${key}${suffix}`)])
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
  // Conditional, so a deleter that stalled past the threshold cannot remove a record a publisher created since.
  // Scaleway documents conditional writes but not conditional deletes: where If-Match on DeleteObject is refused,
  // compare the etag just before an unconditional delete instead (a narrower window, not none).
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: recordKey(key), IfMatch: recordEtag }));
  } catch (err) {
    if (lostRace(err) || notFound(err)) return;
    if (status(err) !== 400 && status(err) !== 501) throw err;
    if ((await readRecord(s3, bucket, key))?.etag === recordEtag)
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: recordKey(key) }));
  }
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Records `ref` as a holder of `key`. Returns whether this call added it (false: it was already there). Once it
 * returns, no unpublish deletes the artifact until `ref` is dropped.
 */
export async function addReference(
  s3: S3Client,
  bucket: string,
  key: string,
  ref: string,
  opts: RefsOptions = {},
): Promise<{ added: boolean }> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? realSleep;
  for (;;) {
    const cur = await readOrMigrate(s3, bucket, key);
    const step = planAdd(cur?.record, ref, now(), opts.staleDeletionMs ?? DEFAULT_STALE_DELETION_MS);
    if (step.kind === "held") return { added: false };
    if (step.kind === "wait") await sleep(opts.pollMs ?? 1000);
    else if (step.kind === "finish-deletion") await deleteArtifact(s3, bucket, key, cur!.etag);
    else if ((await writeRecord(s3, bucket, key, step.record, cur?.etag)) !== undefined) return { added: true };
  }
}

/**
 * Holds `ref` on `key` while `work` runs (publish: look for the artifact, build, upload) and keeps it when `work`
 * succeeds. A failed `work` gives back the reference it added: Pulumi records no resource for a failed create, so
 * no unpublish would ever drop it.
 */
export async function withReference<T>(
  s3: S3Client,
  bucket: string,
  key: string,
  ref: string,
  opts: RefsOptions,
  work: () => Promise<T>,
): Promise<T> {
  const { added } = await addReference(s3, bucket, key, ref, opts);
  try {
    return await work();
  } catch (err) {
    if (added) await dropReference(s3, bucket, key, ref, opts).catch(() => undefined);
    throw err;
  }
}

/**
 * Drops `ref`; the caller that drops the last reference deletes the artifact and its manifest (`deleted: true`).
 * An artifact no record holds is deleted too: nothing references it.
 */
export async function dropReference(
  s3: S3Client,
  bucket: string,
  key: string,
  ref: string,
  opts: RefsOptions = {},
): Promise<{ deleted: boolean }> {
  const now = opts.now ?? Date.now;
  for (;;) {
    const cur = await readOrMigrate(s3, bucket, key);
    if (!cur && !(await anythingLeft(s3, bucket, key))) return { deleted: false };
    const step = planDrop(cur?.record, ref, now());
    // "wait": another unpublisher is deleting it, so our reference is gone already.
    if (step.kind === "not-held" || step.kind === "wait") return { deleted: false };
    const etag = await writeRecord(s3, bucket, key, step.record, cur?.etag);
    if (etag === undefined) continue;
    if (step.thenDelete) await deleteArtifact(s3, bucket, key, etag);
    return { deleted: step.thenDelete };
  }
}

async function anythingLeft(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  for (const k of [key, ...ARTIFACT_COMPANIONS.map((suffix) => `${key}${suffix}`)]) {
    try {
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }));
      return true;
    } catch (err) {
      if (!notFound(err)) throw err;
    }
  }
  return false;
}

/** The references `key` has now (tests and diagnostics). */
export async function references(s3: S3Client, bucket: string, key: string): Promise<RefsRecord | undefined> {
  return (await readRecord(s3, bucket, key))?.record;
}
