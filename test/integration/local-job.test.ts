/**
 * The README's main command, `image-factory local`, run as the built CLI: the local stack's images (Debian and the
 * two InstantApps layered on it) built and published through the mirror into the embedded S3 server; the
 * apps booted in QEMU with their in-guest checks, twice each, with secrets of their own each time (a debian-12 copy
 * without sshd must fail exactly the SSH check); debian-12 released through the emulated Scaleway API, where its
 * one boot serves every in-guest check and the twelve-scenario battery; then a second run that finds everything in
 * place. Each boot costs minutes under TCG: a boot that proves nothing new does not belong here.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accelerator, guestfsEnv } from "../../builder/system/accel";
import { run } from "../../builder/system/exec";
import { BUILD_GUARDS, customiseImage } from "../../builder/pipeline/customise";
import { checksFor, GUEST_CHECKS, type CheckResult } from "../../builder/release/guest-checks";
import { RUN_ORDER } from "../../builder/release/battery";
import { ESP_FSTAB_LINE, ensureUefi, uefiGuestArgs } from "../../builder/pipeline/uefi";
import { testLocal } from "../../builder/release/local-boot";
import { localStack } from "../../builder/local/local-job";
import type { PlannedImage } from "../../builder/core/plan";

const ROOT = join(__dirname, "..", "..");
/** The fixture upstream's root filesystem (test/fixtures/build-debian-image.sh: one partition, no separate /boot). */
const FIXTURE_ROOT = "/dev/sda1";
const state = mkdtempSync(join(tmpdir(), "factory-local-"));
const cli = (...args: string[]) =>
  run(process.execPath, [join(ROOT, "dist", "builder", "cli.js"), ...args], {
    env: { ...process.env, FACTORY_LOCAL_STATE: state },
  });

afterAll(() => rmSync(state, { recursive: true, force: true }));

let settings: Awaited<ReturnType<typeof localStack>>["settings"];
let plans: PlannedImage[];
const artifactOf = (id: string) =>
  join(state, "s3", settings.bucket, plans.find((p) => p.release.id === id)!.artifactKey);

beforeAll(async () => {
  ({ settings, plans } = await localStack(ROOT));
});

describe("image-factory local", () => {
  it("publishes every image the local stack plans into the embedded S3 bucket", async () => {
    expect(existsSync(join(ROOT, "dist", "builder", "cli.js"))).toBe(true);
    const { stdout } = await cli("local", "--no-test", "--json");
    const results = JSON.parse(stdout) as { image: string; key: string; uploadedBytes: number; tests: string }[];
    expect(results.map((r) => r.image)).toEqual(plans.map((p) => p.name));
    for (const r of results) expect(r.uploadedBytes).toBeGreaterThan(0);
    expect(results.map((r) => r.tests)).toEqual(plans.map(() => "not run"));

    // versitygw's posix backend keeps objects as files under <root>/<bucket>/<key>.
    for (const p of plans) expect(existsSync(join(state, "s3", settings.bucket, p.artifactKey))).toBe(true);
    for (const p of plans)
      expect(readdirSync(join(state, "s3", settings.bucket, "images", p.release.id, "x86_64")).sort()).toEqual(
        // The local stack signs with its test release key: SBOM, release notes and signed provenance beside it.
        ["", ".manifest.json", ".cdx.json", ".notes.md", ".provenance.dsse.json", ".refs"]
          .map((suffix) => `${p.contentHash}.qcow2${suffix}`)
          .sort(),
      );
  });

  describe.each([
    {
      id: "app-wordpress",
      // Made at first boot; none may exist in the image.
      firstBoot: ["/var/www/wordpress/wp-config.php", "/root/wordpress-credentials.txt"],
      // Of those, what must differ between two boots of the same image.
      secrets: ["/var/www/wordpress/wp-config.php", "/root/wordpress-credentials.txt"],
      // What the build put in place for first boot.
      built: [
        "/var/www/wordpress/wp-settings.php",
        "/etc/systemd/system/multi-user.target.wants/scw-wordpress-firstboot.service",
        "/etc/apache2/sites-enabled/wordpress.conf",
        "/var/lib/mysql/wordpress",
      ],
    },
    {
      id: "app-openvpn",
      firstBoot: [
        "/etc/openvpn/server/server.conf",
        "/etc/openvpn/server/server.key",
        "/etc/openvpn/server/tls-crypt.key",
        "/etc/openvpn/easy-rsa",
        "/root/client1.ovpn",
      ],
      // server.conf is written at first boot but holds no key: the same on every boot.
      secrets: [
        "/etc/openvpn/easy-rsa/pki/private/ca.key",
        "/etc/openvpn/server/server.key",
        "/etc/openvpn/server/tls-crypt.key",
        "/root/client1.ovpn",
      ],
      built: [
        "/usr/share/easy-rsa/easyrsa",
        "/etc/systemd/system/multi-user.target.wants/scw-openvpn-firstboot.service",
        "/etc/sysctl.d/60-scw-openvpn.conf",
      ],
    },
  ])("InstantApp $id", ({ id, firstBoot, secrets, built }) => {
    const digests: Record<string, string>[] = [];

    it("is built on the base with its first-boot units, and holds no secret", async () => {
      // Layered on the base's published artifact, not customised from the upstream again.
      const manifest = JSON.parse(readFileSync(`${artifactOf(id)}.manifest.json`, "utf8")) as {
        layeredOn?: { release: string; contentHash: string };
      };
      const base = plans.find((p) => p.release.id === "debian-12")!;
      expect(manifest.layeredOn).toMatchObject({ release: "debian-12", contentHash: base.contentHash });
      const guards = [...BUILD_GUARDS];
      const paths = [...firstBoot, ...built, ...guards];
      // The fixture's one filesystem, mounted by name: an OS inspection would add half a minute under TCG.
      const { stdout } = await run("guestfish", ["--ro", "--format=qcow2", "-a", artifactOf(id), "-m", FIXTURE_ROOT], {
        input: paths.map((p) => `exists ${p}`).join("\n") + "\n",
        env: guestfsEnv(await accelerator()),
      });
      const exists = Object.fromEntries(paths.map((p, i) => [p, stdout.trim().split("\n")[i]]));
      for (const p of firstBoot) expect(exists[p], `${p} must not be in the image`).toBe("false");
      for (const p of built) expect(exists[p], `${p} must be in the image`).toBe("true");
      for (const p of guards) expect(exists[p], `the build's ${p} must be lifted`).toBe("false");
    });

    it.each([1, 2])("boot %i: every OS and app check passes", async () => {
      const { results, console: consoleText } = await testLocal({
        image: artifactOf(id),
        releaseId: id,
        user: "root",
        // Fingerprints of what first boot made, never the secrets themselves.
        inspect: async (ssh) => {
          const r = await ssh.exec(`sha256sum ${secrets.join(" ")}`);
          expect(r.code, r.stderr).toBe(0);
          digests.push(
            Object.fromEntries(
              r.stdout
                .trim()
                .split("\n")
                .map((l) => l.split(/\s+/).reverse() as [string, string]),
            ),
          );
        },
      });
      const failed = results.filter((r) => r.status !== "pass");
      expect(failed, `${JSON.stringify(failed, null, 2)}\n--- console tail ---\n${consoleText.slice(-3000)}`).toEqual(
        [],
      );
      expect(results.map((r) => r.name)).toEqual(expect.arrayContaining(checksFor(id).map((c) => c.name)));
    });

    it("makes different secrets on each boot of the same image", () => {
      expect(digests).toHaveLength(2);
      for (const path of Object.keys(digests[0]!)) expect(digests[1]![path], path).not.toBe(digests[0]![path]);
    });
  });

  it("fails exactly the SSH check, with its reason, when the image has no sshd", async () => {
    const broken = join(state, "no-sshd.qcow2");
    copyFileSync(artifactOf("debian-12"), broken);
    await run("guestfish", ["--format=qcow2", "-a", broken, "-m", FIXTURE_ROOT, "rm", "/usr/sbin/sshd"], {
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
    copyFileSync(artifactOf("debian-12"), disk);
    const uefi = await ensureUefi(disk, accel);
    expect(uefi).toEqual({ state: "added (partition 2, msdos)", needsBootloader: true });
    // The build's customise run for a recipe of nothing but ensure-uefi: its guards, the bootloader's packages (which
    // need the network no recipe step asked for), provenance and hygiene.
    await customiseImage(
      disk,
      {
        family: "debian",
        upstreamArch: "amd64",
        steps: [],
        ecosystem: { repository: "http://127.0.0.1:9/not-used-without-its-step", version: "0" },
        provenance: { IMAGE_ID: "debian-12", IMAGE_TITLE: "ensure-uefi test of the debian-12 artifact" },
        extraArgs: uefiGuestArgs("debian", uefi),
      },
      accel,
    );
    // Running it again finds the partition (by its MBR id, read on the host) and changes nothing.
    expect(await ensureUefi(disk, accel)).toEqual({ state: "present (partition 2)", needsBootloader: false });
    let booted: string[] = [];
    const { results, console: consoleText } = await testLocal({
      image: disk,
      releaseId: "debian-12",
      user: "debian",
      firmware: "uefi",
      // Booted by the firmware's UEFI (not BIOS), the ESP mounted from its fstab line, GRUB on the removable path
      // (on an ESP only root may read: umask=0077).
      inspect: async (ssh) => {
        const r = await ssh.exec(
          "test -d /sys/firmware/efi && echo uefi; findmnt -no FSTYPE /boot/efi; " +
            "sudo -n test -f /boot/efi/EFI/BOOT/BOOTX64.EFI && echo removable; grep EFI /etc/fstab",
        );
        booted = r.stdout.trim().split("\n");
      },
    });
    const failed = results.filter((r) => r.status !== "pass");
    expect(failed, `${JSON.stringify(failed, null, 2)}\n${consoleText.slice(-2000)}`).toEqual([]);
    expect(booted).toEqual(["uefi", "vfat", "removable", ESP_FSTAB_LINE]);
  });

  it("releases debian-12 through the emulated Scaleway API: every in-guest check and the twelve scenarios pass, nothing is left behind", async () => {
    const { stdout } = await cli("local", "--images", "debian-12", "--json");
    const [result] = JSON.parse(stdout) as { image: string; built: boolean; tests: string }[];
    expect(result).toMatchObject({ image: "debian-12-x86_64", built: false, tests: "passed" });
    const debian = plans.find((p) => p.release.id === "debian-12")!;
    const report = JSON.parse(
      readFileSync(join(state, "tested", `${debian.name}-${debian.contentHash}.json`), "utf8"),
    ) as { results: CheckResult[] };
    const failed = report.results.filter((r) => r.status !== "pass");
    expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
    expect(report.results.map((r) => r.name)).toEqual([
      "boot: key accepted, host key verified",
      ...GUEST_CHECKS.map((c) => c.name),
      ...RUN_ORDER,
    ]);
  });

  it("does nothing the second time: no build, no upload, and a content hash that passed is not tested again", async () => {
    const { stdout } = await cli("local", "--no-test", "--json");
    const results = JSON.parse(stdout) as { built: boolean; uploadedBytes: number; tests: string }[];
    expect(results).toHaveLength(plans.length);
    expect(results.every((r) => !r.built && r.uploadedBytes === 0 && r.tests === "not run")).toBe(true);
    const again = JSON.parse((await cli("local", "--images", "debian-12", "--json")).stdout) as { tests: string }[];
    expect(again.map((r) => r.tests)).toEqual(["passed earlier"]);
  });
});
