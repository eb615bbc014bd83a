/**
 * SSH to a test Instance the way the Instances API notes say to: ephemeral keys, and the host key checked against
 * the `ssh-host-fingerprints` the image published as user data at first boot, before the first connection.
 * Host key checking is never turned off.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, ToolError } from "../exec";

export class HostKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostKeyError";
  }
}

/** `SHA256:…` fingerprints in `ssh-keygen -l` output. */
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
 * Scans the host's keys and keeps only those whose fingerprint was published; none matching is a refusal, not a
 * warning (it is what a man in the middle looks like).
 */
export async function verifiedKnownHosts(host: string, port: number, published: string, dir: string): Promise<string> {
  const expected = fingerprintsIn(published);
  if (expected.size === 0) throw new HostKeyError(`no SSH host key fingerprints were published for ${host}:${port}`);
  // One key type per connection: parallel scans through QEMU's user-mode port forwarding can stall.
  const lines: string[] = [];
  for (const type of ["ed25519", "ecdsa", "rsa"]) {
    const { stdout } = await run("ssh-keyscan", ["-t", type, "-p", String(port), "-T", "10", host], { timeoutMs: 30_000 });
    lines.push(...stdout.split("\n").filter((l) => l && !l.startsWith("#")));
  }
  const trusted: string[] = [];
  for (const line of lines) {
    const file = join(dir, "scanned.pub");
    writeFileSync(file, `${line.split(" ").slice(1).join(" ")}\n`);
    const fp = await run("ssh-keygen", ["-l", "-f", file]).then((r) => [...fingerprintsIn(r.stdout)][0], () => undefined);
    if (fp && expected.has(fp)) trusted.push(line);
  }
  if (trusted.length === 0)
    throw new HostKeyError(`host key of ${host}:${port} matches none of the published ssh-host-fingerprints: refusing to connect`);
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `${trusted.join("\n")}\n`);
  return knownHosts;
}

export function sshSession(user: string, host: string, port: number, privateKey: string, knownHosts: string, dir: string): SshSession {
  const base = [
    "-i", privateKey, "-p", String(port),
    "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR",
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
        if (err instanceof ToolError) return { code: err.code ?? 255, stdout: err.stdout, stderr: err.stderr };
        throw err;
      }
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
