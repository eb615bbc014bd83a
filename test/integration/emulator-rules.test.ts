/**
 * The real API's rules the factory relies on, kept by the emulator, checked through the official SDK clients on
 * loopback with no guest booted: what a snapshot import refuses (against the embedded S3 server, images made with
 * qemu-img), a snapshot held by an image, the backup action's task, and updates the emulator refuses rather than
 * ignore.
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createClient } from "@scaleway/sdk-client";
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../../builder/emulator/api";
import { run } from "../../builder/system/exec";
import { startS3, type S3Server } from "../../builder/local/s3-server";

const SECRET = "00000000-0000-4000-8000-000000000001";
const PROJECT = "00000000-0000-4000-8000-000000000002";
const BUCKET = "factory-rules";

describe("emulated API rules", () => {
  const work = mkdtempSync(join(tmpdir(), "factory-emulator-rules-"));
  let s3: S3Server;
  let s3c: S3Client;
  const emulators: Emulator[] = [];
  const start = async (zone: string) => {
    const e = await startEmulator({
      stateDir: join(work, zone),
      secretKey: SECRET,
      projectId: PROJECT,
      zone,
      accel: "tcg",
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
      },
    });
    emulators.push(e);
    const client = createClient({
      accessKey: "SCWXXXXXXXXXXXXXXXXX",
      secretKey: SECRET,
      defaultProjectId: PROJECT,
      defaultZone: zone,
      defaultRegion: zone.replace(/-\d+$/, ""),
      apiURL: e.url,
    });
    return { e, instance: new Instancev1.API(client), block: new Blockv1.API(client) };
  };
  const raw = async (e: Emulator, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${e.url}${path}`, {
      method,
      headers: { "x-auth-token": SECRET, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as Record<string, any> };
  };
  const upload = async (key: string, file: string) =>
    s3c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: readFileSync(file) }));
  const qcow2 = async (name: string, size: string, ...opts: string[]) => {
    const f = join(work, name);
    await run("qemu-img", ["create", "-q", "-f", "qcow2", ...opts, f, size]);
    return f;
  };

  beforeAll(async () => {
    s3 = await startS3(join(work, "s3"));
    s3c = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await s3c.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });
  afterAll(async () => {
    for (const e of emulators) await e.close();
    s3c?.destroy();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("imports a standalone qcow2 with its virtual size, and refuses what the real API refuses, naming the argument", async () => {
    const { e, block } = await start("fr-par-1");
    const B = "/block/v1/zones/fr-par-1";
    const good = await qcow2("good.qcow2", "3G");
    await upload("images/good.qcow2", good);
    const snap = await block.importSnapshotFromObjectStorage({
      bucket: BUCKET,
      key: "images/good.qcow2",
      name: "good",
      projectId: PROJECT,
    });
    expect(snap.size).toBe(3 * 1024 ** 3);
    expect(
      (await block.waitForSnapshot({ snapshotId: snap.id }, { timeout: 60, minDelay: 1, maxDelay: 1 })).status,
    ).toBe("available");

    const base = await qcow2("base.qcow2", "1G");
    await upload("images/overlay.qcow2", await qcow2("overlay.qcow2", "1G", "-b", base, "-F", "qcow2"));
    await upload("images/zstd.qcow2", await qcow2("zstd.qcow2", "1G", "-o", "compression_type=zstd"));
    await upload("images/huge.qcow2", await qcow2("huge.qcow2", "1000000000512"));
    await run("qemu-img", ["create", "-q", "-f", "raw", join(work, "raw.img"), "1M"]);
    await upload("images/raw.qcow2", join(work, "raw.img"));
    const refused = async (key: string, e2 = e, zonePath = B) => {
      const r = await raw(e2, "POST", `${zonePath}/snapshots/import-from-object-storage`, {
        bucket: BUCKET,
        key,
        name: "x",
        project_id: PROJECT,
      });
      expect(r.status, key).toBe(400);
      expect(r.body).toMatchObject({ type: "invalid_arguments", message: "invalid argument(s)" });
      expect(r.body.details).toHaveLength(1);
      return r.body.details[0] as { argument_name: string; reason: string; help_message: string };
    };
    expect(await refused("images/overlay.qcow2")).toMatchObject({
      argument_name: "key",
      reason: "constraint",
      help_message: expect.stringContaining("backing file"),
    });
    expect(await refused("images/zstd.qcow2")).toMatchObject({
      argument_name: "key",
      help_message: expect.stringContaining("zstd compression"),
    });
    expect(await refused("images/huge.qcow2")).toMatchObject({
      argument_name: "key",
      help_message: expect.stringContaining("over 1 TB"),
    });
    expect(await refused("images/raw.qcow2")).toMatchObject({ argument_name: "key", reason: "format" });
    expect(await refused("images/missing.qcow2")).toMatchObject({
      argument_name: "key",
      help_message: expect.stringContaining("cannot be read"),
    });
    // The bucket is in fr-par: a zone of another region refuses it.
    const ams = await start("nl-ams-1");
    expect(await refused("images/good.qcow2", ams.e, "/block/v1/zones/nl-ams-1")).toMatchObject({
      argument_name: "bucket",
      help_message: expect.stringContaining("region fr-par"),
    });
    // Nothing refused left a snapshot behind.
    expect((await block.listSnapshots({ includeDeleted: false })).snapshots.map((s) => s.name)).toEqual(["good"]);
  });

  it("keeps a snapshot in use while an image holds it, frees it when the image goes, and answers a backup's task with its image", async () => {
    const { instance, block } = await start("fr-par-2");
    const vol = await block.createVolume({
      name: "v",
      perfIops: 5000,
      fromEmpty: { size: 10_000_000_000 },
      projectId: PROJECT,
    });
    await block.waitForVolume({ volumeId: vol.id }, { timeout: 60, minDelay: 1, maxDelay: 1 });
    const snap = await block.createSnapshot({ volumeId: vol.id, name: "s", projectId: PROJECT });
    await block.waitForSnapshot({ snapshotId: snap.id }, { timeout: 60, minDelay: 1, maxDelay: 1 });
    const { image } = await instance.createImage({ name: "i", rootVolume: snap.id, arch: "x86_64", project: PROJECT });
    const held = await block.getSnapshot({ snapshotId: snap.id });
    expect(held.status).toBe("in_use");
    expect(held.references).toEqual([
      expect.objectContaining({
        productResourceType: "instance_image",
        productResourceId: image!.id,
        type: "link",
        status: "attached",
      }),
    ]);
    const denied = await block.deleteSnapshot({ snapshotId: snap.id }).then(
      () => undefined,
      (err: { status?: number; body?: unknown }) => err,
    );
    expect(denied).toMatchObject({ status: 412 });
    expect((await block.getSnapshot({ snapshotId: snap.id })).status).toBe("in_use");
    await instance.deleteImage({ imageId: image!.id });
    const freed = await block.getSnapshot({ snapshotId: snap.id });
    expect(freed).toMatchObject({ status: "available", references: [] });
    await block.deleteSnapshot({ snapshotId: snap.id });

    // Backup of a stopped server: the task names the image, whose snapshots the image holds.
    const server = (
      await instance.createServer({
        name: "b",
        commercialType: "DEV1-S",
        image: (
          await instance.createImage({
            name: "base",
            rootVolume: (
              await block.waitForSnapshot(
                { snapshotId: (await block.createSnapshot({ volumeId: vol.id, name: "s2", projectId: PROJECT })).id },
                { timeout: 60, minDelay: 1, maxDelay: 1 },
              )
            ).id,
            arch: "x86_64",
            project: PROJECT,
          })
        ).image!.id,
        volumes: { "0": { volumeType: "sbs_volume" } },
        dynamicIpRequired: false,
        project: PROJECT,
        protected: false,
      })
    ).server!;
    await block.waitForVolume({ volumeId: server.volumes["0"]!.id }, { timeout: 60, minDelay: 1, maxDelay: 1 });
    const { task } = await instance.serverAction({ serverId: server.id, action: "backup", name: "the-backup" });
    const imageId = /^\/images\/([0-9a-f-]{36})$/.exec(task!.hrefResult)?.[1];
    expect(imageId).toBeDefined();
    const backup = await instance.waitForImage({ imageId: imageId! }, { timeout: 120, minDelay: 1, maxDelay: 1 });
    expect(backup).toMatchObject({ name: "the-backup", state: "available", fromServer: server.id });
    expect((await block.getSnapshot({ snapshotId: backup.rootVolume!.id })).references[0]).toMatchObject({
      productResourceId: imageId,
    });
  });

  it("answers an update it does not carry out with an error naming the field, never a silent 200", async () => {
    const { e, instance, block } = await start("fr-par-3");
    const I = "/instance/v1/zones/fr-par-3";
    const vol = await block.createVolume({
      name: "v",
      perfIops: 5000,
      fromEmpty: { size: 10_000_000_000 },
      projectId: PROJECT,
    });
    await block.waitForVolume({ volumeId: vol.id }, { timeout: 60, minDelay: 1, maxDelay: 1 });
    const snap = await block.waitForSnapshot(
      { snapshotId: (await block.createSnapshot({ volumeId: vol.id, name: "s", projectId: PROJECT })).id },
      { timeout: 60, minDelay: 1, maxDelay: 1 },
    );
    const { image } = await instance.createImage({ name: "i", rootVolume: snap.id, arch: "x86_64", project: PROJECT });
    const { server } = await instance.createServer({
      name: "s",
      commercialType: "DEV1-S",
      image: image!.id,
      volumes: { "0": { volumeType: "sbs_volume" } },
      dynamicIpRequired: false,
      project: PROJECT,
      protected: false,
    });
    const rootId = server!.volumes["0"]!.id;
    const cases: [string, string, unknown, string][] = [
      ["PATCH", `${I}/servers/${server!.id}`, { commercial_type: "PRO2-XXS" }, "commercial_type"],
      ["PATCH", `${I}/servers/${server!.id}`, { volumes: { "0": { id: rootId }, "1": { id: vol.id } } }, "volumes"],
      ["PATCH", `${I}/servers/${server!.id}`, { enable_ipv6: true }, "enable_ipv6"],
      ["PATCH", `/block/v1/zones/fr-par-3/volumes/${vol.id}`, { perf_iops: 15000 }, "perf_iops"],
      ["PATCH", `/block/v1/zones/fr-par-3/volumes/${vol.id}`, { size: 20_000_000_000 }, "size"],
    ];
    for (const [method, path, body, field] of cases) {
      const r = await raw(e, method, path, body);
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(501);
      expect(r.body.fields).toEqual({ [field]: ["not emulated"] });
      expect(r.body.message).toContain(field);
    }
    // Restating the current value is no change, and what the emulator handles still changes.
    expect(
      (await raw(e, "PATCH", `${I}/servers/${server!.id}`, { commercial_type: "DEV1-S", name: "renamed" })).body.server,
    ).toMatchObject({ commercial_type: "DEV1-S", name: "renamed" });
    expect(
      (await raw(e, "PATCH", `/block/v1/zones/fr-par-3/volumes/${vol.id}`, { perf_iops: 5000, name: "n" })).body,
    ).toMatchObject({ name: "n", specs: { perf_iops: 5000 } });
  });
});
