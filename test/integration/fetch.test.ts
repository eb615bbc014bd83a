/**
 * The fetcher against misbehaving static servers on loopback: connections closed mid-body and after each response
 * (the case where Node's built-in fetch fails an internal assertion), resets, stalls, a server that ignores Range,
 * one whose file changes between tries, and partial files a killed run left behind.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ChecksumMismatchError,
  DownloadError,
  fetchBytes,
  fetchVerified,
  type Digest,
} from "../../builder/pipeline/fetch";
import { serveDirectory } from "../../builder/local/http-server";

const FAST = { backoffMs: 20, maxBackoffMs: 100, idleTimeoutMs: 2000 };
const DATA = randomBytes(3 * 2 ** 20 + 12345);
const digest = (b: Buffer): Digest => ({ algo: "sha256", hex: createHash("sha256").update(b).digest("hex") });

let work: string;
const servers: Server[] = [];
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => void uncaught.push(e);

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "factory-fetch-"));
  process.env.FACTORY_CACHE = join(work, "cache");
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);
});
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r())));
  rmSync(join(work, "cache"), { recursive: true, force: true });
  expect(uncaught).toEqual([]);
});
afterAll(() => {
  process.off("uncaughtException", onUncaught);
  process.off("unhandledRejection", onUncaught);
  delete process.env.FACTORY_CACHE;
  rmSync(work, { recursive: true, force: true });
});

interface Hit {
  range?: string;
  ifRange?: string;
  status: number;
}

type Send = (status?: 200 | 206) => void;

/**
 * A static server for one file, with Range support; `behave` gets each request's number (from 1) and either
 * `send`s the file (a range when asked, unless told 200) or misbehaves with `cut`.
 */
async function serve(
  behave: (n: number, req: IncomingMessage, res: ServerResponse, send: Send) => void,
  file: () => Buffer = () => DATA,
  headers: () => Record<string, string> = () => ({}),
) {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const hit: Hit = { range: req.headers.range, ifRange: req.headers["if-range"] as string | undefined, status: 0 };
    hits.push(hit);
    behave(hits.length, req, res, (status) => {
      const body = file();
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
      const ranged = (status ?? (m ? 206 : 200)) === 206 && m;
      const start = ranged ? Number(m[1]) : 0;
      if (ranged && start >= body.length)
        return void res.writeHead(416, { "content-range": `bytes */${body.length}` }).end();
      res.writeHead(ranged ? 206 : 200, {
        "content-length": String(body.length - start),
        "accept-ranges": "bytes",
        ...headers(),
        ...(ranged ? { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
      });
      res.end(body.subarray(start));
    });
    hit.status = res.statusCode; // every handler writes its head at once
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/image.qcow2`;
  return { url, hits, server };
}

/** Sends the headers and the first `bytes` of the body the request asked for, then ends the connection `how`. */
function cut(
  req: IncomingMessage,
  res: ServerResponse,
  bytes: number,
  how: "destroy" | "reset" | "stall",
  extra: Record<string, string> = {},
  body = DATA,
) {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  const start = m ? Number(m[1]) : 0;
  res.writeHead(m ? 206 : 200, {
    "content-length": String(body.length - start),
    ...extra,
    ...(m ? { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
  });
  res.write(body.subarray(start, start + bytes), () => {
    if (how === "destroy") req.socket.destroy();
    // A reset discards what the client has not read yet: give it time to read what was sent.
    if (how === "reset") setTimeout(() => req.socket.resetAndDestroy(), 200);
  });
}

const partials = () => (existsSync(join(work, "cache", "partial")) ? readdirSync(join(work, "cache", "partial")) : []);

describe("fetchVerified through servers that close connections", () => {
  it("50 fetches in a row: cut mid-body, closed after the response, keep-alive closes — all verified, nothing left over", async () => {
    // Every third request is cut part-way, at a different place each time; the others send the whole body and
    // close the connection (`Connection: close`), or keep it alive for 1 ms — what a plain static server does.
    const { url, hits, server } = await serve((n, req, res, send) => {
      if (n % 3 === 0) return cut(req, res, (n * 104_729) % DATA.length, "destroy");
      if (n % 3 === 1) res.setHeader("connection", "close");
      send();
    });
    server.keepAliveTimeout = 1;
    const errors: string[] = [];
    for (let i = 0; i < 50; i++) {
      try {
        const path = await fetchVerified(url, digest(DATA), `run ${i}`, FAST);
        expect(readFileSync(path).equals(DATA)).toBe(true);
        rmSync(path); // the next run downloads again
      } catch (err) {
        errors.push(String((err as Error).message));
      }
      expect(partials()).toEqual([]);
    }
    expect(errors).toEqual([]);
    expect(uncaught).toEqual([]);
    // Cut requests were resumed where they stopped, not restarted.
    expect(hits.filter((h) => h.status === 206).length).toBeGreaterThanOrEqual(15);
  }, 120_000);

  it("resumes after connection resets, with a Range request from what is on disk", async () => {
    const { url, hits } = await serve((n, req, res, send) => (n <= 2 ? cut(req, res, 1_000_000 * n, "reset") : send()));
    const path = await fetchVerified(url, digest(DATA), "reset", FAST);
    expect(readFileSync(path).equals(DATA)).toBe(true);
    expect(hits.map((h) => h.status)).toEqual([200, 206, 206]);
    expect(hits.slice(1).every((h) => Number(/^bytes=(\d+)-$/.exec(h.range ?? "")?.[1]) > 0)).toBe(true);
    expect(partials()).toEqual([]);
  });

  it("resumes after a stalled connection times out", async () => {
    const { url, hits } = await serve((n, req, res, send) =>
      n === 1 || req.url === "/stalled.qcow2" ? cut(req, res, 500_000, "stall") : send(),
    );
    const path = await fetchVerified(url, digest(DATA), "stall", { ...FAST, idleTimeoutMs: 300 });
    expect(hits.map((h) => h.status)).toEqual([200, 206]);
    await expect(
      fetchBytes(url.replace("image", "stalled"), { ...FAST, idleTimeoutMs: 300, tries: 1 }),
    ).rejects.toThrow(/failed after 1 try: connection lost after 500000 of \d+ body bytes: no data for 0.3 s$/);
    expect(readFileSync(path).equals(DATA)).toBe(true);
  });

  it("starts over from byte 0 when the server ignores Range", async () => {
    const { url, hits } = await serve((n, req, res, send) =>
      n === 1 ? cut(req, res, 1_500_000, "destroy") : send(200),
    );
    const path = await fetchVerified(url, digest(DATA), "no-range", FAST);
    expect(readFileSync(path).equals(DATA)).toBe(true);
    expect(hits.map((h) => [h.status, h.range])).toEqual([
      [200, undefined],
      [200, expect.stringMatching(/^bytes=\d+-$/)],
    ]);
  });

  it("sends If-Range with the ETag, so a file that changed between tries comes whole, not spliced", async () => {
    const v2 = Buffer.from(DATA);
    v2.fill(7, 0, 1000); // same size, different head: only the validator can tell
    let version = 1;
    const { url, hits } = await serve(
      (n, req, res, send) => {
        if (n === 1) return cut(req, res, 2_000_000, "destroy", { etag: '"v1"' });
        version = 2;
        // What a static server does with If-Range: the range only while the validator still matches.
        send(req.headers["if-range"] === `"v${version}"` ? 206 : 200);
      },
      () => (version === 1 ? DATA : v2),
      () => ({ etag: `"v${version}"` }),
    );
    const path = await fetchVerified(url, digest(v2), "changed", FAST);
    expect(readFileSync(path).equals(v2)).toBe(true);
    expect(hits).toEqual([
      { status: 200, range: undefined, ifRange: undefined },
      { status: 200, range: expect.stringMatching(/^bytes=\d+-$/), ifRange: '"v1"' },
    ]);
  });

  it("gives up after the last try naming the URL, the tries and the last cause, and leaves no partial file", async () => {
    const { url, hits } = await serve((_n, req, res) => cut(req, res, 300_000, "reset"));
    const err = await fetchVerified(url, digest(DATA), "always-reset", { ...FAST, tries: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    // Bytes in flight when the reset came are lost: how many arrived varies.
    expect((err as Error).message).toMatch(
      new RegExp(
        `^download of ${url.replace(/[.]/g, "\\.")} failed after 3 tries: connection lost after \\d+ of \\d+ body bytes: aborted \\(ECONNRESET\\)$`,
      ),
    );
    expect(hits).toHaveLength(3);
    expect(partials()).toEqual([]);
    expect(existsSync(join(work, "cache", "blobs", "sha256", digest(DATA).hex))).toBe(false);
  });

  it("does not retry a 404, and says so", async () => {
    const { url, hits } = await serve((_n, _req, res) => void res.writeHead(404).end("no\n"));
    await expect(fetchVerified(url, digest(DATA), "missing", FAST)).rejects.toThrow(
      `download of ${url} failed after 1 try: HTTP 404 Not Found (not retried)`,
    );
    expect(hits).toHaveLength(1);
    expect(partials()).toEqual([]);
  });

  it("does not retry a whole download whose digest does not match", async () => {
    const { url, hits } = await serve((_n, _req, _res, send) => send());
    const wrong = { algo: "sha256" as const, hex: "e".repeat(64) };
    await expect(fetchVerified(url, wrong, "tampered", FAST)).rejects.toThrow(ChecksumMismatchError);
    expect(hits).toHaveLength(1);
    expect(partials()).toEqual([]);
  });
});

describe("through the local stack's mirror server", () => {
  it("resumes a cut download where it stopped, and never caches a tampered file", async () => {
    const root = join(work, "www");
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, "image.qcow2"), DATA);
    const mirror = await serveDirectory(root);
    try {
      mirror.faults.push({ suffix: "image.qcow2", cutAfterBytes: 1_000_000, times: 1 });
      const path = await fetchVerified(`${mirror.url}/image.qcow2`, digest(DATA), "mirror", FAST);
      expect(readFileSync(path).equals(DATA)).toBe(true);
      expect(mirror.log.map((l) => [l.status, l.range])).toEqual([
        [200, undefined],
        [206, expect.stringMatching(/^bytes=\d+-$/)],
      ]);
      const wrong = { algo: "sha256" as const, hex: "e".repeat(64) };
      await expect(fetchVerified(`${mirror.url}/image.qcow2`, wrong, "mirror")).rejects.toThrow(
        /sha256 mismatch: expected eeee.*nothing was cached$/,
      );
      expect(partials()).toEqual([]);
    } finally {
      await mirror.close();
    }
  });
});

describe("partial files a killed run left behind", () => {
  const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid;
  const leave = (bytes: Buffer) => {
    mkdirSync(join(work, "cache", "partial"), { recursive: true });
    writeFileSync(join(work, "cache", "partial", `sha256-${digest(DATA).hex}.${deadPid()}.part`), bytes);
  };

  it("are resumed", async () => {
    leave(DATA.subarray(0, 1_234_567));
    const { url, hits } = await serve((_n, _req, _res, send) => send());
    const path = await fetchVerified(url, digest(DATA), "adopted", FAST);
    expect(readFileSync(path).equals(DATA)).toBe(true);
    expect(hits).toEqual([{ status: 206, range: "bytes=1234567-", ifRange: undefined }]);
    expect(partials()).toEqual([]);
  });

  it("are verified with the rest: a corrupt one is dropped and the file fetched from byte 0", async () => {
    const bad = Buffer.from(DATA.subarray(0, 1_000_000));
    bad[500] = bad[500]! ^ 0xff;
    leave(bad);
    const { url, hits } = await serve((_n, _req, _res, send) => send());
    const path = await fetchVerified(url, digest(DATA), "corrupt-partial", FAST);
    expect(readFileSync(path).equals(DATA)).toBe(true);
    expect(hits.map((h) => [h.status, h.range])).toEqual([
      [206, "bytes=1000000-"],
      [200, undefined],
    ]);
    expect(partials()).toEqual([]);
  });
});

describe("fetchBytes", () => {
  it("retries a connection closed mid-body and returns the whole body", async () => {
    const { url, hits } = await serve((n, req, res, send) => (n === 1 ? cut(req, res, 10_000, "destroy") : send()));
    expect((await fetchBytes(url, FAST)).equals(DATA)).toBe(true);
    expect(hits.map((h) => h.range)).toEqual([undefined, undefined]);
  });

  it("names the URL, the tries and the last cause", async () => {
    const { url } = await serve((_n, req, res) => cut(req, res, 10_000, "destroy"));
    await expect(fetchBytes(url, { ...FAST, tries: 2 })).rejects.toThrow(
      new RegExp(
        `^download of ${url.replace(/[.]/g, "\\.")} failed after 2 tries: connection lost after 10000 of ${DATA.length} body bytes: aborted \\(ECONNRESET\\)$`,
      ),
    );
  });
});
