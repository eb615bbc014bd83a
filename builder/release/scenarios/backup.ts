/**
 * The backup scenario: the `backup` action's image, found from the action's task (never by name), boots as a new
 * Instance holding the marker file. It costs a boot of that new Instance, not a power cycle of the test server.
 */
import type { Instancev1 } from "@scaleway/sdk-instance";
import { expect, token, type Battery } from "../battery-driver";

export const backupScenarios: Record<"backup", (b: Battery) => Promise<void>> = {
  async backup(b) {
    await b.writeMarker();
    const name = `factory-backup-${token()}`;
    const { task } = await b.instance.serverAction({ zone: b.zone, serverId: b.o.serverId, action: "backup", name });
    // The action's task names the new image in `href_result` (`/images/<id>`), as Scaleway's CLI and Packer
    // plugin read it: never a lookup by name, which another image of the same name would answer.
    const imageId = /^\/images\/([0-9a-f-]{36})$/.exec(task?.hrefResult ?? "")?.[1];
    let serverId: string | undefined;
    try {
      expect(
        imageId,
        `the backup action's task does not name an image (href_result ${JSON.stringify(task?.hrefResult)})`,
      );
      const image = await b.instance.waitForImage(
        { zone: b.zone, imageId },
        { timeout: 900, minDelay: 2, maxDelay: 5 },
      );
      expect(image.state === "available", `backup image is ${image.state}`);
      const source = await b.server();
      const created = await b.instance.createServer({
        zone: b.zone,
        name: `factory-backup-test-${token()}`,
        commercialType: source.commercialType,
        image: image.id,
        dynamicIpRequired: true,
        tags: ["factory:role=backup-test", b.authorizedKeyTag()],
        project: b.o.projectId,
        volumes: { "0": { volumeType: "sbs_volume" } },
        bootType: "local",
        protected: false,
      });
      serverId = created.server!.id;
      await b.action(serverId, "poweron", "running");
      await b.connect(serverId);
      expect(
        (await b.readMarker(serverId)) === b.markerValue,
        "an Instance booted from the backup image lacks the marker file",
      );
    } finally {
      if (serverId) {
        const s = await b.server(serverId).catch(() => undefined);
        if (s) {
          if (s.state !== "stopped") await b.action(serverId, "poweroff", "stopped").catch(() => undefined);
          await b.instance
            .deleteServer({ zone: b.zone, serverId })
            .catch((e: Error) => b.cleanupFailed(`backup server ${serverId}`, e));
          for (const v of Object.values(s.volumes))
            await b.deleteVolume(v.id).catch((e: Error) => b.cleanupFailed(`backup volume ${v.id}`, e));
        }
      }
      if (imageId) {
        const image = await b.instance.getImage({ zone: b.zone, imageId }).then(
          (r) => r.image,
          () => undefined,
        );
        await b.instance
          .deleteImage({ zone: b.zone, imageId })
          .catch((e: Error) => b.cleanupFailed(`backup image ${imageId}`, e));
        for (const snap of [image?.rootVolume, ...Object.values(image?.extraVolumes ?? {})].filter(
          (v): v is Instancev1.VolumeSummary => v !== undefined,
        ))
          await b.block
            .deleteSnapshot({ zone: b.zone, snapshotId: snap.id })
            .catch((e: Error) => b.cleanupFailed(`backup snapshot ${snap.id}`, e));
      }
    }
  },
};
