import { describe, expect, it } from "vitest";
import { mountable, parseFilesystems } from "../../builder/pipeline/guestfish-session";

describe("guestfish list-filesystems", () => {
  it.each([
    { text: "", out: [] },
    { text: "/dev/sda1: ext4\n", out: [{ device: "/dev/sda1", type: "ext4" }] },
    {
      text: "/dev/sda1: xfs\n/dev/sda2: vfat\n/dev/sda3: swap\n/dev/sda4: unknown\n/dev/rl/root: xfs\n",
      out: [
        { device: "/dev/sda1", type: "xfs" },
        { device: "/dev/sda2", type: "vfat" },
        { device: "/dev/sda3", type: "swap" },
        { device: "/dev/sda4", type: "unknown" },
        { device: "/dev/rl/root", type: "xfs" },
      ],
    },
    { text: "garbage line\n/dev/sdb1: btrfs", out: [{ device: "/dev/sdb1", type: "btrfs" }] },
  ])("parses $text", ({ text, out }) => expect(parseFilesystems(text)).toEqual(out));

  it("mounts neither swap nor what libguestfs could not identify", () => {
    const all = parseFilesystems("/dev/sda1: ext4\n/dev/sda2: swap\n/dev/sda3: unknown\n/dev/sda15: vfat\n");
    expect(mountable(all).map((f) => f.device)).toEqual(["/dev/sda1", "/dev/sda15"]);
  });
});
