/**
 * ensure-uefi against partition tables made by util-linux's sfdisk, read back by sfdisk and checked by sgdisk: the
 * host-side reader agrees with them on MBR and GPT disks, and a GPT disk without an EFI system partition (what the
 * RHEL family's images are) gets one in a single appliance launch, after its backup GPT moved to the grown end.
 * The MBR road with a real guest and a UEFI boot is in local-job.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { accelerator } from "../../builder/system/accel";
import { run } from "../../builder/system/exec";
import { ESP_GPT_TYPE, readLayout } from "../../builder/pipeline/partition-table";
import { ensureUefi } from "../../builder/pipeline/uefi";

const dir = mkdtempSync(join(tmpdir(), "factory-uefi-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface SfdiskTable {
  partitiontable: {
    label: "dos" | "gpt";
    partitions: { node: string; start: number; size: number; type: string }[];
  };
}

/** A qcow2 disk of `mib` MiB partitioned by sfdisk: its label, then each partition's number and fields. */
async function disk(
  name: string,
  mib: number,
  label: string,
  parts: [number, string][],
): Promise<{ qcow2: string; raw: string }> {
  const raw = join(dir, `${name}.raw`);
  const qcow2 = join(dir, `${name}.qcow2`);
  await run("qemu-img", ["create", "-q", "-f", "raw", raw, `${mib}M`]);
  const script = [`label: ${label}`, ...parts.map(([n, fields]) => `${raw}${n} : ${fields}`)].join("\n") + "\n";
  await run("sfdisk", ["--quiet", raw], { input: script });
  await run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, qcow2]);
  return { qcow2, raw };
}

async function sfdisk(qcow2: string): Promise<SfdiskTable["partitiontable"]> {
  const raw = `${qcow2}.check.raw`;
  await run("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", qcow2, raw]);
  try {
    return (JSON.parse((await run("sfdisk", ["--json", raw])).stdout) as SfdiskTable).partitiontable;
  } finally {
    rmSync(raw, { force: true });
  }
}

const BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649";
const LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const number = (node: string) => Number(/(\d+)$/.exec(node)![1]);

describe("ensure-uefi", () => {
  it.each([
    {
      name: "MBR, Linux and an ESP in slot 3",
      label: "dos",
      parts: [
        [1, "start=2048, size=20480, type=83"],
        [3, "start=40960, size=8192, type=ef"],
      ] as [number, string][],
      esp: 3,
    },
    {
      name: "GPT, BIOS boot, ESP and Linux",
      label: "gpt",
      parts: [
        [1, `start=2048, size=2048, type=${BIOS_BOOT}`],
        [2, `start=4096, size=8192, type=${ESP_GPT_TYPE}`],
        [3, `start=12288, size=40960, type=${LINUX_FS}`],
      ] as [number, string][],
      esp: 2,
    },
  ])("reads the table sfdisk wrote: $name", async ({ label, parts, esp }) => {
    const { qcow2 } = await disk(label, 64, label, parts);
    const layout = await readLayout(qcow2);
    const table = await sfdisk(qcow2);
    expect(layout.table).toBe(table.label === "dos" ? "msdos" : "gpt");
    expect(layout.sectors).toBe(64 * 2048);
    expect(layout.partitions).toEqual(
      table.partitions.map((p) => ({
        num: number(p.node),
        start: p.start * 512,
        end: (p.start + p.size) * 512 - 1,
        esp: number(p.node) === esp,
      })),
    );
  });

  it("refuses a disk without a partition table, naming it", async () => {
    const blank = join(dir, "blank.qcow2");
    await run("qemu-img", ["create", "-q", "-f", "qcow2", blank, "8M"]);
    await expect(readLayout(blank)).rejects.toThrow(
      `${blank}: no partition table (the first sector has no MBR signature 55 AA)`,
    );
  });

  it("gives a GPT disk without one an EFI system partition at the grown end", async () => {
    // The Linux partition fills the disk up to its backup GPT (the last 33 sectors).
    const { qcow2 } = await disk("rhel-like", 64, "gpt", [
      [1, `start=2048, size=2048, type=${BIOS_BOOT}`],
      [2, `start=4096, size=126942, type=${LINUX_FS}`],
    ]);
    const accel = await accelerator();
    expect(await ensureUefi(qcow2, accel)).toEqual({ state: "added (partition 3, gpt)", needsBootloader: true });

    const table = await sfdisk(qcow2);
    // 64 MiB + 256 MiB: the ESP starts after the last partition and ends before the backup GPT, both on a MiB.
    expect(table.partitions.map((p) => [number(p.node), p.start, p.size, p.type])).toEqual([
      [1, 2048, 2048, BIOS_BOOT],
      [2, 4096, 126942, LINUX_FS],
      [3, 131072, 319 * 2048 - 131072, ESP_GPT_TYPE],
    ]);
    const raw = join(dir, "rhel-like.check.raw");
    await run("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", qcow2, raw]);
    // The backup header was moved to the new end (part-expand-gpt): sgdisk finds nothing wrong.
    expect((await run("sgdisk", ["--verify", raw])).stdout).toMatch(/No problems found/);
    const { stdout } = await run("blkid", ["--probe", "--offset", String(131072 * 512), "--output", "export", raw]);
    expect(stdout).toMatch(/^TYPE=vfat$/m);
    expect(stdout).toMatch(/^LABEL=EFI$/m);

    // Once there, it is found on the host: nothing changes.
    expect(await ensureUefi(qcow2, accel)).toEqual({ state: "present (partition 3)", needsBootloader: false });
  });
});
