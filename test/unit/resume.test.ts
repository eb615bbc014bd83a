import { describe, expect, it } from "vitest";
import {
  backoffDelay,
  describeCause,
  judgeResponse,
  parseContentRange,
  resumeHeaders,
  type PartialMeta,
  type ResponseHead,
  type Verdict,
} from "../../builder/pipeline/resume";

const URL_A = "http://127.0.0.1:8080/a.qcow2";

describe("resume headers", () => {
  it.each<{ name: string; have: number; meta?: PartialMeta; want: Record<string, string> }>([
    { name: "nothing on disk: a plain GET", have: 0, meta: { url: URL_A, etag: '"x"' }, want: {} },
    {
      name: "a strong ETag validates the range",
      have: 10,
      meta: { url: URL_A, etag: '"x"', lastModified: "Tue, 01 Dec 2026 10:00:00 GMT" },
      want: { range: "bytes=10-", "if-range": '"x"' },
    },
    {
      name: "a weak ETag cannot: Last-Modified does",
      have: 10,
      meta: { url: URL_A, etag: 'W/"x"', lastModified: "Tue, 01 Dec 2026 10:00:00 GMT" },
      want: { range: "bytes=10-", "if-range": "Tue, 01 Dec 2026 10:00:00 GMT" },
    },
    {
      name: "a weak ETag alone: size check only",
      have: 10,
      meta: { url: URL_A, etag: 'W/"x"' },
      want: { range: "bytes=10-" },
    },
    {
      name: "validators of another URL are not sent",
      have: 10,
      meta: { url: "http://127.0.0.1:8080/b", etag: '"x"' },
      want: { range: "bytes=10-" },
    },
    { name: "no validators (adopted partial)", have: 5, want: { range: "bytes=5-" } },
  ])("$name", ({ have, meta, want }) => {
    expect(resumeHeaders(have, meta, URL_A)).toEqual(want);
  });
});

describe("Content-Range", () => {
  it.each<[string | undefined, ReturnType<typeof parseContentRange>]>([
    ["bytes 100-199/1000", { start: 100, end: 199, total: 1000 }],
    ["bytes 100-199/*", { start: 100, end: 199 }],
    ["bytes */1000", { total: 1000 }],
    ["items 0-1/2", undefined],
    ["bytes 1-2", undefined],
    [undefined, undefined],
  ])("%s", (value, want) => {
    expect(parseContentRange(value)).toEqual(want);
  });
});

describe("what a response means for the partial file", () => {
  const meta: PartialMeta = { url: URL_A, total: 1000 };
  it.each<{ name: string; head: ResponseHead; have: number; meta?: PartialMeta; want: Verdict }>([
    {
      name: "fresh 200",
      head: { status: 200, contentLength: "1000" },
      have: 0,
      want: { action: "replace", total: 1000 },
    },
    { name: "fresh 200, close-delimited", head: { status: 200 }, have: 0, want: { action: "replace" } },
    {
      name: "server ignored the Range: start over with this body",
      head: { status: 200, contentLength: "1000" },
      have: 400,
      meta,
      want: { action: "replace", reason: "the server sent the whole file again", total: 1000 },
    },
    {
      name: "206 where asked",
      head: { status: 206, contentRange: "bytes 400-999/1000" },
      have: 400,
      meta,
      want: { action: "append", total: 1000 },
    },
    {
      name: "206 elsewhere",
      head: { status: 206, contentRange: "bytes 0-999/1000" },
      have: 400,
      meta,
      want: { action: "discard", reason: "the server resumed at byte 0, not 400" },
    },
    {
      name: "206 of a file whose size changed",
      head: { status: 206, contentRange: "bytes 400-1199/1200" },
      have: 400,
      meta,
      want: { action: "discard", reason: "the file's size changed from 1000 to 1200 bytes" },
    },
    {
      name: "206 without Content-Range",
      head: { status: 206 },
      have: 400,
      meta,
      want: { action: "discard", reason: "206 without a usable Content-Range (none)" },
    },
    {
      name: "416: what is on disk is whole",
      head: { status: 416, contentRange: "bytes */1000" },
      have: 1000,
      meta,
      want: { action: "complete" },
    },
    {
      name: "416: the file shrank",
      head: { status: 416, contentRange: "bytes */300" },
      have: 400,
      want: { action: "discard", reason: "416: the server's file has 300 bytes, 400 are on disk" },
    },
    {
      name: "416 on a fresh request",
      head: { status: 416 },
      have: 0,
      want: { action: "fail", status: 416, retryable: false },
    },
    { name: "404", head: { status: 404 }, have: 0, want: { action: "fail", status: 404, retryable: false } },
    {
      name: "503 is retried",
      head: { status: 503 },
      have: 400,
      want: { action: "fail", status: 503, retryable: true },
    },
    { name: "429 is retried", head: { status: 429 }, have: 0, want: { action: "fail", status: 429, retryable: true } },
    { name: "408 is retried", head: { status: 408 }, have: 0, want: { action: "fail", status: 408, retryable: true } },
  ])("$name", ({ head, have, meta: m, want }) => {
    expect(judgeResponse(head, have, m)).toEqual(want);
  });
});

describe("backoff", () => {
  it.each<[number, number, number]>([
    // failed tries, random, delay (base 1000, max 30000)
    [1, 0, 500],
    [1, 1, 1000],
    [2, 1, 2000],
    [3, 0.5, 3000],
    [6, 1, 30000],
    [20, 0, 15000],
  ])("after %i failed tries (random %d): %i ms", (tries, random, want) => {
    expect(backoffDelay(tries, 1000, 30_000, () => random)).toBe(want);
  });
});

describe("a failure in one line", () => {
  const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
  const assertion = Object.assign(new Error("The expression evaluated to a falsy value:\n\n  assert(!this.paused)\n"), {
    code: "ERR_ASSERTION",
  });
  it.each<[string, unknown, string]>([
    ["node error with its code in the message", reset, "read ECONNRESET"],
    [
      "code added when the message lacks it",
      Object.assign(new Error("aborted"), { code: "ECONNRESET" }),
      "aborted (ECONNRESET)",
    ],
    ["multi-line message: first line only", assertion, "The expression evaluated to a falsy value: (ERR_ASSERTION)"],
    ["with a cause", new TypeError("terminated", { cause: reset }), "terminated: read ECONNRESET"],
    ["not an Error", "boom\nmore", "boom"],
  ])("%s", (_name, err, want) => {
    const text = describeCause(err);
    expect(text).toBe(want);
    expect(text).not.toMatch(/\n|\bat /);
  });
});
