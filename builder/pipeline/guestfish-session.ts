/**
 * One libguestfs appliance driven command by command (guestfish's remote control), for work whose next step
 * depends on what the last one answered. Finalise uses it to take the package list out and trim every filesystem
 * in one appliance launch, where a `guestfish -i` run and a `virt-sparsify --in-place` run took two, each with an
 * operating-system inspection (about 20 s under TCG) that neither needs.
 */
import { spawn } from "node:child_process";
import { guestfsEnv, type Accelerator } from "../system/accel";
import { run, ToolError } from "../system/exec";

export interface Filesystem {
  device: string;
  type: string;
}

/** `list-filesystems` output: `/dev/sda1: ext4` lines. */
export function parseFilesystems(text: string): Filesystem[] {
  return text
    .split("\n")
    .map((l) => /^(\S+):\s*(\S+)\s*$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ device: m[1]!, type: m[2]! }));
}

/** Filesystems holding files to read or blocks to trim: not swap, not what libguestfs could not identify. */
export function mountable(filesystems: Filesystem[]): Filesystem[] {
  return filesystems.filter((f) => f.type !== "swap" && f.type !== "unknown");
}

export class GuestfishSession {
  /** The server's stderr: where an appliance-side error is written, not to the `--remote` client's. */
  private serverLog = "";

  private constructor(
    private readonly pid: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Starts a guestfish server (no appliance yet: `add-drive` and `run` come first). */
  static async start(accel: Accelerator): Promise<GuestfishSession> {
    const env = guestfsEnv(accel);
    // The server forks and keeps stderr: wait for the parent's exit, not for the pipes to close.
    const child = spawn("guestfish", ["--listen"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", resolve);
    });
    child.stdout.destroy();
    const pid = /GUESTFISH_PID=(\d+)/.exec(stdout)?.[1];
    if (code !== 0 || !pid) {
      child.stderr.destroy();
      throw new Error(`guestfish --listen exited ${code} without a server: ${(stderr || stdout).trim().slice(0, 300)}`);
    }
    const session = new GuestfishSession(pid, env);
    // Kept open (the server holds the pipe until it exits) but never keeping this process alive by itself.
    child.stderr.removeAllListeners("data");
    child.stderr.on("data", (d: Buffer) => (session.serverLog = (session.serverLog + d.toString()).slice(-4000)));
    child.stderr.on("error", () => undefined);
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    return session;
  }

  /** Runs one command; a failure names it, with what the server said. */
  async do(...command: string[]): Promise<string> {
    const before = this.serverLog.length;
    try {
      return (await run("guestfish", [`--remote=${this.pid}`, "--", ...command], { env: this.env })).stdout;
    } catch (err) {
      if (!(err instanceof ToolError)) throw err;
      // Give the server's error line a moment to arrive on its pipe.
      await new Promise((r) => setTimeout(r, 50));
      const said = this.serverLog.slice(Math.min(before, this.serverLog.length)).trim() || err.stderr.trim();
      throw new ToolError(
        "guestfish",
        `guestfish ${command.join(" ")} failed${said ? `: ${said}` : ""}`,
        said,
        err.stdout,
        err.code,
      );
    }
  }

  /** Ends the server and its appliance; a server that no longer answers is killed. */
  async close(): Promise<void> {
    await this.do("exit").catch((err: unknown) => {
      if (!(err instanceof ToolError)) throw err;
      try {
        process.kill(Number(this.pid), "SIGTERM");
      } catch {
        // already gone
      }
    });
  }
}
