/**
 * Downloads into a content-addressed cache: `blobs/<algo>/<hex>` appears only after its digest matched, by atomic
 * rename; a partial download resumes with an HTTP Range request; a mismatch deletes the partial file, so a bad
 * download never poisons the cache. Cached blobs are verified again before each use.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Checksum } from "./checksums";

/** A digest to verify a download against: upstreams' checksum files use sha256/sha512; WordPress publishes sha1. */
export interface Digest {
  algo: Checksum["algo"] | "sha1";
  hex: string;
}
import { cacheDir } from "./paths";

export class ChecksumMismatchError extends Error {
  constructor(what: string, expected: Digest, actual: string) {
    super(`${what}: ${expected.algo} mismatch: expected ${expected.hex}, got ${actual}; nothing was cached`);
    this.name = "ChecksumMismatchError";
  }
}

export class DownloadError extends Error {
  constructor(url: string, reason: string) {
    super(`download of ${url} failed: ${reason}`);
    this.name = "DownloadError";
  }
}

export async function digestFile(path: string, algo: Digest["algo"]): Promise<string> {
  const hash = createHash(algo);
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

/** Small files (checksum lists, signatures): fetched fresh every time, with a few retries. */
export async function fetchBytes(url: string, attempts = 3): Promise<Buffer> {
  let last = "";
  for (let i = 1; i <= attempts; i++) {
    try {
      const res = await fetch(url, { redirect: "follow" });
      if (res.status === 404) throw new DownloadError(url, "404 Not Found");
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return Buffer.from(await res.arrayBuffer());
    } catch (err) {
      if (err instanceof DownloadError) throw err;
      last = (err as Error).message;
      if (i < attempts) await new Promise((r) => setTimeout(r, 500 * i));
    }
  }
  throw new DownloadError(url, last);
}

function progress(label: string, total: number | undefined, startedAt: number) {
  let lastPrint = 0;
  const started = Date.now();
  return (done: number, final = false) => {
    const now = Date.now();
    if (!final && now - lastPrint < 2000) return;
    lastPrint = now;
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    // Rate of this transfer only, not of bytes a previous attempt already had.
    const rate = (done - startedAt) / Math.max(0.001, (now - started) / 1000);
    const pct = total ? ` ${Math.floor((100 * done) / total)}%` : "";
    process.stderr.write(`fetch ${label}:${pct} ${mib(done)}${total ? `/${mib(total)}` : ""} MiB, ${mib(rate)} MiB/s\n`);
  };
}

async function downloadOnce(url: string, partial: string, hash: ReturnType<typeof createHash>, label: string): Promise<void> {
  const have = existsSync(partial) ? statSync(partial).size : 0;
  const res = await fetch(url, { headers: have ? { Range: `bytes=${have}-` } : {}, redirect: "follow" });
  if (res.status === 416 && have) return; // already complete
  if (!res.ok || !res.body) throw new DownloadError(url, `HTTP ${res.status}`);
  const resumed = res.status === 206;
  if (!resumed && have) {
    // The server ignored the Range: start over, and forget what was hashed.
    rmSync(partial);
    throw new RetryFromScratch();
  }
  const length = Number(res.headers.get("content-length") ?? "") || undefined;
  const report = progress(label, length !== undefined ? length + (resumed ? have : 0) : undefined, resumed ? have : 0);
  let done = resumed ? have : 0;
  const body = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream);
  body.on("data", (chunk: Buffer) => {
    hash.update(chunk);
    done += chunk.length;
    report(done);
  });
  await pipeline(body, createWriteStream(partial, { flags: resumed ? "a" : "w" }));
  report(done, true);
}

class RetryFromScratch extends Error {}

/**
 * The path of a verified local copy of `url`; `label` names it in progress lines and errors.
 */
export async function fetchVerified(url: string, expected: Digest, label: string, attempts = 4): Promise<string> {
  const blob = cacheDir("blobs", expected.algo, expected.hex);
  if (existsSync(blob)) {
    if ((await digestFile(blob, expected.algo)) === expected.hex) return blob;
    process.stderr.write(`fetch ${label}: cached copy is corrupt, fetching again\n`);
    rmSync(blob);
  }
  const partial = cacheDir("partial", `${expected.algo}-${expected.hex}.part`);
  mkdirSync(dirname(partial), { recursive: true });
  mkdirSync(dirname(blob), { recursive: true });
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    // Hash what a previous attempt (or run) already wrote, then continue from there.
    const hash = createHash(expected.algo);
    if (existsSync(partial)) await pipeline(createReadStream(partial), hash, { end: false });
    try {
      await downloadOnce(url, partial, hash, label);
      lastError = undefined;
      const actual = hash.digest("hex");
      if (actual !== expected.hex) {
        rmSync(partial, { force: true });
        throw new ChecksumMismatchError(`${label} (${url})`, expected, actual);
      }
      renameSync(partial, blob);
      return blob;
    } catch (err) {
      if (err instanceof ChecksumMismatchError) throw err;
      if (err instanceof DownloadError && /HTTP 4\d\d/.test(err.message) && !/HTTP 408|HTTP 429/.test(err.message)) throw err;
      lastError = err;
      if (!(err instanceof RetryFromScratch))
        process.stderr.write(`fetch ${label}: attempt ${attempt} failed (${(err as Error).message}); resuming\n`);
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }
  throw lastError instanceof DownloadError ? lastError : new DownloadError(url, (lastError as Error)?.message ?? "unknown");
}

