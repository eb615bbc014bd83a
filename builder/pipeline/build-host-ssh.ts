/**
 * Running the CLI on a build host over OpenSSH, as the remote artifact Command does through the provider: the
 * host key pinned (a known_hosts file holding only it, StrictHostKeyChecking=yes), the contract's variables sent
 * as SSH environment requests (SendEnv, which the host's `AcceptEnv FACTORY_* AWS_*` admits), never on the command
 * line. Used by `doctor --host`, the build host tests and the bench.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostLabel, type BuildHost } from "../core/build-hosts";
import { run, ToolError } from "../system/exec";

export class BuildHostError extends Error {
  override name = "BuildHostError";
}

/** The variable names the remote Command passes (its environment): what the host must accept. */
export const SENT_ENV = ["FACTORY_*", "AWS_*"];

export interface SshTarget extends BuildHost {
  /** File holding the user's private key. */
  privateKeyFile: string;
}

/** Host key refusals as OpenSSH words them. */
const REFUSED = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known/;
const UNREACHABLE =
  /Connection refused|Connection timed out|No route to host|Could not resolve hostname|Connection closed by|Network is unreachable/;

/** The ssh arguments that trust exactly the pinned host key; `dir` receives the known_hosts file. */
export function pinnedArgs(t: SshTarget, dir: string): string[] {
  const knownHosts = join(dir, "known_hosts");
  // An alias, so the line needs no [address]:port form; the key's own type is the only algorithm offered.
  writeFileSync(knownHosts, `build-host ${t.hostKey}\n`);
  return [
    "-i",
    t.privateKeyFile,
    "-p",
    String(t.port),
    "-l",
    t.user,
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "HostKeyAlias=build-host",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `HostKeyAlgorithms=${t.hostKey.split(" ")[0]}`,
    "-o",
    "CheckHostIP=no",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ConnectTimeout=15",
    "-o",
    "LogLevel=ERROR",
    ...SENT_ENV.flatMap((p) => ["-o", `SendEnv=${p}`]),
  ];
}

export interface RemoteResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` on the host with `env` added to the SSH session's environment. Throws a BuildHostError when the
 * host key is not the pinned one or the host cannot be reached (nothing ran there); a command's own failure is
 * its exit code.
 */
export async function runOnHost(
  t: SshTarget,
  command: string,
  env: Record<string, string> = {},
  opts: { timeoutMs?: number; streamStderr?: boolean } = {},
): Promise<RemoteResult> {
  const dir = mkdtempSync(join(tmpdir(), "factory-build-host-"));
  const where = hostLabel(t);
  try {
    const r = await run("ssh", [...pinnedArgs(t, dir), t.address, command], {
      env: { ...process.env, ...env },
      timeoutMs: opts.timeoutMs ?? 3 * 3600_000,
      streamStderr: opts.streamStderr,
    });
    return { code: 0, ...r };
  } catch (err) {
    if (!(err instanceof ToolError)) throw err;
    if (err.code === 255 && REFUSED.test(err.stderr))
      throw new BuildHostError(
        `build host ${where}: its host key is not the pinned ${t.hostKey.split(" ")[0]} key: refusing to connect (nothing ran there)`,
      );
    if (err.code === 255 && UNREACHABLE.test(err.stderr))
      throw new BuildHostError(
        `build host ${where}: unreachable (${err.stderr.trim().split("\n").pop()}): nothing ran there`,
      );
    return { code: err.code ?? 255, stdout: err.stdout, stderr: err.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
