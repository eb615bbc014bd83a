/**
 * The emulator's rescue system really boots: the host's kernel and the cached initramfs, DHCP, the Instance's key
 * from the metadata API, a host key published as `ssh-host-fingerprints`, and an SSH login (host key pinned) that
 * sees the Instance's volume attached, unmounted and untouched. Nothing of an image boots here.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Machine } from "../../builder/emulator/machine";
import { emulatorNetwork } from "../../builder/emulator/tap-network";
import { rescueSystem } from "../../builder/emulator/rescue-system";
import { run } from "../../builder/system/exec";
import { startMetadataServer } from "../../builder/release/metadata-server";
import { ephemeralKey, sshSession } from "../../builder/release/ssh";

describe("emulator rescue system", () => {
  const work = mkdtempSync(join(tmpdir(), "factory-rescue-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("boots, takes the metadata key, publishes its host key and shows the volume unmounted", async () => {
    const rescue = await rescueSystem();
    // Built once: a second call finds the cached files.
    const startedAgain = Date.now();
    expect(await rescueSystem()).toEqual(rescue);
    expect(Date.now() - startedAgain).toBeLessThan(5000);

    const raw = join(work, "vol.raw");
    const uuid = "0f6b8c5e-3d7a-4e2b-9c1d-5a4e3b2c1d0f";
    await run("truncate", ["-s", "64M", raw]);
    await run("mkfs.ext4", ["-q", "-F", "-U", uuid, raw]);
    const disk = join(work, "vol.qcow2");
    await run("qemu-img", ["convert", "-q", "-O", "qcow2", raw, disk]);
    const before = (await run("sha256sum", [raw])).stdout.split(" ")[0];

    // Its own loopback address, so a concurrent run's forwarded port 22 does not collide.
    const ip = `127.0.77.${2 + Math.floor(Math.random() * 250)}`;
    const key = await ephemeralKey();
    const md = await startMetadataServer(
      { id: "s", ssh_public_keys: [{ key: key.publicKey }] },
      { userData: new Map([["probe", "ok"]]) },
    );
    const m = new Machine({
      dir: work,
      accel: "tcg",
      firmware: "bios",
      memoryMiB: 512,
      commercialType: "DEV1-S",
      disks: [{ id: "00000000-0000-4000-8000-0000000000e1", file: disk }],
      nics: [],
      publicMac: "de:00:00:00:00:e1",
      publicIp: ip,
      metadataPort: md.port,
      metadataProxy: (path) => md.listenProxied(path),
      kernel: rescue,
    });
    try {
      const started = Date.now();
      await m.start();
      await m.forwardPorts([22]);
      const published = await md.waitFor("ssh-host-fingerprints", 240_000).catch((e: Error) => {
        throw new Error(`${e.message}; console:\n${m.console().slice(-3000)}`);
      });
      const ssh = sshSession("root", ip, 22, key.privateKey, published);
      try {
        let out = { code: 255, stdout: "", stderr: "" };
        for (let i = 0; i < 30 && out.code !== 0; i++) {
          out = await ssh.exec(
            `blkid -o value -s UUID /dev/vda; grep -c '^/dev/vda' /proc/mounts || true; findmnt -n -o FSTYPE /`,
          );
          if (out.code !== 0) await new Promise((r) => setTimeout(r, 2000));
        }
        expect(out.code, out.stderr).toBe(0);
        expect(out.stdout.trim().split("\n")).toEqual([uuid, "0", "rootfs"]);
        expect(m.network).toBe(emulatorNetwork());
        if (m.network === "tap") {
          // The API now sees the guest's own source port: user data to root's ports only, as Scaleway serves it.
          const probe = await ssh.exec(
            `u=http://169.254.42.42/user_data/probe; curl -sS --local-port 600-700 -w ' %{http_code}\n' $u; curl -sS -o /dev/null -w '%{http_code}\n' $u; curl -sS -o /dev/null -w '%{http_code}\n' http://169.254.42.42/conf; ip -4 -o addr show eth0`,
          );
          const lines = probe.stdout.trim().split("\n");
          expect(lines.slice(0, 3), probe.stderr).toEqual(["ok 200", "403", "200"]);
          expect(lines[3]).toMatch(/inet 169\.254\.0\.15\/16 /);
        }
        process.stderr.write(
          `rescue system: SSH after ${((Date.now() - started) / 1000).toFixed(1)} s\n${m
            .console()
            .split("\n")
            .filter((l) => l.startsWith("rescue:"))
            .join("\n")}\n`,
        );
      } finally {
        ssh.dispose();
      }
      await m.powerOff();
      await run("qemu-img", ["convert", "-q", "-O", "raw", disk, raw]);
      expect((await run("sha256sum", [raw])).stdout.split(" ")[0]).toBe(before);
    } finally {
      m.kill();
      await md.close();
      rmSync(key.dir, { recursive: true, force: true });
    }
  }, 400_000);
});
