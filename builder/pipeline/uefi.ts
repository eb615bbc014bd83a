/**
 * ensure-uefi: Scaleway boots Instances with UEFI, and some upstream images (CentOS 8 in the blog's words) lack an
 * EFI system partition. Where one is missing: grow the disk, add a FAT EFI system partition at the end, mount it
 * on /boot/efi, and install GRUB for EFI on the removable path (no NVRAM to write in a never-booted image).
 */
import type { Accelerator } from "../system/accel";
import { run } from "../system/exec";
import type { Family } from "../../images/schema";
import { GuestfishSession } from "./guestfish-session";
import { ESP_GPT_TYPE, ESP_MBR_ID, readLayout, SECTOR, type PartitionLayout } from "./partition-table";

/** 256 MiB: what distributions use for a single-OS ESP. */
const ESP_BYTES = 256 * 2 ** 20;
/** The ESP's line in the guest's fstab: the customise run mounts it by this for the bootloader install. */
export const ESP_FSTAB_LINE = "LABEL=EFI /boot/efi vfat umask=0077 0 1";

export interface UefiResult {
  state: string;
  /** Whether the guest still needs an EFI bootloader installed (virt-customize arguments follow). */
  needsBootloader: boolean;
}

/**
 * Where a new ESP goes: after the last partition, starting and ending on 1 MiB boundaries, short of the backup GPT
 * (its 33 sectors at the end). The end is aligned too because sgdisk (behind part-expand-gpt) rounds the last usable
 * sector down to its alignment: `disk - 34` was past it, and parted refused the partition.
 */
export function planEsp(layout: PartitionLayout): { start: number; end: number; num: number } {
  const lastEnd = Math.max(0, ...layout.partitions.map((p) => p.end));
  const align = 2048;
  const start = Math.ceil((lastEnd + 1) / SECTOR / align) * align;
  const end = Math.floor((layout.sectors - (layout.table === "gpt" ? 33 : 0)) / align) * align - 1;
  // parted (behind part-add) takes the lowest free number: the first empty MBR slot, the first empty GPT entry.
  const used = new Set(layout.partitions.map((p) => p.num));
  const num = Array.from({ length: layout.slots }, (_, i) => i + 1).find((n) => !used.has(n));
  if (num === undefined)
    throw new Error(
      layout.table === "msdos"
        ? "ensure-uefi: the MBR already has four partitions; cannot add an EFI system partition"
        : `ensure-uefi: all ${layout.slots} GPT entries are in use; cannot add an EFI system partition`,
    );
  if (end - start + 1 < ESP_BYTES / SECTOR / 2) throw new Error("ensure-uefi: no room for an EFI system partition");
  return { start, end, num };
}

/**
 * Adds an EFI system partition where the image has none: the table is read on the host; only a disk that needs
 * the partition starts an appliance (one), to add and format it. Its fstab line and mount point come with the
 * bootloader install in the customise run (`uefiGuestArgs`), which inspects and mounts the guest anyway.
 */
export async function ensureUefi(disk: string, accel: Accelerator): Promise<UefiResult> {
  const layout = await readLayout(disk);
  const esp = layout.partitions.find((p) => p.esp);
  if (esp) return { state: `present (partition ${esp.num})`, needsBootloader: false };

  await run("qemu-img", ["resize", "-f", "qcow2", disk, `+${ESP_BYTES}`]);
  const { start, end, num } = planEsp({ ...layout, sectors: layout.sectors + ESP_BYTES / SECTOR });
  const gf = await GuestfishSession.start(accel);
  try {
    await gf.do("add-drive", disk, "format:qcow2");
    await gf.do("run");
    if (layout.table === "gpt") await gf.do("part-expand-gpt", "/dev/sda");
    await gf.do("part-add", "/dev/sda", "p", String(start), String(end));
    await (layout.table === "gpt"
      ? gf.do("part-set-gpt-type", "/dev/sda", String(num), ESP_GPT_TYPE)
      : gf.do("part-set-mbr-id", "/dev/sda", String(num), String(ESP_MBR_ID)));
    await gf.do("mkfs", "vfat", `/dev/sda${num}`, "label:EFI");
  } finally {
    await gf.close();
  }
  const added = (await readLayout(disk)).partitions.find((p) => p.esp);
  if (added?.num !== num || added.start !== start * SECTOR)
    throw new Error(
      `ensure-uefi: ${disk}: the new EFI system partition is not where it was planned (partition ${num})`,
    );
  return { state: `added (partition ${num}, ${layout.table})`, needsBootloader: true };
}

/**
 * Commands that give the new ESP its fstab line, mount it, install GRUB for EFI on the removable path and unmount
 * it, run inside the guest by virt-customize. It inspected the guest before the line existed, so the ESP is mounted
 * here, before the packages whose files belong on it (shim and GRUB on RHEL) are installed.
 */
export function uefiGuestArgs(family: Family, result: UefiResult): string[] {
  if (!result.needsBootloader) return [];
  const [packages, install] = bootloader(family);
  return [
    "--mkdir",
    "/boot/efi",
    "--append-line",
    `/etc/fstab:${ESP_FSTAB_LINE}`,
    "--run-command",
    "mount /boot/efi",
    "--install",
    packages,
    "--run-command",
    `${install} && umount /boot/efi`,
  ];
}

function bootloader(family: Family): [packages: string, install: string] {
  switch (family) {
    case "debian":
      return [
        "grub-efi-amd64-bin",
        "grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram && update-grub",
      ];
    case "rhel":
      return [
        "grub2-efi-x64,shim-x64",
        "mkdir -p /boot/efi/EFI/BOOT && cp /boot/efi/EFI/*/shimx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI && " +
          "cp /boot/efi/EFI/*/grubx64.efi /boot/efi/EFI/BOOT/ && grub2-mkconfig -o /boot/efi/EFI/BOOT/grub.cfg",
      ];
    case "arch":
      return [
        "grub,efibootmgr",
        "grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram && grub-mkconfig -o /boot/grub/grub.cfg",
      ];
  }
}
