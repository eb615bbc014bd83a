import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  ESP_GPT_TYPE,
  guidText,
  mbrLayout,
  parseGptEntries,
  parseGptHeader,
  type PartitionLayout,
} from "../../builder/pipeline/partition-table";
import { ESP_FSTAB_LINE, planEsp, uefiGuestArgs } from "../../builder/pipeline/uefi";

const LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649";

/** An MBR sector with these primary entries (slot, type, first LBA, sectors). */
function mbr(entries: [slot: number, type: number, lba: number, count: number][]): Buffer {
  const b = Buffer.alloc(512);
  for (const [slot, type, lba, count] of entries) {
    const at = 446 + 16 * (slot - 1);
    b[at + 4] = type;
    b.writeUInt32LE(lba, at + 8);
    b.writeUInt32LE(count, at + 12);
  }
  b.writeUInt16LE(0xaa55, 510);
  return b;
}

/** A GUID's on-disk bytes: the first three fields little-endian (the inverse of guidText, written out here). */
function guidBytes(text: string): Buffer {
  const [a, b, c, d, e] = text.split("-") as [string, string, string, string, string];
  const le = (h: string) => Buffer.from(h, "hex").reverse();
  return Buffer.concat([le(a), le(b), le(c), Buffer.from(d + e, "hex")]);
}

/** A GPT header and entry array (128 entries of 128 bytes) with these entries (index, type, first, last LBA). */
function gpt(entries: [index: number, type: string, first: number, last: number][]) {
  const array = Buffer.alloc(128 * 128);
  for (const [i, type, first, last] of entries) {
    guidBytes(type).copy(array, i * 128);
    array.writeBigUInt64LE(BigInt(first), i * 128 + 32);
    array.writeBigUInt64LE(BigInt(last), i * 128 + 40);
  }
  const header = Buffer.alloc(512);
  header.write("EFI PART", 0, "latin1");
  header.writeUInt32LE(0x00010000, 8);
  header.writeUInt32LE(92, 12);
  header.writeBigUInt64LE(2n, 72);
  header.writeUInt32LE(128, 80);
  header.writeUInt32LE(128, 84);
  header.writeUInt32LE(crc32(array), 88);
  header.writeUInt32LE(crc32(header.subarray(0, 92)), 16);
  return { header, array };
}

describe("partition table bytes", () => {
  it("reads GUIDs with their first three fields little-endian (the ESP type as the UEFI specification stores it)", () => {
    expect(guidText(Buffer.from("28732ac11ff8d211ba4b00a0c93ec93b", "hex"))).toBe(ESP_GPT_TYPE);
    expect(guidBytes(ESP_GPT_TYPE).toString("hex")).toBe("28732ac11ff8d211ba4b00a0c93ec93b");
  });

  it.each([
    {
      name: "one Linux partition",
      entries: [[1, 0x83, 2048, 6289408]] as [number, number, number, number][],
      want: [{ num: 1, start: 1048576, end: 3221225471, esp: false }],
    },
    {
      name: "Linux and an ESP in slot 2",
      entries: [
        [1, 0x83, 2048, 6289408],
        [2, 0xef, 6291456, 524288],
      ] as [number, number, number, number][],
      want: [
        { num: 1, start: 1048576, end: 3221225471, esp: false },
        { num: 2, start: 3221225472, end: 3489660927, esp: true },
      ],
    },
    {
      name: "slots 1 and 3 (an empty slot between keeps its number)",
      entries: [
        [1, 0x83, 2048, 1024],
        [3, 0x82, 4096, 1024],
      ] as [number, number, number, number][],
      want: [
        { num: 1, start: 1048576, end: 1572863, esp: false },
        { num: 3, start: 2097152, end: 2621439, esp: false },
      ],
    },
  ])("MBR: $name", ({ entries, want }) => {
    expect(mbrLayout(mbr(entries), 6815744).partitions).toEqual(want);
  });

  it("refuses a first sector without the MBR signature, naming it", () => {
    expect(() => mbrLayout(Buffer.alloc(512), 100)).toThrow(/no MBR signature 55 AA/);
  });

  it("reads a GPT's entries by number, finding the ESP by its type", () => {
    const { header, array } = gpt([
      [0, BIOS_BOOT, 2048, 4095],
      [1, ESP_GPT_TYPE, 4096, 413695],
      [2, LINUX_FS, 413696, 20969471],
    ]);
    expect(parseGptEntries(array, parseGptHeader(header))).toEqual([
      { num: 1, start: 1048576, end: 2097151, esp: false },
      { num: 2, start: 2097152, end: 211812351, esp: true },
      { num: 3, start: 211812352, end: 10736369663, esp: false },
    ]);
  });

  it.each([
    ["a damaged header", (h: Buffer) => h.writeUInt32LE(127, 80), /GPT header CRC32 does not match/],
    ["no GPT signature", (h: Buffer) => h.write("NOT PART", 0, "latin1"), /no GPT header/],
  ])("refuses %s", (_name, damage, message) => {
    const { header } = gpt([[0, LINUX_FS, 2048, 4095]]);
    damage(header);
    expect(() => parseGptHeader(header)).toThrow(message);
  });

  it("refuses an entry array that does not match the header's CRC", () => {
    const { header, array } = gpt([[0, LINUX_FS, 2048, 4095]]);
    array.writeUInt8(array[40]! ^ 1, 40);
    expect(() => parseGptEntries(array, parseGptHeader(header))).toThrow(/entry array CRC32 does not match/);
  });
});

describe("planEsp", () => {
  const layout = (table: "msdos" | "gpt", nums: number[], sectors = 7340032): PartitionLayout => ({
    table,
    sectors,
    slots: table === "msdos" ? 4 : 128,
    partitions: nums.map((num, i) => ({ num, start: (i + 1) * 2 ** 20, end: (i + 2) * 2 ** 20 - 1, esp: false })),
  });

  it.each([
    {
      name: "after the last partition of a grown MBR disk",
      l: layout("msdos", [1]),
      want: { start: 4096, end: 7340031, num: 2 },
    },
    { name: "in the first empty MBR slot", l: layout("msdos", [1, 3]), want: { start: 6144, end: 7340031, num: 2 } },
    { name: "short of the backup GPT", l: layout("gpt", [1, 2, 3]), want: { start: 8192, end: 7337983, num: 4 } },
  ])("places the ESP $name", ({ l, want }) => expect(planEsp(l)).toEqual(want));

  it.each([
    ["a full MBR", layout("msdos", [1, 2, 3, 4]), /four partitions/],
    ["a disk not grown", layout("msdos", [1], 8192), /no room/],
  ])("refuses %s", (_name, l, message) => expect(() => planEsp(l)).toThrow(message));
});

describe("uefiGuestArgs", () => {
  it("adds nothing when the ESP was there", () => {
    expect(uefiGuestArgs("debian", { state: "present (partition 15)", needsBootloader: false })).toEqual([]);
  });

  it.each(["debian", "rhel", "arch"] as const)(
    "%s: fstab line and mount before the packages, unmount last",
    (family) => {
      const args = uefiGuestArgs(family, { state: "added (partition 2, msdos)", needsBootloader: true });
      expect(args.slice(0, 6)).toEqual([
        "--mkdir",
        "/boot/efi",
        "--append-line",
        `/etc/fstab:${ESP_FSTAB_LINE}`,
        "--run-command",
        "mount /boot/efi",
      ]);
      expect(args[6]).toBe("--install");
      expect(args.at(-2)).toBe("--run-command");
      expect(args.at(-1)).toMatch(/--removable|EFI\/BOOT\/BOOTX64\.EFI/);
      expect(args.at(-1)).toMatch(/ && umount \/boot\/efi$/);
    },
  );
});
