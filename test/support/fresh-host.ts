/**
 * A fresh Debian 12 host on loopback, for tests of what prepares hosts: the local stack's fixture upstream (never
 * booted: debootstrap, cloud-init, sshd) on a copy-on-write overlay grown to the disk asked for, booted in QEMU with
 * a NoCloud seed carrying an ephemeral key and SSH forwarded to a loopback port, as test-local boots images. Its
 * host key is taken by ssh-keyscan and checked against the fingerprints cloud-init printed on its serial console.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureFixture } from "../../builder/local/fixture";
import { parseDpkgStatus } from "../../builder/pipeline/sbom";
import { nocloudSeed, qemuArgs } from "../../builder/release/local-boot";
import { ephemeralKey, fingerprintsIn, HostKeyError } from "../../builder/release/ssh";
import { accelerator, guestfsEnv, type Accelerator } from "../../builder/system/accel";
import { run } from "../../builder/system/exec";
import { freePort } from "../../builder/system/free-port";
import { cacheDir } from "../../builder/system/paths";

/** What a fresh cloud host must have for this: first-boot setup from the seed, and sshd. */
export const FRESH_HOST_PACKAGES = ["cloud-init", "openssh-server"];

/** The SHA256 fingerprints cloud-init printed between its host key fingerprint markers on a console. */
export function consoleFingerprints(console: string): Set<string> {
  const m = /-----BEGIN SSH HOST KEY FINGERPRINTS-----([\s\S]*?)-----END SSH HOST KEY FINGERPRINTS-----/.exec(console);
  return m ? fingerprintsIn(m[1]!) : new Set();
}

/** The `<type> <base64>` public key of `type` in ssh-keyscan's output; undefined when it has none. */
export function scannedKey(keyscan: string, type: string): string | undefined {
  const m = new RegExp(`^\\S+ (${type.replace(/[.+-]/g, "\\$&")} AAAA[A-Za-z0-9+/]+=*)$`, "m").exec(keyscan);
  return m?.[1];
}

/** `SHA256:…` of a public key, as ssh-keygen computes it. */
export async function keyFingerprint(publicKey: string): Promise<string> {
  const { stdout } = await run("ssh-keygen", ["-l", "-f", "-"], { input: `${publicKey}\n` });
  const [fp] = fingerprintsIn(stdout);
  if (!fp) throw new Error(`ssh-keygen printed no SHA256 fingerprint for ${publicKey.slice(0, 40)}…: ${stdout}`);
  return fp;
}

/** The scanned key, only when its fingerprint is one the guest printed itself: else a HostKeyError. */
export async function verifiedHostKey(keyscan: string, console: string, type = "ssh-ed25519"): Promise<string> {
  const key = scannedKey(keyscan, type);
  if (!key) throw new HostKeyError(`ssh-keyscan found no ${type} key: ${keyscan.trim().slice(0, 200)}`);
  const printed = consoleFingerprints(console);
  const fp = await keyFingerprint(key);
  if (!printed.has(fp))
    throw new HostKeyError(
      `the scanned ${type} key (${fp}) is none of the ${printed.size} the guest printed on its console: refusing it`,
    );
  return key;
}

export interface FreshHost {
  /** The image's default user, who holds the ephemeral key and passwordless sudo. */
  user: string;
  port: number;
  /** `ssh-ed25519 AAAA…`, verified against the console. */
  hostKey: string;
  privateKeyFile: string;
  accel: Accelerator;
  /** Which image booted: the fixture, or the debian-12 artifact when the fixture lacks FRESH_HOST_PACKAGES. */
  image: string;
  console(): string;
  /** Kills the guest and removes every file of it; safe to call twice. */
  stop(): Promise<void>;
}

/** The newest cached debian-12 x86_64 artifact: the fallback when the fixture cannot boot as a cloud host. */
function cachedArtifact(): string | undefined {
  const dir = cacheDir("artifacts");
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir)
    .filter((f) => /^debian-12-x86_64-[0-9a-f]{16}\.qcow2$/.test(f))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

/**
 * An overlay on `image` grown to `diskGiB`, its root partition and file system grown with it (neither image has
 * cloud-guest-utils, so cloud-init cannot grow the partition), and the packages the image has installed.
 */
async function grownOverlay(image: string, overlay: string, diskGiB: number, accel: Accelerator, work: string) {
  rmSync(overlay, { force: true });
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, overlay]);
  await run("qemu-img", ["resize", "-q", overlay, `${diskGiB}G`]);
  // The fixture's layout (test/fixtures/build-debian-image.sh): one MBR partition, the ext4 root.
  const status = join(work, "dpkg-status");
  const script = [
    "run",
    "part-resize /dev/sda 1 -1",
    "e2fsck-f /dev/sda1",
    "resize2fs /dev/sda1",
    "mount /dev/sda1 /",
    `download /var/lib/dpkg/status ${status}`,
  ].join("\n");
  await run("guestfish", ["--rw", "--format=qcow2", "-a", overlay], { env: guestfsEnv(accel), input: script });
  return new Set(parseDpkgStatus(readFileSync(status, "utf8")).map((p) => p.name));
}

export async function bootFreshDebian(opts: {
  diskGiB: number;
  memoryMiB: number;
  bootTimeoutMs?: number;
}): Promise<FreshHost> {
  const accel = await accelerator();
  const work = mkdtempSync(join(tmpdir(), "factory-fresh-host-"));
  const key = await ephemeralKey();
  let qemu: ChildProcess | undefined;
  const consoleLog = join(work, "console.log");
  const readConsole = () => (existsSync(consoleLog) ? readFileSync(consoleLog, "utf8") : "");
  const stop = async () => {
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      const exited = new Promise((r) => qemu!.once("exit", r));
      qemu.kill("SIGKILL");
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
    rmSync(key.dir, { recursive: true, force: true });
  };
  try {
    const overlay = join(work, "overlay.qcow2");
    let image = await ensureFixture();
    const has = await grownOverlay(image, overlay, opts.diskGiB, accel, work);
    const lacking = FRESH_HOST_PACKAGES.filter((p) => !has.has(p));
    if (lacking.length) {
      const artifact = cachedArtifact();
      if (!artifact)
        throw new Error(
          `the fixture ${image} lacks ${lacking.join(", ")}, and no debian-12 x86_64 artifact is cached in ${cacheDir("artifacts")}`,
        );
      process.stderr.write(`fresh host: the fixture lacks ${lacking.join(", ")}: booting ${artifact} instead\n`);
      image = artifact;
      const again = await grownOverlay(image, overlay, opts.diskGiB, accel, work);
      const still = FRESH_HOST_PACKAGES.filter((p) => !again.has(p));
      if (still.length) throw new Error(`${image} lacks ${still.join(", ")} too: no fresh cloud host to boot`);
    }
    const seed = await nocloudSeed(work, key.publicKey, `fresh-host-${randomBytes(3).toString("hex")}`);
    const port = await freePort();
    qemu = spawn(
      "qemu-system-x86_64",
      qemuArgs({ accel, overlay, seed, consoleLog, sshPort: port, firmware: "bios", memoryMiB: opts.memoryMiB }),
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let qemuErr = "";
    qemu.stderr!.on("data", (d) => (qemuErr += d));

    // cloud-init prints the host keys' fingerprints to the console once they exist, in its final stage.
    const deadline = Date.now() + (opts.bootTimeoutMs ?? 15 * 60_000);
    while (!/-----END SSH HOST KEY FINGERPRINTS-----/.test(readConsole())) {
      if (qemu.exitCode !== null) throw new Error(`QEMU exited (${qemu.exitCode}): ${qemuErr.trim().slice(-300)}`);
      if (Date.now() > deadline)
        throw new Error(`no host key fingerprints on the console in time; its end:\n${readConsole().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    let keyscan = "";
    for (let i = 0; i < 12 && !scannedKey(keyscan, "ssh-ed25519"); i++) {
      if (i) await new Promise((r) => setTimeout(r, 5000));
      keyscan = await run("ssh-keyscan", ["-T", "20", "-t", "ed25519", "-p", String(port), "127.0.0.1"]).then(
        (r) => r.stdout,
        () => "",
      );
    }
    const hostKey = await verifiedHostKey(keyscan, readConsole());
    return { user: "debian", port, hostKey, privateKeyFile: key.privateKey, accel, image, console: readConsole, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
