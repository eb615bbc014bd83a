/**
 * The SSH client's host key rule against a real sshd: a host key is trusted only when its fingerprint was
 * published (ssh-host-fingerprints), checked inside ssh's own handshake; anything else is refused before login.
 */
import { existsSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../builder/system/exec";
import { ephemeralKey, HostKeyError, sshSession } from "../../builder/release/ssh";
import { startSshd, type TestSshd } from "../support/sshd";

let key: Awaited<ReturnType<typeof ephemeralKey>>;
let server: TestSshd;
/** A fingerprint the server does not have: another freshly made key's. */
let stranger: string;

beforeAll(async () => {
  key = await ephemeralKey();
  server = await startSshd(key.publicKey);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${key.dir}/stranger`]);
  stranger = (await run("ssh-keygen", ["-l", "-f", `${key.dir}/stranger.pub`])).stdout;
});

afterAll(async () => {
  await server?.stop();
  if (key) rmSync(key.dir, { recursive: true, force: true });
});

/** The client's port of the connection a command ran over, as the server saw it (SSH_CONNECTION). */
async function clientPort(ssh: ReturnType<typeof sshSession>): Promise<string> {
  const r = await ssh.exec("echo $SSH_CONNECTION", 30_000);
  expect(r.code, r.stderr).toBe(0);
  const port = r.stdout.split(" ")[1]!;
  expect(port).toMatch(/^\d+$/);
  return port;
}

/** The pid of this machine's process holding an established connection from local port `port`. */
async function connectionHolder(port: string): Promise<number | undefined> {
  const { stdout } = await run("ss", ["-Htnp", "state", "established", `( sport = :${port} )`]);
  const pid = /pid=(\d+)/.exec(stdout)?.[1];
  return pid ? Number(pid) : undefined;
}

describe("ssh with published host key fingerprints", () => {
  it("logs in when the host key's fingerprint was published, among others", async () => {
    const ssh = sshSession("root", "127.0.0.1", server.port, key.privateKey, `${stranger}\n${server.fingerprint}`);
    try {
      const r = await ssh.exec("echo logged-in-as-$(id -un)", 30_000);
      expect(r).toMatchObject({ code: 0, stdout: "logged-in-as-root\n" });
    } finally {
      ssh.dispose();
    }
  });

  it("refuses a host whose key matches none of the published fingerprints, before any command runs", async () => {
    const ssh = sshSession("root", "127.0.0.1", server.port, key.privateKey, stranger);
    try {
      const canary = `/tmp/factory-must-not-run-${randomBytes(6).toString("hex")}`;
      await expect(ssh.exec(`touch ${canary}`, 30_000)).rejects.toThrow(HostKeyError);
      expect(existsSync(canary)).toBe(false);
      await expect(ssh.exec("true", 30_000)).rejects.toThrow(/matches none of the published ssh-host-fingerprints/);
    } finally {
      ssh.dispose();
    }
  });

  it("runs a session's commands over one connection, and connects afresh when that connection is gone", async () => {
    const ssh = sshSession("root", "127.0.0.1", server.port, key.privateKey, server.fingerprint);
    try {
      const first = await clientPort(ssh);
      expect(await clientPort(ssh)).toBe(first);
      expect(await clientPort(ssh)).toBe(first);
      // What a guest's reset does to a session: its connection is gone. The next command opens (and checks) a new one.
      const holder = await connectionHolder(first);
      expect(holder).toBeDefined();
      process.kill(holder!, "SIGKILL");
      const again = await clientPort(ssh);
      expect(again).not.toBe(first);
    } finally {
      ssh.dispose();
    }
  });

  it("leaves no connection behind once disposed", async () => {
    const ssh = sshSession("root", "127.0.0.1", server.port, key.privateKey, server.fingerprint);
    const port = await clientPort(ssh);
    expect(await connectionHolder(port)).toBeDefined();
    ssh.dispose();
    expect(await connectionHolder(port)).toBeUndefined();
  });

  it("refuses to start without any published fingerprint", () => {
    expect(() => sshSession("root", "127.0.0.1", server.port, key.privateKey, "user data without keys")).toThrow(
      /no SSH host key fingerprints were published/,
    );
  });

  it("reports an unreachable server as an exit code, not as a host key problem", async () => {
    const ssh = sshSession("root", "127.0.0.1", 1, key.privateKey, server.fingerprint);
    try {
      const r = await ssh.exec("true", 30_000);
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/Connection refused/);
    } finally {
      ssh.dispose();
    }
  });
});
