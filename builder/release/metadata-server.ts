/**
 * The Instance metadata API as a booted guest sees it at 169.254.42.42: `/conf?format=json` and user data
 * (`GET /user_data`, `GET|PATCH|DELETE /user_data/<key>`, text/plain). For local boots, where QEMU forwards the
 * guest's 169.254.42.42:80 to this loopback server.
 */
import { createServer, type Server } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { rmSync } from "node:fs";
import { readProxyHeader, type ProxyHeader } from "./proxy-header";

export interface MetadataServer {
  url: string;
  port: number;
  userData: Map<string, string>;
  /**
   * Also serves on a unix socket whose connections each start with a PROXY v1 header (a forwarder in the guest's
   * network namespace), so the server sees the guest's own source port; a connection without a valid header gets
   * a 400 naming the problem. The returned function stops listening and removes the socket file.
   */
  listenProxied(path: string): Promise<() => Promise<void>>;
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
   * connections reach this server with their source port intact (the PROXY listener): QEMU's user networking
   * (guestfwd) hands each one to a forwarder whose own port the server sees, so those callers must leave it off.
   * PROXY connections (`listenProxied`) always meet the rule.
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
  const proxied = new WeakMap<object, ProxyHeader>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    // The server closes first after each answer: the guest's next connection from the same source port (cloud-init
    // takes port 1 for user data, then again for vendor data) then finds no TIME_WAIT of its own in the way.
    const send = (status: number, body: string, type = "text/plain") =>
      res
        .writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), connection: "close" })
        .end(body);
    const header = proxied.get(req.socket);
    // A PROXY connection carries the guest's own port, so the rule always holds there.
    const enforce = header !== undefined || opts.privilegedUserData;
    const sourcePort = header?.sourcePort ?? req.socket.remotePort;
    const injected = opts.inject?.(`${req.method} ${url.pathname}`, Object.fromEntries(url.searchParams));
    if (injected) return send(injected.status, JSON.stringify(injected.body), "application/json");
    if (url.pathname === "/conf") {
      return url.searchParams.get("format") === "json"
        ? send(200, JSON.stringify(currentConf()), "application/json")
        : send(200, confText(currentConf()));
    }
    const isUserData = url.pathname === "/user_data" || url.pathname.startsWith("/user_data/");
    if (isUserData && enforce && (sourcePort ?? PRIVILEGED_PORTS_BELOW) >= PRIVILEGED_PORTS_BELOW)
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
  const listenProxied = async (path: string) => {
    const sockets = new Set<Socket>();
    const unix = createNetServer((sock) => {
      sockets.add(sock);
      sock.once("close", () => sockets.delete(sock));
      sock.on("error", () => sock.destroy());
      readProxyHeader(sock).then(
        ({ header, rest }) => {
          proxied.set(sock, header);
          if (rest.length) sock.unshift(rest);
          server.emit("connection", sock);
          sock.resume();
        },
        (err: Error) =>
          sock.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      unix.once("error", reject);
      unix.listen(path, resolve);
    });
    return () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        unix.close(() => (rmSync(path, { force: true }), resolve()));
      });
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    userData,
    listenProxied,
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
