/**
 * The README's main command, `image-factory local`, run as the built CLI: the local stack's images built and
 * published through the mirror into the embedded S3 server; the published artifact booted in QEMU with the
 * in-guest checks (and a copy without sshd, which must fail exactly the SSH check); then a second run that finds
 * everything in place.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { accelerator, guestfsEnv } from "../../builder/accel";
import { run } from "../../builder/exec";
import { GUEST_CHECKS } from "../../builder/testing/guest-checks";
import { ensureUefi, uefiGuestArgs } from "../../builder/uefi";
import { testLocal } from "../../builder/testing/local-boot";
import { localStack } from "../../builder/local/local-job";

const ROOT = join(__dirname, "..", "..");
const state = mkdtempSync(join(tmpdir(), "factory-local-"));
const cli = (...args: string[]) =>
  run(process.execPath, [join(ROOT, "dist", "builder", "cli.js"), ...args], { env: { ...process.env, FACTORY_LOCAL_STATE: state } });

afterAll(() => rmSync(state, { recursive: true, force: true }));

describe("image-factory local", () => {
  const { settings, plans } = localStack(ROOT);

  it("publishes every image the local stack plans into the embedded S3 bucket", async () => {
    expect(existsSync(join(ROOT, "dist", "builder", "cli.js"))).toBe(true);
    const { stdout } = await cli("local", "--json");
    const results = JSON.parse(stdout) as { image: string; key: string; uploadedBytes: number; tests: string }[];
    expect(results.map((r) => r.image)).toEqual(plans.map((p) => p.name));
    for (const r of results) expect(r.uploadedBytes).toBeGreaterThan(0);
    expect(results.map((r) => r.tests)).toEqual(plans.map(() => "not run"));

    // versitygw's posix backend keeps objects as files under <root>/<bucket>/<key>.
    for (const p of plans) expect(existsSync(join(state, "s3", settings.bucket, p.artifactKey))).toBe(true);
    expect(readdirSync(join(state, "s3", settings.bucket, "images", "debian-12", "x86_64")).sort()).toEqual(
      [`${plans[0]!.contentHash}.qcow2`, `${plans[0]!.contentHash}.qcow2.manifest.json`, `${plans[0]!.contentHash}.qcow2.refs`].sort(),
    );
  });

  it("boots the published artifact in QEMU and passes every in-guest check", async () => {
    const artifact = join(state, "s3", settings.bucket, plans[0]!.artifactKey);
    const { results, console: consoleText } = await testLocal({ image: artifact, releaseId: "debian-12", user: "debian" });
    const failed = results.filter((r) => r.status !== "pass");
    expect(failed, `${JSON.stringify(failed, null, 2)}\n--- console tail ---\n${consoleText.slice(-3000)}`).toEqual([]);
    expect(results.map((r) => r.name)).toEqual([
      "boot: SSH host fingerprints published at first boot",
      "ssh: host key verified, login with an ephemeral key",
      ...GUEST_CHECKS.map((c) => c.name),
    ]);
  });

  it("fails exactly the SSH check, with its reason, when the image has no sshd", async () => {
    const broken = join(state, "no-sshd.qcow2");
    copyFileSync(join(state, "s3", settings.bucket, plans[0]!.artifactKey), broken);
    await run("virt-customize", ["--format", "qcow2", "-a", broken, "--no-network", "--delete", "/usr/sbin/sshd"], {
      env: guestfsEnv(await accelerator()),
    });
    const { results } = await testLocal({ image: broken, releaseId: "debian-12", user: "debian" });
    const byStatus = (s: string) => results.filter((r) => r.status === s).map((r) => r.name);
    expect(byStatus("pass")).toEqual(["boot: SSH host fingerprints published at first boot"]);
    expect(byStatus("fail")).toEqual(["ssh: host key verified, login with an ephemeral key"]);
    expect(results.find((r) => r.status === "fail")!.reason).toMatch(/^sshd did not answer on port 22/);
    expect(byStatus("skip")).toEqual(GUEST_CHECKS.map((c) => c.name));
  });

  it("gives a BIOS-only image an EFI system partition and GRUB on the removable path, and it boots with UEFI", async () => {
    const accel = await accelerator();
    const disk = join(state, "uefi.qcow2");
    copyFileSync(join(state, "s3", settings.bucket, plans[0]!.artifactKey), disk);
    const uefi = await ensureUefi(disk, accel);
    expect(uefi).toEqual({ state: "added (partition 2, msdos)", needsBootloader: true });
    await run("virt-customize", ["--format", "qcow2", "-a", disk, ...uefiGuestArgs("debian", uefi)], { env: guestfsEnv(accel) });
    const { stdout } = await run("guestfish", ["--ro", "-a", disk, "-i"], {
      input: "part-get-mbr-id /dev/sda 2\nis-file /boot/efi/EFI/BOOT/BOOTX64.EFI\ngrep EFI /etc/fstab\n",
      env: guestfsEnv(accel),
    });
    expect(stdout.trim().split("\n")).toEqual(["0xef", "true", "LABEL=EFI /boot/efi vfat umask=0077 0 1"]);
    // Running it again finds the partition and changes nothing.
    expect((await ensureUefi(disk, accel)).state).toBe("present (partition 2)");
    const { results, console: consoleText } = await testLocal({ image: disk, releaseId: "debian-12", user: "debian", firmware: "uefi" });
    const failed = results.filter((r) => r.status !== "pass");
    expect(failed, `${JSON.stringify(failed, null, 2)}\n${consoleText.slice(-2000)}`).toEqual([]);
  });

  it("does nothing the second time: no build, no upload", async () => {
    const { stdout } = await cli("local", "--json");
    const results = JSON.parse(stdout) as { built: boolean; uploadedBytes: number; tests: string }[];
    expect(results.every((r) => !r.built && r.uploadedBytes === 0 && r.tests === "not run")).toBe(true);
  });
});
