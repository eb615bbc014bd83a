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

export async function startMetadataServer(conf: Record<string, unknown>): Promise<MetadataServer> {
  const userData = new Map<string, string>();
  const waiters = new Map<string, ((v: string) => void)[]>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const send = (status: number, body: string, type = "text/plain") => res.writeHead(status, { "content-type": type }).end(body);
    if (url.pathname === "/conf") {
      return url.searchParams.get("format") === "json"
        ? send(200, JSON.stringify(conf), "application/json")
        : send(200, Object.entries(conf).map(([k, v]) => `${k.toUpperCase()}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n"));
    }
    if (url.pathname === "/user_data" && req.method === "GET") return send(200, JSON.stringify({ user_data: [...userData.keys()] }), "application/json");
    const m = /^\/user_data\/([A-Za-z0-9_.-]+)$/.exec(url.pathname);
    if (!m) return send(404, JSON.stringify({ type: "not_found", message: "resource is not found" }), "application/json");
    const key = m[1]!;
    if (req.method === "GET") return userData.has(key) ? send(200, userData.get(key)!) : send(404, JSON.stringify({ type: "not_found" }), "application/json");
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
            const timer = setTimeout(() => reject(new Error(`user data "${key}" not published within ${timeoutMs / 1000} s`)), timeoutMs);
            waiters.set(key, [...(waiters.get(key) ?? []), (v) => (clearTimeout(timer), resolve(v))]);
          }),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
