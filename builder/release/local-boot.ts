/**
 * test-local: boot a built image in QEMU the way an Instance boots — a copy-on-write overlay (the image stays
 * never-booted), a NoCloud seed with an ephemeral SSH key, the metadata API at 169.254.42.42 — then verify the
 * host key against the fingerprints the image published and run the in-guest checks over SSH.
 */
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accelerator, type Accelerator } from "../system/accel";
import { run } from "../system/exec";
import { freePort } from "../system/free-port";
import { checksFor, runGuestChecks, type CheckResult } from "./guest-checks";
import type { SshSession } from "./ssh";

/** The guest's public address as the local boot's metadata API states it: the host reaches it on loopback. */
export const LOCAL_PUBLIC_IP = "127.0.0.1";
import { startMetadataServer } from "./metadata-server";
import { ephemeralKey, HostKeyError, sshSession } from "./ssh";

export interface LocalBootOptions {
  image: string;
  /** The release the image was built for (checked against /etc/scw-release). */
  releaseId: string;
  /** The image's default user (SCS image_original_user). */
  user: string;
  /** Boot firmware: legacy BIOS (SeaBIOS) or UEFI (OVMF), as Scaleway boots Instances. */
  firmware?: "bios" | "uefi";
  /** How long first boot may take to publish its host keys; TCG is slow. */
  bootTimeoutMs?: number;
  accel?: Accelerator;
  /** Runs after the checks while the guest is still up (tests read what a boot produced). */
  inspect?: (ssh: SshSession) => Promise<void>;
}

export interface LocalBootResult {
  results: CheckResult[];
  /** The serial console, for a failing boot's post-mortem. */
  console: string;
}

/** Debian's ovmf package. */
export const OVMF = "/usr/share/ovmf/OVMF.fd";

/** A guest on a copy-on-write overlay and a NoCloud seed, its SSH forwarded to a loopback port, its serial to a file. */
export function qemuArgs(o: {
  accel: Accelerator;
  overlay: string;
  seed: string;
  consoleLog: string;
  sshPort: number;
  /** The loopback metadata server to serve at 169.254.42.42; without it, plain user networking. */
  metadataPort?: number;
  firmware: "bios" | "uefi";
  /** 1024 unless told: what a test boot needs. */
  memoryMiB?: number;
}): string[] {
  const net = [
    o.metadataPort === undefined ? "user,id=n0" : "user,id=n0,net=169.254.0.0/16",
    `hostfwd=tcp:127.0.0.1:${o.sshPort}-:22`,
    // The metadata API at its real address: each guest connection is piped to the loopback metadata server.
    ...(o.metadataPort === undefined
      ? []
      : [`guestfwd=tcp:169.254.42.42:80-cmd:socat - TCP:127.0.0.1:${o.metadataPort}`]),
  ].join(",");
  return [
    "-accel",
    o.accel,
    "-cpu",
    o.accel === "kvm" ? "host" : "max",
    "-smp",
    "2",
    "-m",
    String(o.memoryMiB ?? 1024),
    "-nodefaults",
    "-display",
    "none",
    "-serial",
    `file:${o.consoleLog}`,
    "-drive",
    `file=${o.overlay},if=virtio,format=qcow2`,
    "-drive",
    `file=${o.seed},if=virtio,format=raw,readonly=on`,
    "-netdev",
    net,
    "-device",
    "virtio-net-pci,netdev=n0",
    "-device",
    "virtio-rng-pci",
    ...(o.firmware === "uefi" ? ["-bios", OVMF] : []),
  ];
}

const result = (name: string, started: number, reason = "", status?: CheckResult["status"]): CheckResult => ({
  name,
  status: status ?? (reason ? "fail" : "pass"),
  seconds: (Date.now() - started) / 1000,
  reason,
});

export async function testLocal(opts: LocalBootOptions): Promise<LocalBootResult> {
  if (!existsSync(opts.image)) throw new Error(`no image at ${opts.image}`);
  const accel = opts.accel ?? (await accelerator());
  const work = mkdtempSync(join(tmpdir(), "factory-boot-"));
  const key = await ephemeralKey();
  const hostname = `factory-test-${randomBytes(3).toString("hex")}`;
  const metadata = await startMetadataServer({
    id: randomUUID(),
    name: hostname,
    hostname,
    commercial_type: "LOCAL-QEMU",
    ssh_public_keys: [{ key: key.publicKey }],
    // Where the host reaches the guest's forwarded ports: what an app must hand its clients.
    public_ip: { id: randomUUID(), address: LOCAL_PUBLIC_IP, dynamic: false, family: "inet" },
  });
  const consoleLog = join(work, "console.log");
  const results: CheckResult[] = [];
  let qemu: ReturnType<typeof spawn> | undefined;
  try {
    const overlay = join(work, "overlay.qcow2");
    await run("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", opts.image, overlay]);
    const seed = await nocloudSeed(work, key.publicKey, hostname);
    const sshPort = await freePort();

    let started = Date.now();
    qemu = spawn(
      "qemu-system-x86_64",
      qemuArgs({
        accel,
        overlay,
        seed,
        consoleLog,
        sshPort,
        metadataPort: metadata.port,
        firmware: opts.firmware ?? "bios",
      }),
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let qemuErr = "";
    qemu.stderr!.on("data", (d) => (qemuErr += d));
    const exited = new Promise<string>((resolve) =>
      qemu!.once("exit", (code) => resolve(`QEMU exited (${code}): ${qemuErr.trim().slice(-300)}`)),
    );
    const published = await Promise.race([
      metadata.waitFor("ssh-host-fingerprints", opts.bootTimeoutMs ?? 600_000),
      exited.then((why) => Promise.reject(new Error(why))),
    ]).then(
      (v) => v,
      (err: Error) => err,
    );
    if (published instanceof Error) {
      results.push(result("boot: SSH host fingerprints published at first boot", started, published.message));
      return { results, console: readConsole(consoleLog) };
    }
    results.push(result("boot: SSH host fingerprints published at first boot", started));

    started = Date.now();
    const ssh = sshSession(opts.user, "127.0.0.1", sshPort, key.privateKey, published);
    let login = { code: 255, stdout: "", stderr: "not tried" };
    let refused = "";
    try {
      // sshd starts right after the keys exist; give it a minute under TCG.
      for (let i = 0; i < 12 && login.code !== 0; i++) {
        login = await ssh.exec("true", 30_000);
        if (login.code !== 0) await new Promise((r) => setTimeout(r, 5000));
      }
    } catch (err) {
      if (!(err instanceof HostKeyError)) throw err;
      refused = err.message;
    }
    const firstLine = login.stderr.trim().split("\n")[0]?.slice(0, 200) ?? "";
    const unreachable = /Connection (refused|closed|reset|timed out)|timed out|kex_exchange_identification/.test(
      login.stderr,
    );
    const why =
      refused ||
      (login.code === 0
        ? ""
        : unreachable
          ? `sshd did not answer on port 22: ${firstLine}`
          : `login as ${opts.user} failed: ${firstLine}`);
    results.push(result("ssh: host key verified, login with an ephemeral key", started, why));
    if (why) {
      ssh.dispose();
      for (const name of checksFor(opts.releaseId).map((c) => c.name))
        results.push(result(name, Date.now(), "no SSH session", "skip"));
      return { results, console: readConsole(consoleLog) };
    }
    try {
      results.push(...(await runGuestChecks(ssh, { hostname, releaseId: opts.releaseId, publicIp: LOCAL_PUBLIC_IP })));
      if (opts.inspect) await opts.inspect(ssh);
    } finally {
      ssh.dispose();
    }
    return { results, console: readConsole(consoleLog) };
  } finally {
    qemu?.kill("SIGKILL");
    await metadata.close();
    rmSync(work, { recursive: true, force: true });
    rmSync(key.dir, { recursive: true, force: true });
  }
}

/** A NoCloud seed in `dir`: the public key for the image's default user, a fresh instance id, the hostname. */
export async function nocloudSeed(dir: string, publicKey: string, hostname: string): Promise<string> {
  writeFileSync(join(dir, "user-data"), `#cloud-config\nssh_authorized_keys:\n  - ${publicKey}\n`);
  writeFileSync(join(dir, "meta-data"), `instance-id: iid-${randomUUID()}\nlocal-hostname: ${hostname}\n`);
  const seed = join(dir, "seed.iso");
  await run("cloud-localds", [seed, join(dir, "user-data"), join(dir, "meta-data")]);
  return seed;
}

function readConsole(file: string): string {
  return existsSync(file) ? readFileSync(file, "utf8") : "";
}
