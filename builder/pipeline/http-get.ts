/**
 * One HTTP(S) GET with node:http, redirects followed, for the fetcher. Not the global `fetch`: Node 24's undici
 * fails an internal `assert(!this.paused)` in `Parser.finish` when a server closes the connection while the body
 * stream is paused by backpressure (writing a large download to disk), and throws it from a socket callback as an
 * uncaught exception that no caller can catch. node:http reports the same events as ordinary errors.
 */
import { get as httpGetRaw, type IncomingMessage } from "node:http";
import { get as httpsGetRaw } from "node:https";

/** A response status the fetcher does not accept; `retryable` for 5xx, 408 and 429. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    statusText = "",
  ) {
    super(`HTTP ${status}${statusText ? ` ${statusText}` : ""} from ${url}`);
    this.name = "HttpStatusError";
  }
  get retryable(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

export interface GetOptions {
  headers?: Record<string, string>;
  /** Fail when the connection carries nothing for this long (headers or body). */
  idleTimeoutMs: number;
  maxRedirects?: number;
}

export interface Opened {
  res: IncomingMessage;
  /** The URL that answered, after redirects. */
  url: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function getOnce(url: URL, headers: Record<string, string>, idleTimeoutMs: number): Promise<IncomingMessage> {
  const get = url.protocol === "https:" ? httpsGetRaw : url.protocol === "http:" ? httpGetRaw : undefined;
  if (!get) return Promise.reject(new Error(`unsupported URL scheme ${url.protocol} in ${url.href}`));
  return new Promise((resolve, reject) => {
    // agent: false, one connection per request: no pooled keep-alive socket that the server may already have
    // closed (the request would fail with ECONNRESET before any byte is exchanged).
    let response: IncomingMessage | undefined;
    const req = get(url, { headers, agent: false, timeout: idleTimeoutMs }, (res) => resolve((response = res)));
    // The socket's idle timer runs through the body too; fail the response itself so its reader sees why.
    req.on("timeout", () => {
      const err = new Error(`no data for ${idleTimeoutMs / 1000} s`);
      if (response) response.destroy(err);
      else req.destroy(err);
    });
    req.on("error", reject);
  });
}

/** GETs `url`, following redirects; resolves once the final response's headers are in. The caller reads the body. */
export async function openGet(url: string, opts: GetOptions): Promise<Opened> {
  let current = new URL(url);
  for (let hop = 0; hop <= (opts.maxRedirects ?? 10); hop++) {
    const res = await getOnce(current, opts.headers ?? {}, opts.idleTimeoutMs);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || !location) return { res, url: current.href };
    res.on("error", () => undefined); // a redirect's body is discarded, and so is its failure
    res.resume();
    current = new URL(location, current);
  }
  throw new Error(`more than ${opts.maxRedirects ?? 10} redirects from ${url}`);
}
