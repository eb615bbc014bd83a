/** Running external tools (libguestfs, qemu-img, gpgv) with errors that say which tool failed and why. */
import { spawn, type SpawnOptions } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export class ToolError extends Error {
  constructor(
    readonly tool: string,
    message: string,
    readonly stderr = "",
    readonly stdout = "",
    /** Exit code; null when killed by a signal or never started. */
    readonly code: number | null = null,
  ) {
    super(message);
    this.name = "ToolError";
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  /** Stream the tool's stderr to ours as it runs (long libguestfs steps). */
  streamStderr?: boolean;
  /** Hand the tool's stderr to this as it runs instead (the local job prefixes it per image and step). */
  onStderr?: (chunk: Buffer) => void;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** The Debian package each tool this factory runs comes in (scripts/lib.sh installs them all). */
export const TOOL_PACKAGES: Record<string, string> = {
  "qemu-img": "qemu-utils",
  "qemu-system-x86_64": "qemu-system-x86",
  "virt-customize": "libguestfs-tools",
  sfdisk: "fdisk",
  sgdisk: "gdisk",
  guestfish: "libguestfs-tools",
  gpg: "gpg",
  gpgv: "gpgv",
  "dpkg-deb": "dpkg",
  "dpkg-scanpackages": "dpkg-dev",
  "cloud-localds": "cloud-image-utils",
  ssh: "openssh-client",
  "ssh-keygen": "openssh-client",
};

/** What to say when `tool` is not on PATH: which package has it, and the command that installs everything. */
export function missingTool(tool: string): string {
  const pkg = TOOL_PACKAGES[tool];
  return `${tool} is not installed (not found on PATH)${pkg ? `: apt-get install ${pkg}, or run through scripts/dev, which installs every package the factory needs` : ""}`;
}

/** Whether an executable `tool` is on PATH (`path`, the environment's by default). */
export function onPath(tool: string, path = process.env.PATH ?? ""): boolean {
  return path
    .split(delimiter)
    .filter(Boolean)
    .some((dir) => {
      try {
        accessSync(join(dir, tool), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/** Runs a program to completion; a non-zero exit throws a ToolError carrying the tail of its stderr. */
export function run(tool: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] };
    const child = spawn(tool, args, spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    child.stderr!.on("data", (d: Buffer) => {
      err.push(d);
      if (opts.onStderr) opts.onStderr(d);
      else if (opts.streamStderr) process.stderr.write(d);
    });
    child.on("error", (e: NodeJS.ErrnoException) =>
      reject(new ToolError(tool, e.code === "ENOENT" ? missingTool(tool) : `${tool}: ${e.message}`)),
    );
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (code === 0) return resolve({ stdout, stderr });
      const tail = stderr.trim().split("\n").slice(-15).join("\n");
      const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
      reject(new ToolError(tool, `${tool} ${how}${tail ? `:\n${tail}` : ""}`, stderr, stdout, code));
    });
    // A tool may exit without reading its input; that is its exit status's business, not an EPIPE crash.
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(opts.input ?? "");
  });
}
