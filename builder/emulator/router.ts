/** Routing of the emulated endpoints, and the pure request helpers every API area shares. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError, invalid, notEmulated } from "./errors";
import { operationOf, type FaultBook } from "./faults";
import type { Exchange } from "./model";

export type Reply = [number, unknown] | [number, unknown, Record<string, string>];
export type Handler = (m: string[], body: Record<string, unknown>, q: URLSearchParams) => Promise<Reply> | Reply;

/** One page of a list, as the real API pages it: `page` from 1, `per_page` (Instance) or `page_size` (Block), 50 by default, 100 at most. */
export const paged = <T>(items: T[], q: URLSearchParams, sizeParam: "per_page" | "page_size"): T[] => {
  const page = Number(q.get("page") ?? 1);
  const size = Number(q.get(sizeParam) ?? 50);
  if (!Number.isInteger(page) || page < 1)
    throw invalid("page must be a whole number from 1", { fields: { page: ["must be >= 1"] } });
  if (!Number.isInteger(size) || size < 1 || size > 100)
    throw invalid(`${sizeParam} must be between 1 and 100`, { fields: { [sizeParam]: ["must be between 1 and 100"] } });
  return items.slice((page - 1) * size, page * size);
};
/** An Instance API list: the page, and the total in `X-Total-Count` as the real API sends it. */
export const instanceList = <T>(key: string, items: T[], q: URLSearchParams): Reply => [
  200,
  { [key]: paged(items, q, "per_page") },
  { "x-total-count": String(items.length) },
];
export const str = (v: unknown, field: string): string => {
  if (typeof v !== "string" || !v) throw invalid(`${field} is required`, { fields: { [field]: ["required"] } });
  return v;
};
export const tagsOf = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
/**
 * Refuses an update the emulator would otherwise ignore (a resize, new IOPS, another commercial type, other
 * volumes): only the `handled` fields change anything; any other field passes only when it restates the current
 * value (`same`, else equal to `current[field]`).
 */
export const refuseUnemulated = (
  b: Record<string, unknown>,
  handled: string[],
  current: Record<string, unknown>,
  what: string,
  same: Record<string, (v: unknown) => boolean> = {},
) => {
  for (const [field, value] of Object.entries(b)) {
    if (handled.includes(field) || value === undefined) continue;
    const unchanged = same[field] ? same[field](value) : JSON.stringify(value) === JSON.stringify(current[field]);
    if (!unchanged) throw notEmulated(field, `changing a ${what}'s ${field}`);
  }
};

export type Router = ReturnType<typeof createRouter>;

/** The routes of one zone's endpoints (`I` Instance, `B` Block, `V` VPC) and the HTTP handler answering them. */
export function createRouter(
  zone: string,
  region: string,
  secretKey: string,
  exchanges: Exchange[],
  faults: FaultBook,
) {
  const routes: [string, RegExp, Handler, string][] = [];
  const route = (method: string, pattern: string, h: Handler) =>
    routes.push([
      method,
      new RegExp(`^${pattern.replace(/\{[a-z_]+\}/g, "([A-Za-z0-9_.-]+)")}$`),
      h,
      operationOf(method, pattern),
    ]);
  const I = `/instance/v1/zones/${zone}`;
  const B = `/block/v1/zones/${zone}`;
  const V = `/vpc/v2/regions/${region}`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator");
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      exchanges.push({
        method: req.method ?? "",
        path: url.pathname,
        status,
        body: Buffer.isBuffer(body) ? body.toString("utf8") : body,
      });
      if (status === 204 || body === undefined) return void res.writeHead(status, headers).end();
      if (Buffer.isBuffer(body))
        return void res.writeHead(status, { ...headers, "content-type": "text/plain" }).end(body);
      res.writeHead(status, { ...headers, "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (req.headers["x-auth-token"] !== secretKey)
      return reply(401, {
        type: "denied_authentication",
        method: "api_key",
        reason: "invalid_argument",
        message: "authentication is denied (method: api_key, reason: invalid_argument)",
      });
    const candidates = routes.filter(([, re]) => re.test(url.pathname));
    const match = candidates.find(([method]) => method === req.method);
    if (!match) {
      return candidates.length
        ? reply(405, {
            type: "invalid_request_error",
            message: `method ${req.method} is not allowed on ${url.pathname}`,
          })
        : reply(404, { type: "not_found", message: `${url.pathname} is not an emulated endpoint` });
    }
    let body: Record<string, unknown> = {};
    if (raw) {
      if ((req.headers["content-type"] ?? "").startsWith("text/plain")) body = { __raw: raw };
      else {
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          return reply(400, { type: "invalid_request_error", message: "request body is not valid JSON" });
        }
      }
    }
    const injected = faults.request(match[3], body);
    if (injected) return reply(injected.status, injected.body, injected.headers);
    try {
      const [status, out, headers] = await match[2](match[1].exec(url.pathname)!.slice(1), body, url.searchParams);
      const lost = status < 400 ? faults.answer(match[3], body) : undefined;
      if (lost) return reply(lost.status, lost.body, lost.headers);
      reply(status, out, headers);
    } catch (err) {
      if (err instanceof ApiError) return reply(err.status, err.body, err.headers);
      reply(500, { type: "internal_error", message: (err as Error).message });
    }
  }

  return { route, I, B, V, handle };
}
