/**
 * The fetcher's decisions, as pure functions: what to ask for when part of a file is already on disk, what a
 * response means for that partial file, how long to wait before the next try, and how to name a failure in one
 * line (never a stack trace).
 */

/** What a previous response said about the file, kept beside the partial file to validate a resumption. */
export interface PartialMeta {
  /** The URL asked for (before redirects): validators of another URL mean nothing. */
  url: string;
  etag?: string;
  lastModified?: string;
  /** The whole file's size, when a response gave it. */
  total?: number;
}

/** Request headers for a try that already has `have` bytes. */
export function resumeHeaders(have: number, meta: PartialMeta | undefined, url: string): Record<string, string> {
  if (have === 0) return {};
  const headers: Record<string, string> = { range: `bytes=${have}-` };
  if (meta?.url === url) {
    // If-Range makes a server whose file changed send it whole (200) instead of a mismatched tail. A weak ETag
    // cannot validate a byte range (RFC 9110, 13.1.5); Last-Modified can.
    const validator = meta.etag && !meta.etag.startsWith("W/") ? meta.etag : meta.lastModified;
    if (validator) headers["if-range"] = validator;
  }
  return headers;
}

// `Content-Range: bytes 100-199/1000`, or `bytes */1000` on a 416.
export function parseContentRange(
  value: string | undefined,
): { start?: number; end?: number; total?: number } | undefined {
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(value?.trim() ?? "");
  if (!m) return undefined;
  return {
    ...(m[1] !== undefined ? { start: Number(m[1]), end: Number(m[2]) } : {}),
    ...(m[3] !== "*" ? { total: Number(m[3]) } : {}),
  };
}

export type Verdict =
  /** Write the body after the `have` bytes already on disk. */
  | { action: "append"; total?: number }
  /** Drop what is on disk and write the body from byte 0 (the server sent the whole file). */
  | { action: "replace"; reason?: string; total?: number }
  /** The file on disk is already whole (416 for a range starting at its size). */
  | { action: "complete" }
  /** Drop what is on disk and ask again from byte 0, without counting a failed try. */
  | { action: "discard"; reason: string }
  | { action: "fail"; status: number; retryable: boolean };

export interface ResponseHead {
  status: number;
  contentRange?: string;
  contentLength?: string;
}

/** What a response to a request made with `resumeHeaders(have, meta)` means for the partial file. */
export function judgeResponse(head: ResponseHead, have: number, meta: PartialMeta | undefined): Verdict {
  const range = parseContentRange(head.contentRange);
  const length =
    head.contentLength !== undefined && /^\d+$/.test(head.contentLength) ? Number(head.contentLength) : undefined;
  if (head.status === 200) {
    const total = length;
    if (have === 0) return { action: "replace", ...(total !== undefined ? { total } : {}) };
    // The server ignored the Range, or If-Range found the file changed: it sent the whole file.
    return {
      action: "replace",
      reason: "the server sent the whole file again",
      ...(total !== undefined ? { total } : {}),
    };
  }
  if (head.status === 206) {
    if (!range || range.start === undefined)
      return { action: "discard", reason: `206 without a usable Content-Range (${head.contentRange ?? "none"})` };
    if (range.start !== have)
      return { action: "discard", reason: `the server resumed at byte ${range.start}, not ${have}` };
    if (meta?.total !== undefined && range.total !== undefined && range.total !== meta.total)
      return { action: "discard", reason: `the file's size changed from ${meta.total} to ${range.total} bytes` };
    return { action: "append", ...(range.total !== undefined ? { total: range.total } : {}) };
  }
  if (head.status === 416 && have > 0) {
    if (range?.total === have && (meta?.total === undefined || meta.total === have)) return { action: "complete" };
    return {
      action: "discard",
      reason: `416: the server's file has ${range?.total ?? "an unknown number of"} bytes, ${have} are on disk`,
    };
  }
  return {
    action: "fail",
    status: head.status,
    retryable: head.status >= 500 || head.status === 408 || head.status === 429,
  };
}

/** Exponential backoff with jitter: try n waits about base·2^(n-1), at most `max`, times 0.5–1. */
export function backoffDelay(
  failedTries: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, failedTries - 1));
  return Math.round(ceiling * (0.5 + random() / 2));
}

/** One line naming a failure: its message (first line only) and its error code, and its cause's. */
export function describeCause(err: unknown): string {
  const one = (e: unknown): string => {
    if (!(e instanceof Error)) return String(e).split("\n")[0]!.trim();
    const code = (e as NodeJS.ErrnoException).code;
    const text =
      e.message
        .split("\n")
        .map((l) => l.trim())
        .find((l) => l) ?? e.name;
    return code && !text.includes(code) ? `${text} (${code})` : text;
  };
  const head = one(err);
  const cause = err instanceof Error && err.cause !== undefined ? one(err.cause) : undefined;
  return cause && !head.includes(cause) ? `${head}: ${cause}` : head;
}
