/**
 * Downloads into a content-addressed cache: `blobs/<algo>/<hex>` appears only after a digest over the whole file
 * matched, by atomic rename. A try that fails (connection reset or closed mid-body, 5xx, stall) is retried with
 * backoff, resuming with an HTTP Range request validated by If-Range (ETag/Last-Modified) and the file's size; a
 * server that ignores the Range is read from byte 0. Partial files are per process (`<algo>-<hex>.<pid>.part`,
 * adopted by a later run once that process is gone), are only ever trusted through the whole-file digest, and are
 * removed when a fetch fails for good. Cached blobs are verified again before each use, and so is what `inspect`
 * judges (an upstream image's header): a file it refuses is never cached, or is dropped from the cache.
 */
import { createHash } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import type { Checksum } from "./checksums";
import { HttpStatusError, openGet } from "./http-get";
import { cacheDir } from "../system/paths";
import { backoffDelay, describeCause, judgeResponse, resumeHeaders, type PartialMeta } from "./resume";

/** A digest to verify a download against: upstreams' checksum files use sha256/sha512; WordPress publishes sha1. */
export interface Digest {
  algo: Checksum["algo"] | "sha1";
  hex: string;
}

export interface FetchOptions {
  /** Tries in all, the first included (default 6). */
  tries?: number;
  /** Backoff after the first failed try, doubled after each (default 1 s, at most `maxBackoffMs`, default 30 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A connection that carries nothing for this long fails the try (default 60 s). */
  idleTimeoutMs?: number;
}

const DEFAULTS: Required<FetchOptions> = { tries: 6, backoffMs: 1000, maxBackoffMs: 30_000, idleTimeoutMs: 60_000 };

export class ChecksumMismatchError extends Error {
  constructor(what: string, expected: Digest, actual: string) {
    super(`${what}: ${expected.algo} mismatch: expected ${expected.hex}, got ${actual}; nothing was cached`);
    this.name = "ChecksumMismatchError";
  }
}

/** A download that failed for good: the URL, how many tries, and the last cause, in one line. */
export class DownloadError extends Error {
  constructor(
    url: string,
    reason: string,
    readonly tries?: number,
  ) {
    super(
      `download of ${url} failed${tries !== undefined ? ` after ${tries} ${tries === 1 ? "try" : "tries"}` : ""}: ${reason}`,
    );
    this.name = "DownloadError";
  }
}

export async function digestFile(path: string, algo: Digest["algo"]): Promise<string> {
  const hash = createHash(algo);
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Small files (checksum lists, signatures): fetched fresh every time, with retries; at most 64 MiB. */
export async function fetchBytes(url: string, options: FetchOptions = {}): Promise<Buffer> {
  const o = { ...DEFAULTS, ...options };
  let last = "";
  for (let attempt = 1; attempt <= o.tries; attempt++) {
    try {
      const { res } = await openGet(url, { idleTimeoutMs: o.idleTimeoutMs });
      const chunks: Buffer[] = [];
      let size = 0;
      if (res.statusCode !== 200) {
        res.on("error", () => undefined).resume();
        throw new HttpStatusError(res.statusCode ?? 0, url, res.statusMessage);
      }
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          size += chunk.length;
          chunks.push(chunk);
          if (size > 64 * 2 ** 20) throw new HttpStatusError(413, url, "body larger than 64 MiB");
        }
      } catch (err) {
        throw err instanceof HttpStatusError ? err : lostAfter(size, res.headers["content-length"], err);
      }
      checkLength(res.headers["content-length"], size);
      return Buffer.concat(chunks);
    } catch (err) {
      if (err instanceof HttpStatusError && !err.retryable)
        throw new DownloadError(url, `${err.message.replace(/ from .*$/, "")} (not retried)`, attempt);
      last = describeCause(err);
      if (attempt < o.tries) await sleep(backoffDelay(attempt, o.backoffMs, o.maxBackoffMs));
    }
  }
  throw new DownloadError(url, last, o.tries);
}

/** A body shorter than its Content-Length is a cut connection, whatever the stream reported. */
function checkLength(header: string | undefined, received: number): void {
  if (header !== undefined && /^\d+$/.test(header) && Number(header) !== received)
    throw new Error(`connection closed after ${received} of ${header} body bytes`);
}

/** A body that failed mid-way, said with how far it got (node:http only says "aborted"). */
function lostAfter(received: number, length: string | undefined, cause: unknown): Error {
  return new Error(`connection lost after ${received}${length ? ` of ${length}` : ""} body bytes`, { cause });
}

function progress(label: string, total: number | undefined, startedAt: number) {
  let lastPrint = 0;
  const started = Date.now();
  return (done: number, final = false) => {
    const now = Date.now();
    if (!final && now - lastPrint < 2000) return;
    lastPrint = now;
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    // Rate of this transfer only, not of bytes a previous try already had.
    const rate = (done - startedAt) / Math.max(0.001, (now - started) / 1000);
    const pct = total ? ` ${Math.floor((100 * done) / total)}%` : "";
    process.stderr.write(
      `fetch ${label}:${pct} ${mib(done)}${total ? `/${mib(total)}` : ""} MiB, ${mib(rate)} MiB/s\n`,
    );
  };
}

/** The partial file and the validators beside it. */
interface Partial {
  file: string;
  meta: string;
}

const alive = (pid: number) => {
  if (pid === process.pid) return false; // ours: a previous fetch in this process left it
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * This process's partial file for `base`, taking over one a finished process left (a killed run, or the
 * shared `<base>.part` of earlier versions) so the download resumes; it is trusted only through the digest.
 */
function claimPartial(dir: string, base: string): Partial {
  const mine = { file: join(dir, `${base}.${process.pid}.part`), meta: join(dir, `${base}.${process.pid}.part.json`) };
  if (existsSync(mine.file)) return mine;
  for (const name of readdirSync(dir)) {
    const m = name === `${base}.part` ? ["", "0"] : new RegExp(`^${base}\\.(\\d+)\\.part$`).exec(name);
    if (!m || (m[1] !== "0" && alive(Number(m[1])))) continue;
    try {
      renameSync(join(dir, name), mine.file); // atomic: of two processes adopting it, one wins
    } catch {
      continue;
    }
    rmSync(mine.meta, { force: true });
    try {
      renameSync(join(dir, `${name}.json`), mine.meta);
    } catch {
      // no validators: the size check and the digest still apply
    }
    return mine;
  }
  return mine;
}

function dropPartial(p: Partial): void {
  rmSync(p.file, { force: true });
  rmSync(p.meta, { force: true });
}

const PartialMetaSchema = z.object({
  url: z.string(),
  etag: z.string().optional(),
  lastModified: z.string().optional(),
  total: z.number().int().nonnegative().optional(),
});

/** The validators kept beside a partial file; none when missing or unreadable (the digest still decides). */
function readMeta(p: Partial): PartialMeta | undefined {
  try {
    const parsed = PartialMetaSchema.safeParse(JSON.parse(readFileSync(p.meta, "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** How a try ended, when it did not throw: from byte 0 or resumed, and whether the body's end was certain. */
interface TryOutcome {
  from: number;
  /** No Content-Length: a cut connection looks like the end of the file, so only the digest can tell. */
  closeDelimited: boolean;
}

async function downloadOnce(url: string, p: Partial, label: string, o: Required<FetchOptions>): Promise<TryOutcome> {
  let have = existsSync(p.file) ? statSync(p.file).size : 0;
  const meta = have ? readMeta(p) : undefined;
  const { res } = await openGet(url, { headers: resumeHeaders(have, meta, url), idleTimeoutMs: o.idleTimeoutMs });
  const h = res.headers;
  const verdict = judgeResponse(
    { status: res.statusCode ?? 0, contentRange: h["content-range"], contentLength: h["content-length"] },
    have,
    meta,
  );
  if (verdict.action !== "append" && verdict.action !== "replace") res.on("error", () => undefined).resume();
  switch (verdict.action) {
    case "fail":
      throw new HttpStatusError(verdict.status, url, res.statusMessage);
    case "complete":
      return { from: have, closeDelimited: false };
    case "discard":
      if (!have) throw new Error(verdict.reason); // nothing to drop: asking again would get the same answer
      process.stderr.write(`fetch ${label}: ${verdict.reason}; starting over\n`);
      dropPartial(p);
      return downloadOnce(url, p, label, o);
    case "replace":
      if (verdict.reason) process.stderr.write(`fetch ${label}: ${verdict.reason}; starting over\n`);
      have = 0;
  }
  // A 206 may omit the validators the first response gave: keep those for the next resumption.
  const kept = verdict.action === "append" ? meta : undefined;
  const etag = typeof h.etag === "string" ? h.etag : kept?.etag;
  const lastModified = typeof h["last-modified"] === "string" ? h["last-modified"] : kept?.lastModified;
  const next: PartialMeta = {
    url,
    ...(etag ? { etag } : {}),
    ...(lastModified ? { lastModified } : {}),
    ...(verdict.total !== undefined ? { total: verdict.total } : {}),
  };
  writeFileSync(p.meta, JSON.stringify(next));
  const report = progress(label, next.total, have);
  let done = have;
  let received = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      received += chunk.length;
      report(done);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(res, count, createWriteStream(p.file, { flags: have ? "a" : "w" }));
  } catch (err) {
    throw lostAfter(received, h["content-length"], err);
  }
  checkLength(h["content-length"], received);
  report(done, true);
  return { from: have, closeDelimited: h["content-length"] === undefined };
}

/**
 * The path of a verified local copy of `url`; `label` names it in progress lines and errors. Fails with a
 * ChecksumMismatchError when a whole download does not match `expected`, and with a DownloadError naming the URL,
 * the tries and the last cause when no try completes; with what `inspect` throws when it refuses the verified file.
 */
export async function fetchVerified(
  url: string,
  expected: Digest,
  label: string,
  options: FetchOptions = {},
  inspect?: (file: string) => Promise<void>,
): Promise<string> {
  const o = { ...DEFAULTS, ...options };
  const blob = cacheDir("blobs", expected.algo, expected.hex);
  if (existsSync(blob)) {
    if ((await digestFile(blob, expected.algo)) === expected.hex) {
      await inspect?.(blob).catch((err: unknown) => {
        rmSync(blob, { force: true });
        throw err;
      });
      return blob;
    }
    process.stderr.write(`fetch ${label}: cached copy is corrupt, fetching again\n`);
    rmSync(blob);
  }
  const dir = cacheDir("partial");
  mkdirSync(dir, { recursive: true });
  mkdirSync(dirname(blob), { recursive: true });
  const partial = claimPartial(dir, `${expected.algo}-${expected.hex}`);
  let last = "";
  let refused: unknown;
  for (let attempt = 1; attempt <= o.tries; attempt++) {
    try {
      const outcome = await downloadOnce(url, partial, label, o);
      const actual = await digestFile(partial.file, expected.algo);
      if (actual === expected.hex) {
        await inspect?.(partial.file).catch((err: unknown) => {
          dropPartial(partial);
          throw (refused = err); // the file's own content: fetching it again cannot help
        });
        renameSync(partial.file, blob);
        rmSync(partial.meta, { force: true });
        return blob;
      }
      dropPartial(partial);
      // A whole body of the advertised length that does not match is the server's file: retrying cannot help.
      if (outcome.from === 0 && !outcome.closeDelimited)
        throw new ChecksumMismatchError(`${label} (${url})`, expected, actual);
      last = `${expected.algo} mismatch after ${outcome.from ? `resuming at byte ${outcome.from}` : "a body without Content-Length"}`;
    } catch (err) {
      if (err instanceof ChecksumMismatchError || err === refused) throw err;
      if (err instanceof HttpStatusError && !err.retryable) {
        dropPartial(partial);
        throw new DownloadError(url, `${err.message.replace(/ from .*$/, "")} (not retried)`, attempt);
      }
      last = describeCause(err);
    }
    if (attempt < o.tries) {
      const wait = backoffDelay(attempt, o.backoffMs, o.maxBackoffMs);
      process.stderr.write(
        `fetch ${label}: try ${attempt}/${o.tries} failed (${last}); again in ${(wait / 1000).toFixed(1)} s\n`,
      );
      await sleep(wait);
    }
  }
  dropPartial(partial);
  throw new DownloadError(url, last, o.tries);
}
