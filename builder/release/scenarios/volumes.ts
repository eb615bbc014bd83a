/** Volume scenarios on the running test server: a new block volume's data across detach, and a hot snapshot. */
import { expect, token, type Battery } from "../battery-driver";
import { hotSnapshot } from "./snapshots";

export const volumeScenarios: Record<"block volume" | "hot snapshot", (b: Battery) => Promise<void>> = {
  async "block volume"(b) {
    const vol = await b.block.createVolume({
      zone: b.zone,
      name: `factory-test-${token()}`,
      perfIops: 5000,
      fromEmpty: { size: 10_000_000_000 },
    });
    const data = token();
    try {
      const v = await b.block.waitForVolume(
        { zone: b.zone, volumeId: vol.id },
        { timeout: 300, minDelay: 1, maxDelay: 3 },
      );
      expect(v.status === "available", `new volume is ${v.status}`);
      let before = await b.disks();
      await b.attach(vol.id);
      let dev = await b.newDisk(before);
      await b.sh(
        `mkfs.ext4 -q -F ${dev} && mkdir -p /mnt/factory-bv && mount ${dev} /mnt/factory-bv && printf %s ${data} > /mnt/factory-bv/data && umount /mnt/factory-bv`,
      );
      await b.detach(vol.id);
      await b.diskGone(dev);
      before = await b.disks();
      await b.attach(vol.id);
      dev = await b.newDisk(before);
      const read = (
        await b.sh(`mount ${dev} /mnt/factory-bv && cat /mnt/factory-bv/data; umount /mnt/factory-bv`)
      ).trim();
      expect(read === data, `data written before detach reads back as "${read}"`);
      await b.detach(vol.id);
      await b.diskGone(dev);
    } finally {
      await b.deleteVolume(vol.id).catch((e: Error) => b.cleanupFailed(`volume ${vol.id}`, e));
    }
  },

  "hot snapshot": hotSnapshot,
};
