/**
 * A static file server for loopback: the upstream mirror (`/upstream/<host>/<path>`) and the package repository
 * (`/packages/...`) of the local stack. Serves byte ranges and directory listings like real mirrors, so resumed
 * downloads and the upstream watcher are exercised, and lets tests inject faults (a connection cut mid-body).
 */
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";

export interface Fault {
  /** Cut the connection after this many body bytes, for requests whose path ends with `suffix`. */
  cutAfterBytes: number;
  suffix: string;
  /** How many requests to cut; then serve normally. */
  times: number;
}

export interface StaticServer {
  url: string;
  port: number;
  /** Requests served, path and Range header: tests assert resumption. */
  log: { path: string; range?: string; status: number }[];
  faults: Fault[];
  close(): Promise<void>;
}

const escapeHtml = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;");

/** A directory listing in the form nginx's and Apache's autoindex write: one link per entry, directories with `/`. */
export function autoindex(dir: string, path: string): string {
  const entries = readdirSync(dir, { withFileTypes: true })
    .map((e) => (e.isDirectory() ? `${e.name}/` : e.name))
    .sort();
  const links = [
    '<a href="../">../</a>',
    ...entries.map((e) => `<a href="${escapeHtml(encodeURI(e))}">${escapeHtml(e)}</a>`),
  ];
  return `<html><head><title>Index of ${escapeHtml(path)}</title></head><body><h1>Index of ${escapeHtml(path)}</h1><hr><pre>\n${links.join("\n")}\n</pre><hr></body></html>\n`;
}

export async function serveDirectory(root: string, port = 0, host = "127.0.0.1"): Promise<StaticServer> {
  const log: StaticServer["log"] = [];
  const faults: Fault[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = normalize(join(root, path));
    const record = (status: number) => log.push({ path, range: req.headers.range, status });
    if (file.startsWith(root) && existsSync(file) && statSync(file).isDirectory()) {
      record(200);
      res.writeHead(200, { "content-type": "text/html" }).end(autoindex(file, path));
      return;
    }
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      record(404);
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const size = statSync(file).size;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size) {
        record(416);
        res.writeHead(416, { "content-range": `bytes */${size}` }).end();
        return;
      }
      status = 206;
    }
    record(status);
    res.writeHead(status, {
      "content-length": String(end - start + 1),
      "accept-ranges": "bytes",
      ...(status === 206 ? { "content-range": `bytes ${start}-${end}/${size}` } : {}),
    });
    if (req.method === "HEAD") return void res.end();
    const fault = faults.find((f) => f.times > 0 && path.endsWith(f.suffix));
    if (fault) {
      fault.times--;
      const stream = createReadStream(file, { start, end: Math.min(end, start + fault.cutAfterBytes - 1) });
      stream.on("end", () => res.destroy());
      stream.pipe(res, { end: false });
      return;
    }
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    log,
    faults,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
