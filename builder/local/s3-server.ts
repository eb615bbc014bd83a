/**
 * The embedded S3 server: versitygw (a real S3 gateway) over a local directory, on loopback. Built once from the
 * Go module proxy into the per-user cache, keyed by version.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { connect } from "node:net";
import { ensureGoTool } from "../system/go-tools";
import { freePort } from "../system/free-port";

export const VERSITYGW_VERSION = "v1.8.0";

export interface S3Server {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The directory holding the buckets: tests look inside to prove nothing was left behind. */
  root: string;
  stop(): Promise<void>;
}

/** versitygw's binary, built once from the Go module proxy. */
export function ensureVersitygw(): Promise<string> {
  return ensureGoTool({
    name: "versitygw",
    pkg: "github.com/versity/versitygw/cmd/versitygw",
    version: VERSITYGW_VERSION,
    ldflags: `-X main.Version=${VERSITYGW_VERSION} -X main.Build=${VERSITYGW_VERSION}`,
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`versitygw exited (${child.exitCode}): ${output()}`);
    // A TCP connection is enough: Go's server serves what it accepted, and no HTTP client (fetch's undici is a
    // tenth of a second to load) is needed to wait for it. It listens within a few hundred milliseconds: polling
    // finely starts the job that much sooner.
    if (await accepts(port)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`versitygw did not listen on 127.0.0.1:${port}: ${output()}`);
}

export async function startS3(root: string, port?: number, region = "fr-par"): Promise<S3Server> {
  const bin = await ensureVersitygw();
  mkdirSync(root, { recursive: true });
  const p = port ?? (await freePort());
  // Loopback-only server: credentials derived from its data directory, so a restart over the same buckets keeps
  // their owner, and callers take them from this object rather than from a constant.
  const digest = createHash("sha256").update(`versitygw:${root}`).digest("hex");
  const accessKeyId = `local${digest.slice(0, 15)}`;
  const secretAccessKey = digest.slice(15);
  const child = spawn(
    bin,
    [
      "--access",
      accessKeyId,
      "--secret",
      secretAccessKey,
      "--region",
      region,
      "--port",
      `127.0.0.1:${p}`,
      "posix",
      root,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  await waitForPort(p, child, () => out.slice(-2000));
  return {
    endpoint: `http://127.0.0.1:${p}`,
    region,
    accessKeyId,
    secretAccessKey,
    root,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
