/**
 * A disk's partition table read from its first sectors on the host (`qemu-img dd`), without an appliance: deciding
 * whether an image has an EFI system partition took a libguestfs launch (about 30 s under TCG) for a few hundred
 * bytes. MBR primary entries and GPT (UEFI specification, "GUID Partition Table Disk Layout"), 512-byte sectors.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { run } from "../system/exec";

export const SECTOR = 512;
export const ESP_GPT_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
export const ESP_MBR_ID = 0xef;
const MBR_PROTECTIVE = 0xee;

export interface Partition {
  /** What Linux and parted number it: the MBR slot (1–4), the GPT entry's index + 1. */
  num: number;
  /** First and last byte. */
  start: number;
  end: number;
  esp: boolean;
}

export interface PartitionLayout {
  table: "gpt" | "msdos";
  partitions: Partition[];
  /** The disk's size in sectors. */
  sectors: number;
  /** Entry slots the table has (4 for an MBR). */
  slots: number;
}

/** Where a GPT keeps its entry array, from its header (LBA 1); validated by the header's CRC32. */
export interface GptHeader {
  entriesLba: number;
  count: number;
  entrySize: number;
  entriesCrc: number;
}

export class PartitionTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PartitionTableError";
  }
}

/** The MBR's four primary entries (an extended partition is one of them and spans its logical ones). */
export function parseMbr(sector0: Buffer): {
  protective: boolean;
  entries: { type: number; lba: number; count: number }[];
} {
  if (sector0.length < SECTOR || sector0.readUInt16LE(510) !== 0xaa55)
    throw new PartitionTableError("no partition table (the first sector has no MBR signature 55 AA)");
  const entries = [0, 1, 2, 3].map((i) => {
    const at = 446 + 16 * i;
    return { type: sector0[at + 4]!, lba: sector0.readUInt32LE(at + 8), count: sector0.readUInt32LE(at + 12) };
  });
  return { protective: entries.some((e) => e.type === MBR_PROTECTIVE), entries };
}

export function parseGptHeader(sector1: Buffer): GptHeader {
  if (sector1.length < 92 || sector1.toString("latin1", 0, 8) !== "EFI PART")
    throw new PartitionTableError('protective MBR but no GPT header ("EFI PART") in sector 1');
  const size = sector1.readUInt32LE(12);
  if (size < 92 || size > SECTOR) throw new PartitionTableError(`GPT header size ${size} is out of range`);
  const header = Buffer.from(sector1.subarray(0, size));
  const recorded = header.readUInt32LE(16);
  header.writeUInt32LE(0, 16);
  if (crc32(header) !== recorded)
    throw new PartitionTableError("GPT header CRC32 does not match: the header is damaged");
  const entrySize = sector1.readUInt32LE(84);
  if (entrySize < 128 || entrySize % 8 !== 0) throw new PartitionTableError(`GPT entry size ${entrySize} is invalid`);
  return {
    entriesLba: Number(sector1.readBigUInt64LE(72)),
    count: sector1.readUInt32LE(80),
    entrySize,
    entriesCrc: sector1.readUInt32LE(88),
  };
}

/** A GUID as text: its first three fields are stored little-endian. */
export function guidText(b: Buffer): string {
  const hex = (x: Buffer) => x.toString("hex").toUpperCase();
  const le = (x: Buffer) => hex(Buffer.from(x).reverse());
  return [
    le(b.subarray(0, 4)),
    le(b.subarray(4, 6)),
    le(b.subarray(6, 8)),
    hex(b.subarray(8, 10)),
    hex(b.subarray(10, 16)),
  ].join("-");
}

export function parseGptEntries(entries: Buffer, header: GptHeader): Partition[] {
  if (crc32(entries) !== header.entriesCrc)
    throw new PartitionTableError("GPT entry array CRC32 does not match: the table is damaged");
  const out: Partition[] = [];
  for (let i = 0; i < header.count; i++) {
    const e = entries.subarray(i * header.entrySize, (i + 1) * header.entrySize);
    const type = guidText(e.subarray(0, 16));
    if (/^[0-]+$/.test(type)) continue;
    const first = Number(e.readBigUInt64LE(32));
    const last = Number(e.readBigUInt64LE(40));
    out.push({ num: i + 1, start: first * SECTOR, end: (last + 1) * SECTOR - 1, esp: type === ESP_GPT_TYPE });
  }
  return out;
}

export function mbrLayout(sector0: Buffer, sectors: number): PartitionLayout {
  const partitions = parseMbr(sector0)
    .entries.map((e, i) => ({
      num: i + 1,
      start: e.lba * SECTOR,
      end: (e.lba + e.count) * SECTOR - 1,
      esp: e.type === ESP_MBR_ID,
      used: e.type !== 0 && e.count > 0,
    }))
    .filter((p) => p.used)
    .map(({ used: _u, ...p }) => p);
  return { table: "msdos", partitions, sectors, slots: 4 };
}

/** The disk's first `count` sectors. */
async function readHead(disk: string, format: string, count: number): Promise<Buffer> {
  // `qemu-img dd` writes to a file it creates, not to a pipe. It is given no `skip`: qemu-img 7.2 counts `count`
  // from the start of the input when skipping, later versions may not.
  const dir = mkdtempSync(join(tmpdir(), "factory-ptable-"));
  try {
    const out = join(dir, "head.bin");
    await run("qemu-img", [
      "dd",
      "-f",
      format,
      "-O",
      "raw",
      `bs=${SECTOR}`,
      `count=${count}`,
      `if=${disk}`,
      `of=${out}`,
    ]);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Where a table's entries may reasonably end: the first MiB (the standard array ends at LBA 33). */
const MAX_HEAD_SECTORS = 2048;

/** The partition table of a disk image, read on the host. Errors name the disk. */
export async function readLayout(disk: string, format = "qcow2"): Promise<PartitionLayout> {
  const { stdout } = await run("qemu-img", ["info", "-f", format, "--output=json", disk]);
  const bytes = Number((JSON.parse(stdout) as { "virtual-size": number })["virtual-size"]);
  const sectors = Math.floor(bytes / SECTOR);
  try {
    let head = await readHead(disk, format, 34);
    const mbr = parseMbr(head.subarray(0, SECTOR));
    if (!mbr.protective) return mbrLayout(head, sectors);
    const header = parseGptHeader(head.subarray(SECTOR, 2 * SECTOR));
    const bytes = header.count * header.entrySize;
    const end = header.entriesLba + Math.ceil(bytes / SECTOR);
    if (header.entriesLba < 2 || end > MAX_HEAD_SECTORS)
      throw new PartitionTableError(`GPT entries at LBA ${header.entriesLba}..${end}: outside the first MiB`);
    if (end > 34) head = await readHead(disk, format, end);
    const entries = head.subarray(header.entriesLba * SECTOR, header.entriesLba * SECTOR + bytes);
    return { table: "gpt", partitions: parseGptEntries(entries, header), sectors, slots: header.count };
  } catch (err) {
    if (err instanceof PartitionTableError) throw new PartitionTableError(`${disk}: ${err.message}`);
    throw err;
  }
}
