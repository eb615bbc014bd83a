/** The API client's retry rule, table-driven, and its fetch against a loopback server that fails on purpose. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import {
  policyFromEnv,
  PROVIDER_RETRY,
  retryAfterMs,
  retryDelay,
  retryingFetch,
  type RetryPolicy,
} from "../../builder/release/scw-client";

const P: RetryPolicy = { retries: 3, minMs: 100, maxMs: 10_000 };
const NOW = Date.parse("2026-12-02T00:00:00Z");

describe("retryDelay", () => {
  it.each([
    // status, Retry-After, attempt, expected wait (undefined: give up)
    [429, null, 0, 100],
    [429, "3", 0, 3000],
    [429, "3", 2, 3000],
    [429, "600", 0, 10_000], // capped at maxMs
    [429, "Wed, 02 Dec 2026 00:00:04 GMT", 0, 4000],
    [429, "soon", 1, 200], // unreadable: backoff
    [503, null, 0, 100],
    [503, null, 1, 200],
    [502, null, 2, 400],
    [500, "1", 0, 1000],
    [504, null, 3, undefined], // retries spent
    [undefined, null, 0, 100], // connection error
    [501, null, 0, undefined],
    [409, null, 0, undefined],
    [412, null, 0, undefined],
    [404, null, 0, undefined],
    [400, "1", 0, undefined],
    [200, null, 0, undefined],
  ] as const)("status %s, Retry-After %s, attempt %i: %s ms", (status, after, attempt, expected) => {
    expect(retryDelay(status, after, attempt, P, NOW)).toBe(expected);
  });

  it("reads Retry-After as seconds or a date, and nothing else", () => {
    expect(retryAfterMs("0", NOW)).toBe(0);
    expect(retryAfterMs("Wed, 02 Dec 2026 00:00:00 GMT", NOW + 5000)).toBe(0);
    expect(retryAfterMs(null, NOW)).toBeUndefined();
    expect(retryAfterMs("", NOW)).toBeUndefined();
    expect(retryAfterMs("-1", NOW)).toBeUndefined();
  });

  it("follows the provider's defaults unless the environment shortens the first wait", () => {
    expect(policyFromEnv({})).toEqual(PROVIDER_RETRY);
    expect(policyFromEnv({ FACTORY_API_RETRY_MIN_MS: "20" })).toEqual({ ...PROVIDER_RETRY, minMs: 20 });
    expect(() => policyFromEnv({ FACTORY_API_RETRY_MIN_MS: "fast" })).toThrow(/FACTORY_API_RETRY_MIN_MS: fast/);
  });
});

describe("retryingFetch", () => {
  /** A loopback server answering each request with the next status of `plan` (then 200), recording bodies. */
  const serve = async (plan: { status: number; retryAfter?: string }[]) => {
    const seen: { at: number; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({ at: Date.now(), body });
        const next = plan.shift() ?? { status: 200 };
        res
          .writeHead(next.status, {
            "content-type": "application/json",
            ...(next.retryAfter ? { "retry-after": next.retryAfter } : {}),
          })
          .end(JSON.stringify({ n: seen.length }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`,
      seen,
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
  };

  it("retries 429 after its Retry-After and 5xx with backoff, resending the body, then returns the answer", async () => {
    const s = await serve([{ status: 429, retryAfter: "1" }, { status: 503 }, { status: 502 }]);
    const logs: string[] = [];
    try {
      const res = await retryingFetch(P, fetch, (l) => logs.push(l))(s.url, { method: "POST", body: '{"a":1}' });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ n: 4 });
      expect(s.seen.map((x) => x.body)).toEqual(Array(4).fill('{"a":1}'));
      expect(s.seen[1]!.at - s.seen[0]!.at).toBeGreaterThanOrEqual(950);
      expect(logs).toEqual([
        expect.stringMatching(/POST \/x answered 429; retry 1\/3 in 1\.0 s/),
        expect.stringMatching(/answered 503; retry 2\/3/),
        expect.stringMatching(/answered 502; retry 3\/3/),
      ]);
    } finally {
      await s.close();
    }
  });

  it("gives the last answer back once the retries are spent, and never retries a conflict", async () => {
    const s = await serve([{ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 }, { status: 409 }]);
    try {
      const f = retryingFetch(P, fetch, () => undefined);
      expect((await f(s.url)).status).toBe(503);
      expect(s.seen).toHaveLength(4);
      expect((await f(s.url)).status).toBe(409);
      expect(s.seen).toHaveLength(5);
    } finally {
      await s.close();
    }
  });

  it("names the request when the connection keeps failing", async () => {
    const s = await serve([]);
    await s.close();
    await expect(retryingFetch({ ...P, minMs: 1 }, fetch, () => undefined)(s.url)).rejects.toThrow(
      /^GET \/x: .*\(after 4 attempts\)/,
    );
  });
});
