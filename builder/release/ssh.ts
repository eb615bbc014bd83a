/**
 * SSH to a test Instance the way the Instances API notes say to: ephemeral keys, and the host key checked against
 * the `ssh-host-fingerprints` the image published as user data at first boot. Host key checking is never turned
 * off.
 *
 * The check happens inside ssh's own handshake: a KnownHostsCommand is handed the offered key's fingerprint and
 * vouches for the key only if that fingerprint was published. One connection, no scan-then-connect window, and a
 * key matching none of the fingerprints ends in "Host key verification failed" (StrictHostKeyChecking=yes).
 *
 * A session's commands share one connection (OpenSSH's ControlMaster): under TCG a handshake costs the guest a
 * second or two of CPU (key exchange, host key signature, a forked sshd, PAM), and a battery runs dozens of
 * commands. The first command's connection makes the host key check; the others ride on it.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, ToolError } from "../system/exec";

export class HostKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostKeyError";
  }
}

/** `SHA256:…` fingerprints in `ssh-keygen -l` output or the published user data. */
export function fingerprintsIn(text: string): Set<string> {
  return new Set([...text.matchAll(/\bSHA256:[A-Za-z0-9+/]{43}\b/g)].map((m) => m[0]));
}

export interface SshSession {
  user: string;
  host: string;
  port: number;
  exec(command: string, timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  dispose(): void;
}

/** An ephemeral key pair: the public half goes into the Instance, both are deleted afterwards. */
export async function ephemeralKey(): Promise<{ dir: string; privateKey: string; publicKey: string }> {
  const dir = mkdtempSync(join(tmpdir(), "factory-ssh-"));
  const privateKey = join(dir, "id_ed25519");
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "image-factory-test", "-f", privateKey]);
  return { dir, privateKey, publicKey: readFileSync(`${privateKey}.pub`, "utf8").trim() };
}

/**
 * ssh's KnownHostsCommand: arguments are the offered key's fingerprint, the known_hosts name looked up, the key
 * type and the key. It prints a known_hosts line only for a published fingerprint; ssh passes NONE when it only
 * orders its algorithms. It always exits 0: a non-zero exit would end the connection with a less useful message.
 */
const VOUCH = `#!/bin/sh
[ "$1" != NONE ] && grep -qxF -- "$1" "$(dirname "$0")/published" && printf '%s %s %s\\n' "$2" "$3" "$4"
exit 0
`;

/** The ssh options that trust exactly the host keys whose fingerprints were published. */
export function pinnedHostKeys(published: string, dir: string): string[] {
  const expected = fingerprintsIn(published);
  if (expected.size === 0) throw new HostKeyError("no SSH host key fingerprints were published");
  writeFileSync(join(dir, "published"), `${[...expected].join("\n")}\n`);
  const vouch = join(dir, "vouch");
  writeFileSync(vouch, VOUCH);
  chmodSync(vouch, 0o755);
  return [
    "-o",
    `KnownHostsCommand=${vouch} %f %H %t %K`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "CheckHostIP=no",
  ];
}

const REFUSED = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known/;

/**
 * A session to user@host:port trusting only the published host keys. `exec` throws a HostKeyError when the
 * server's key matches none of them (what a man in the middle looks like); other failures are exit codes.
 */
export function sshSession(
  user: string,
  host: string,
  port: number,
  privateKey: string,
  published: string,
): SshSession {
  const dir = mkdtempSync(join(tmpdir(), "factory-known-"));
  let hostKeys: string[];
  try {
    hostKeys = pinnedHostKeys(published, dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const base = [
    "-i",
    privateKey,
    "-p",
    String(port),
    ...hostKeys,
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ConnectTimeout=20",
    "-o",
    "LogLevel=ERROR",
    ...multiplexing(join(dir, "cm")),
  ];
  return {
    user,
    host,
    port,
    async exec(command, timeoutMs = 120_000) {
      try {
        const r = await run("ssh", [...base, `${user}@${host}`, command], { timeoutMs });
        return { code: 0, ...r };
      } catch (err) {
        if (!(err instanceof ToolError)) throw err;
        if (err.code === 255 && REFUSED.test(err.stderr))
          throw new HostKeyError(
            `host key of ${host}:${port} matches none of the published ssh-host-fingerprints: refusing to connect`,
          );
        return { code: err.code ?? 255, stdout: err.stdout, stderr: err.stderr };
      }
    },
    dispose: () => {
      stopMaster(join(dir, "cm"));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One connection for a session's commands. The master lives on between commands (ControlPersist) and goes when the
 * session is disposed, or after ten idle minutes if nobody does. A guest that reboots or stops under it leaves no
 * RST: keepalives end the master within about 15 s, and the next command then connects (and checks) afresh.
 */
export function multiplexing(controlPath: string): string[] {
  return [
    "-o",
    "ControlMaster=auto",
    "-o",
    `ControlPath=${controlPath}`,
    "-o",
    "ControlPersist=600",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=3",
  ];
}

/** Asks a session's master to exit (a local socket: instant); nothing to do when no command ever connected. */
function stopMaster(controlPath: string): void {
  if (!existsSync(controlPath)) return;
  spawnSync("ssh", ["-o", `ControlPath=${controlPath}`, "-O", "exit", "master"], { stdio: "ignore", timeout: 5000 });
}
