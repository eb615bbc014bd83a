/**
 * ensure-uefi: Scaleway boots Instances with UEFI, and some upstream images (CentOS 8 in the blog's words) lack an
 * EFI system partition. Where one is missing: grow the disk, add a FAT EFI system partition at the end, mount it
 * on /boot/efi, and install GRUB for EFI on the removable path (no NVRAM to write in a never-booted image).
 */
import { guestfsEnv, type Accelerator } from "../system/accel";
import { run } from "../system/exec";
import type { Family } from "../../images/schema";

const ESP_GPT_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const ESP_MBR_ID = 0xef;
/** 256 MiB: what distributions use for a single-OS ESP. */
const ESP_BYTES = 256 * 2 ** 20;
const SECTOR = 512;

export interface UefiResult {
  state: string;
  /** Whether the guest still needs an EFI bootloader installed (virt-customize arguments follow). */
  needsBootloader: boolean;
}

export interface PartitionLayout {
  table: "gpt" | "msdos";
  partitions: { num: number; start: number; end: number; esp: boolean }[];
  sectors: number;
}

/** Parses the query script's output (see `queryLayout`). */
export function parseLayout(out: string): PartitionLayout {
  const table = /^TABLE (\S+)$/m.exec(out)?.[1];
  const sectors = Number(/^SECTORS (\d+)$/m.exec(out)?.[1]);
  if (table !== "gpt" && table !== "msdos")
    throw new Error(`ensure-uefi: unsupported partition table "${table ?? "none"}"`);
  const partitions: PartitionLayout["partitions"] = [];
  for (const m of out.matchAll(/part_num: (\d+)\s+part_start: (\d+)\s+part_end: (\d+)/g))
    partitions.push({ num: Number(m[1]), start: Number(m[2]), end: Number(m[3]), esp: false });
  // The answer that counts is the one for the table's own kind (sgdisk also maps MBR ids to GPT GUIDs).
  const kind = table === "gpt" ? "GPT" : "MBR";
  for (const m of out.matchAll(new RegExp(`^${kind} (\\d+) (\\S+)$`, "gm"))) {
    const p = partitions.find((x) => x.num === Number(m[1]));
    if (!p) continue;
    p.esp = table === "gpt" ? m[2]!.toUpperCase() === ESP_GPT_TYPE : Number(m[2]) === ESP_MBR_ID;
  }
  return { table, partitions, sectors };
}

/** Where a new ESP goes: after the last partition, 1 MiB aligned, leaving room for the backup GPT. */
export function planEsp(layout: PartitionLayout): { start: number; end: number } {
  const lastEnd = Math.max(0, ...layout.partitions.map((p) => p.end));
  const align = 2048;
  const start = Math.ceil((lastEnd + 1) / SECTOR / align) * align;
  const end = layout.sectors - (layout.table === "gpt" ? 34 : 1);
  if (end - start + 1 < ESP_BYTES / SECTOR / 2) throw new Error("ensure-uefi: no room for an EFI system partition");
  if (layout.table === "msdos" && layout.partitions.length >= 4)
    throw new Error("ensure-uefi: the MBR already has four partitions; cannot add an EFI system partition");
  return { start, end };
}

async function guestfish(disk: string, script: string, accel: Accelerator, readonly: boolean): Promise<string> {
  const args = ["--format=qcow2", ...(readonly ? ["--ro"] : []), "-a", disk];
  const { stdout } = await run("guestfish", args, { env: guestfsEnv(accel), input: `run\n${script}\n` });
  return stdout;
}

/** Joins each echoed tag line with the answer on the next line, when there is one (failed asks print nothing). */
export function joinTags(raw: string): string {
  return raw.replace(/^(TABLE|SECTORS|GPT \d+|MBR \d+)\n(?!GPT |MBR |TABLE|SECTORS|\[)(\S+)$/gm, "$1 $2");
}

async function queryLayout(disk: string, accel: Accelerator): Promise<PartitionLayout> {
  // guestfish has no variables: tag each answer with an echo and ask both table kinds ("-" ignores errors).
  const lines = [
    "echo TABLE",
    "part-get-parttype /dev/sda",
    "echo SECTORS",
    "blockdev-getsz /dev/sda",
    "part-list /dev/sda",
    ...Array.from({ length: 8 }, (_, i) => i + 1).flatMap((n) => [
      `echo GPT ${n}`,
      `-part-get-gpt-type /dev/sda ${n}`,
      `echo MBR ${n}`,
      `-part-get-mbr-id /dev/sda ${n}`,
    ]),
  ];
  const raw = await guestfish(disk, lines.join("\n"), accel, true);
  return parseLayout(joinTags(raw));
}

export async function ensureUefi(disk: string, accel: Accelerator): Promise<UefiResult> {
  const layout = await queryLayout(disk, accel);
  const esp = layout.partitions.find((p) => p.esp);
  if (esp) return { state: `present (partition ${esp.num})`, needsBootloader: false };

  await run("qemu-img", ["resize", "-f", "qcow2", disk, `+${ESP_BYTES}`]);
  const grown = { ...layout, sectors: layout.sectors + ESP_BYTES / SECTOR };
  const { start, end } = planEsp(grown);
  const num = Math.max(0, ...layout.partitions.map((p) => p.num)) + 1;
  const dev = `/dev/sda${num}`;
  await guestfish(
    disk,
    [
      ...(layout.table === "gpt" ? ["part-expand-gpt /dev/sda"] : []),
      `part-add /dev/sda p ${start} ${end}`,
      layout.table === "gpt"
        ? `part-set-gpt-type /dev/sda ${num} ${ESP_GPT_TYPE}`
        : `part-set-mbr-id /dev/sda ${num} ${ESP_MBR_ID}`,
      `mkfs vfat ${dev} label:EFI`,
    ].join("\n"),
    accel,
    false,
  );
  // Give the ESP its fstab line so the customise run mounts it on /boot/efi for the bootloader install.
  await run(
    "virt-customize",
    [
      "--format",
      "qcow2",
      "-a",
      disk,
      "--no-network",
      "--mkdir",
      "/boot/efi",
      "--append-line",
      "/etc/fstab:LABEL=EFI /boot/efi vfat umask=0077 0 1",
    ],
    { env: guestfsEnv(accel) },
  );
  return { state: `added (partition ${num}, ${layout.table})`, needsBootloader: true };
}

/** Commands that install GRUB for EFI on the removable path, run inside the guest by virt-customize. */
export function uefiGuestArgs(family: Family, result: UefiResult): string[] {
  if (!result.needsBootloader) return [];
  switch (family) {
    case "debian":
      return [
        "--install",
        "grub-efi-amd64-bin",
        "--run-command",
        "grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram && update-grub",
      ];
    case "rhel":
      return [
        "--install",
        "grub2-efi-x64,shim-x64",
        "--run-command",
        "mkdir -p /boot/efi/EFI/BOOT && cp /boot/efi/EFI/*/shimx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI && " +
          "cp /boot/efi/EFI/*/grubx64.efi /boot/efi/EFI/BOOT/ && grub2-mkconfig -o /boot/efi/EFI/BOOT/grub.cfg",
      ];
    case "arch":
      return [
        "--install",
        "grub,efibootmgr",
        "--run-command",
        "grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram && grub-mkconfig -o /boot/grub/grub.cfg",
      ];
  }
}
