/**
 * A real OpenSSH server on loopback for tests of the client side, without installing one on the host: the
 * binary is unpacked (not installed) from Debian's openssh-server package into the per-user cache, and runs as
 * root in a private mount namespace that supplies the privilege separation user and directory it insists on.
 * Needs root (unshare --mount), as CI has.
 */
import { spawn, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../builder/system/exec";
import { cacheDir } from "../../builder/system/paths";

async function sshdBinary(): Promise<string> {
  const { stdout } = await run("dpkg-query", ["-W", "-f=${Version}", "openssh-client"]);
  const dir = cacheDir("openssh-server", stdout.trim().replace(/[^A-Za-z0-9.+~-]/g, "_"));
  const sshd = join(dir, "usr", "sbin", "sshd");
  if (existsSync(sshd)) return sshd;
  const tmp = mkdtempSync(join(tmpdir(), "sshd-deb-"));
  try {
    // The server matching the installed client where the mirror still has it, else its current one.
    await run("apt-get", ["download", `openssh-server=${stdout.trim()}`], { cwd: tmp }).catch(() =>
      run("apt-get", ["download", "openssh-server"], { cwd: tmp }),
    );
    const deb = readdirSync(tmp).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error("apt-get download openssh-server produced no package");
    await run("dpkg-deb", ["-x", join(tmp, deb), join(tmp, "root")]);
    mkdirSync(join(dir, ".."), { recursive: true });
    renameSync(join(tmp, "root"), dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return sshd;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface TestSshd {
  port: number;
  /** `ssh-keygen -l` output of the server's host key, as a boot would publish it. */
  fingerprint: string;
  /** The host's public key, `ssh-ed25519 AAAA…` (what a build host pins). */
  hostKey: string;
  stop(): Promise<void>;
}

/**
 * Starts sshd on 127.0.0.1 with a fresh host key, accepting `authorizedKey` for root; `config` adds sshd_config
 * lines (a build host's `AcceptEnv`).
 */
export async function startSshd(authorizedKey: string, config: string[] = []): Promise<TestSshd> {
  const sshd = await sshdBinary();
  const dir = mkdtempSync(join(tmpdir(), "test-sshd-"));
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host")]);
  const fingerprint = (await run("ssh-keygen", ["-l", "-f", join(dir, "host.pub")])).stdout;
  writeFileSync(join(dir, "authorized_keys"), `${authorizedKey}\n`);
  copyFileSync("/etc/passwd", join(dir, "passwd"));
  writeFileSync(
    join(dir, "passwd"),
    `${readFileSync(join(dir, "passwd"), "utf8")}sshd:x:74:65534::/run/sshd:/usr/sbin/nologin\n`,
  );
  mkdirSync(join(dir, "empty"));
  const port = await freePort();
  writeFileSync(
    join(dir, "sshd_config"),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${dir}/host`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "StrictModes no",
      "PidFile none",
      "UsePAM no",
      "PasswordAuthentication no",
      ...config,
      "",
    ].join("\n"),
  );
  chmodSync(join(dir, "host"), 0o600);
  const script = [
    "set -e",
    `mount --bind ${dir}/passwd /etc/passwd`,
    `if [ -d /run/sshd ]; then mount --bind ${dir}/empty /run/sshd; else mount -t tmpfs tmpfs /run && mkdir /run/sshd; fi`,
    `exec ${sshd} -D -e -f ${dir}/sshd_config`,
  ].join("\n");
  const proc: ChildProcess = spawn("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  proc.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  for (let i = 0; i < 100 && !log.includes("Server listening"); i++) {
    if (proc.exitCode !== null) throw new Error(`sshd did not start: ${log.trim()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!log.includes("Server listening")) throw new Error(`sshd did not start listening: ${log.trim()}`);
  return {
    port,
    fingerprint,
    hostKey: readFileSync(join(dir, "host.pub"), "utf8").trim().split(" ").slice(0, 2).join(" "),
    async stop() {
      proc.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
