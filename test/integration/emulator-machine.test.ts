/**
 * An emulated Instance's power-off follows the guest: a machine whose firmware finds nothing to boot (SeaBIOS on a
 * blank disk: no OS ever enabled the ACPI power button) is stopped at once, with no grace wait. No operating system
 * boots here; a guest that listens is powered off gracefully in the battery's stop scenarios.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Machine } from "../../builder/emulator/machine";
import { run } from "../../builder/system/exec";

describe("emulated machine power-off", () => {
  const work = mkdtempSync(join(tmpdir(), "factory-machine-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("pulls the plug at once on a guest that does not listen to the ACPI power button", async () => {
    const disk = join(work, "blank.qcow2");
    await run("qemu-img", ["create", "-q", "-f", "qcow2", disk, "1G"]);
    const m = new Machine({
      dir: work,
      accel: "tcg",
      firmware: "bios",
      memoryMiB: 256,
      commercialType: "DEV1-S",
      disks: [{ id: "00000000-0000-4000-8000-0000000000d1", file: disk }],
      nics: [],
      publicMac: "de:00:00:00:00:01",
      publicIp: "127.0.0.1",
      metadataPort: 9,
    });
    await m.start();
    expect(m.running).toBe(true);
    // Let the firmware settle into its "no bootable device" wait.
    await new Promise((r) => setTimeout(r, 5000));
    expect(await m.listensToPowerButton()).toBe(false);
    const result = await m.powerOff({ capMs: 60_000 });
    expect(m.running).toBe(false);
    expect(result.graceful).toBe(false);
    // Reading two I/O ports and a kill: no quiet period, no cap.
    expect(result.ms).toBeLessThan(5000);
  });

  it("sees a guest that enabled ACPI mode and the power button event as listening, as QEMU does", async () => {
    const disk = join(work, "blank2.qcow2");
    await run("qemu-img", ["create", "-q", "-f", "qcow2", disk, "1G"]);
    const m = new Machine({
      dir: work,
      accel: "tcg",
      firmware: "bios",
      memoryMiB: 256,
      commercialType: "DEV1-S",
      disks: [{ id: "00000000-0000-4000-8000-0000000000d2", file: disk }],
      nics: [],
      publicMac: "de:00:00:00:00:02",
      publicIp: "127.0.0.1",
      metadataPort: 9,
    });
    await m.start();
    try {
      await new Promise((r) => setTimeout(r, 3000));
      const hmp = (line: string) => m.command("human-monitor-command", { "command-line": line }) as Promise<string>;
      // What an ACPI OS does at boot, written by hand: PWRBTN_EN in PM1_EN (PM1 block at 0x600 on this machine type),
      // then ACPI_ENABLE through the SMI command port, which sets SCI_EN.
      await hmp("o 0x600 0x01000000");
      expect(await m.listensToPowerButton()).toBe(false);
      await hmp("o 0xb2 0xf1");
      expect(await m.listensToPowerButton()).toBe(true);
      // The press registers only now: PWRBTN_STS (bit 8 of PM1_STS) is set for the guest's handler.
      await m.command("system_powerdown");
      expect(parseInt(/= 0x([0-9a-f]+)/.exec(await hmp("i 0x600"))![1]!, 16) & 0x100).toBe(0x100);
    } finally {
      m.kill();
    }
  });
});
