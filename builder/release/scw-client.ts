/**
 * The factory's Scaleway API client: @scaleway/sdk-client with a fetch that retries what is worth retrying.
 * The JS SDK retries nothing (its fetcher makes one request and maps the answer to an error), while Scaleway's
 * Terraform provider, which the Pulumi provider is built from, puts a retrying transport under its SDK
 * (terraform-provider-scaleway internal/transport/retry.go: go-retryablehttp, 3 retries, waits from 2 s to 2 min,
 * on connection errors, 429 and 5xx but 501). The factory's own calls (test runner, retention, doctor) do the same,
 * honouring Retry-After; anything else (400, 404, 409, 412…) fails at once with the SDK's error. A create is
 * retried only after looking for the resource its unanswered attempt may have made (adopt-created.ts).
 */
import { adoptCreated } from "./adopt-created";
import { createAdvancedClient, withHTTPClient, withProfile, type Client, type Profile } from "@scaleway/sdk-client";

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff wait, doubled at each retry. */
  minMs: number;
  /** Longest wait, Retry-After included. */
  maxMs: number;
}

/** The provider's transport defaults (see above). */
export const PROVIDER_RETRY: RetryPolicy = { retries: 3, minMs: 2000, maxMs: 120_000 };

/** Statuses retried: rate limiting and server-side failures, except 501 (not implemented will not change). */
export const retryable = (status: number): boolean =>
  status === 429 || (status >= 500 && status <= 599 && status !== 501);

/** Milliseconds a Retry-After value asks for (delay-seconds or an HTTP date, RFC 9110 10.2.3), undefined if none or unreadable. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  // An HTTP-date starts with its day name (`Wed, 02 Dec 2026 …`); Date.parse alone would take "-1" as a year.
  const at = /^[A-Za-z]{3}, /.test(value.trim()) ? Date.parse(value) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * How long to wait before retry number `attempt` (0 for the first retry) after an answer with `status` (undefined for
 * a connection error), or undefined when not to retry: the status is final or the retries are spent.
 */
export function retryDelay(
  status: number | undefined,
  retryAfter: string | null,
  attempt: number,
  p: RetryPolicy,
  now = Date.now(),
): number | undefined {
  if (attempt >= p.retries) return undefined;
  if (status !== undefined && !retryable(status)) return undefined;
  const backoff = Math.min(p.maxMs, p.minMs * 2 ** attempt);
  const asked = retryAfterMs(retryAfter, now);
  return Math.min(p.maxMs, asked ?? backoff);
}

/** A fetch that retries by `retryDelay`, logging each retry so a slow run says why. */
export function retryingFetch(
  p: RetryPolicy = PROVIDER_RETRY,
  inner: typeof fetch = fetch,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): typeof fetch {
  return async (input, init) => {
    // A Request's body can be read once: keep a pristine copy to clone for each attempt.
    const original = new Request(input, init);
    const startedAt = Date.now();
    for (let attempt = 0; ; attempt++) {
      const what = `${original.method} ${new URL(original.url).pathname}`;
      let res: Response | undefined;
      let error: unknown;
      try {
        res = await inner(original.clone());
      } catch (err) {
        error = err;
      }
      const wait = retryDelay(res?.status, res?.headers.get("retry-after") ?? null, attempt, p);
      if (wait === undefined) {
        if (res) return res;
        throw new Error(`${what}: ${(error as Error).message} (after ${attempt + 1} attempts)`, { cause: error });
      }
      log(
        `scaleway api: ${what} answered ${res ? res.status : (error as Error).message}; retry ${attempt + 1}/${p.retries} in ${(wait / 1000).toFixed(1)} s`,
      );
      await res?.body?.cancel();
      await new Promise((r) => setTimeout(r, wait));
      // A 429 is answered before anything is done; a 5xx or a lost connection may follow a committed create.
      if (res?.status !== 429) {
        const adopted = await adoptCreated(original, startedAt, inner);
        if (adopted) {
          log(
            `scaleway api: ${what}: adopted ${adopted.id}, which the unanswered attempt created, instead of creating another`,
          );
          return adopted.response;
        }
      }
    }
  };
}

/** A client for the profile whose requests retry by `policy` (FACTORY_API_RETRY_MIN_MS shortens the waits in tests). */
export function scalewayClient(profile: Profile, policy: RetryPolicy = policyFromEnv()): Client {
  return createAdvancedClient(withProfile(profile), withHTTPClient(retryingFetch(policy)));
}

/** PROVIDER_RETRY, with its first wait from FACTORY_API_RETRY_MIN_MS when set (tests run faults in seconds). */
export function policyFromEnv(env: NodeJS.ProcessEnv = process.env): RetryPolicy {
  const raw = env.FACTORY_API_RETRY_MIN_MS;
  if (raw === undefined || raw === "") return PROVIDER_RETRY;
  const min = Number(raw);
  if (!Number.isInteger(min) || min < 0)
    throw new Error(`FACTORY_API_RETRY_MIN_MS: ${raw} is not a whole number of milliseconds`);
  return { ...PROVIDER_RETRY, minMs: min };
}
