/**
 * The Instance metadata API as a booted guest sees it at 169.254.42.42: `/conf?format=json` and user data
 * (`GET /user_data`, `GET|PATCH|DELETE /user_data/<key>`, text/plain). For local boots, where QEMU forwards the
 * guest's 169.254.42.42:80 to this loopback server.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface MetadataServer {
  url: string;
  port: number;
  userData: Map<string, string>;
  /** Resolves when a user data key is first written (e.g. `ssh-host-fingerprints` at first boot). */
  waitFor(key: string, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * The text form of `/conf`, as the real API writes it: one `KEY=value` line per scalar, nested keys joined with
 * `_`, lists numbered and counted (`SSH_PUBLIC_KEYS=1`, `SSH_PUBLIC_KEYS_0_KEY='ssh-ed25519 …'`).
 */
export function confText(conf: Record<string, unknown>): string {
  const lines: string[] = [];
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const walk = (prefix: string, v: unknown) => {
    if (v === null || v === undefined) return;
    if (Array.isArray(v)) {
      lines.push(`${prefix}=${v.length}`);
      v.forEach((item, i) => walk(`${prefix}_${i}`, item));
    } else if (typeof v === "object") {
      for (const [k, item] of Object.entries(v)) walk(prefix ? `${prefix}_${k.toUpperCase()}` : k.toUpperCase(), item);
    } else lines.push(`${prefix}=${typeof v === "string" ? quote(v) : String(v)}`);
  };
  walk("", conf);
  return `${lines.join("\n")}\n`;
}

/**
 * Scaleway serves user data "only to queries originating from a port below 1024" (Instance API docs, "user data":
 * only root can bind those). The status and body of the refusal are ours: no recorded exchange shows the real one.
 */
export const PRIVILEGED_PORTS_BELOW = 1024;
const refusedBody = JSON.stringify({
  type: "permission_denied",
  message: `user data is served only to source ports below ${PRIVILEGED_PORTS_BELOW}`,
});

export interface MetadataServerOptions {
  userData?: Map<string, string>;
  onWrite?: (key: string, value: string) => void;
  /**
   * Refuse `/user_data` requests whose TCP source port is 1024 or above, as Scaleway does. Only where the guest's
   * connections reach this server with their source port intact: QEMU's user networking (guestfwd) hands each one
   * to a forwarder whose own port the server sees, so those callers must leave it off.
   */
  privilegedUserData?: boolean;
  /**
   * Tests only: an answer to give instead of the real one (`GET /conf`, its query as the body), as the emulator's
   * fault book decides; undefined serves the request.
   */
  inject?: (op: string, query: Record<string, string>) => { status: number; body: unknown } | undefined;
}

/**
 * `conf` may be a function, read on each request, for an Instance whose tags, keys or NICs change while it runs;
 * `userData` may be shared with the Instances API's `/servers/{id}/user_data`.
 */
export async function startMetadataServer(
  conf: Record<string, unknown> | (() => Record<string, unknown>),
  opts: MetadataServerOptions = {},
): Promise<MetadataServer> {
  const userData = opts.userData ?? new Map<string, string>();
  const currentConf = () => (typeof conf === "function" ? conf() : conf);
  const waiters = new Map<string, ((v: string) => void)[]>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const send = (status: number, body: string, type = "text/plain") =>
      res.writeHead(status, { "content-type": type }).end(body);
    const injected = opts.inject?.(`${req.method} ${url.pathname}`, Object.fromEntries(url.searchParams));
    if (injected) return send(injected.status, JSON.stringify(injected.body), "application/json");
    if (url.pathname === "/conf") {
      return url.searchParams.get("format") === "json"
        ? send(200, JSON.stringify(currentConf()), "application/json")
        : send(200, confText(currentConf()));
    }
    const isUserData = url.pathname === "/user_data" || url.pathname.startsWith("/user_data/");
    if (
      isUserData &&
      opts.privilegedUserData &&
      (req.socket.remotePort ?? PRIVILEGED_PORTS_BELOW) >= PRIVILEGED_PORTS_BELOW
    )
      return send(403, refusedBody, "application/json");
    if (url.pathname === "/user_data" && req.method === "GET")
      return send(200, JSON.stringify({ user_data: [...userData.keys()] }), "application/json");
    const m = /^\/user_data\/([A-Za-z0-9_.-]+)$/.exec(url.pathname);
    if (!m)
      return send(404, JSON.stringify({ type: "not_found", message: "resource is not found" }), "application/json");
    const key = m[1]!;
    if (req.method === "GET")
      return userData.has(key)
        ? send(200, userData.get(key)!)
        : send(404, JSON.stringify({ type: "not_found" }), "application/json");
    if (req.method === "DELETE") {
      userData.delete(key);
      return send(204, "");
    }
    if (req.method === "PATCH" || req.method === "PUT") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const value = Buffer.concat(chunks).toString("utf8");
        userData.set(key, value);
        for (const w of waiters.get(key) ?? []) w(value);
        opts.onWrite?.(key, value);
        waiters.delete(key);
        send(204, "");
      });
      return;
    }
    send(405, "");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    userData,
    waitFor: (key, timeoutMs) =>
      userData.has(key)
        ? Promise.resolve(userData.get(key)!)
        : new Promise((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`user data "${key}" not published within ${timeoutMs / 1000} s`)),
              timeoutMs,
            );
            waiters.set(key, [...(waiters.get(key) ?? []), (v) => (clearTimeout(timer), resolve(v))]);
          }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
