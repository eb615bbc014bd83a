/**
 * Faults on demand in the emulator, seen through the factory's retrying client: 429 with Retry-After and 5xx are
 * retried, a 409 conflict fails at once with the SDK's TransientStateError, a slow transition holds its transient
 * state, a failing one ends in `error` or a failed task, and a create whose answer is lost is adopted, not made
 * twice. No guest boots (the failing power-on fails before).
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../../builder/emulator/api";
import { operationOf } from "../../builder/emulator/faults";
import { run } from "../../builder/system/exec";
import { startS3, type S3Server } from "../../builder/local/s3-server";
import { scalewayClient } from "../../builder/release/scw-client";

const SECRET = "00000000-0000-4000-8000-000000000001";
const PROJECT = "00000000-0000-4000-8000-000000000002";
const BUCKET = "factory-faults";
const ZONE = "fr-par-1";
const wait = { timeout: 60, minDelay: 1, maxDelay: 1 };

describe("emulator faults", () => {
  const work = mkdtempSync(join(tmpdir(), "factory-emulator-faults-"));
  let s3: S3Server;
  let e: Emulator;
  let instance: Instancev1.API;
  let block: Blockv1.API;

  beforeAll(async () => {
    s3 = await startS3(join(work, "s3"));
    const s3c = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await s3c.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await run("qemu-img", ["create", "-q", "-f", "qcow2", join(work, "disk.qcow2"), "1G"]);
    await s3c.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "images/t/x86_64/disk.qcow2",
        Body: readFileSync(join(work, "disk.qcow2")),
      }),
    );
    s3c.destroy();
    e = await startEmulator({
      stateDir: join(work, "emu"),
      secretKey: SECRET,
      projectId: PROJECT,
      zone: ZONE,
      accel: "tcg",
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
      },
    });
    const client = scalewayClient(
      {
        accessKey: "SCWXXXXXXXXXXXXXXXXX",
        secretKey: SECRET,
        defaultProjectId: PROJECT,
        defaultZone: ZONE,
        apiURL: e.url,
      },
      { retries: 3, minMs: 50, maxMs: 5000 },
    );
    instance = new Instancev1.API(client);
    block = new Blockv1.API(client);
  });
  afterAll(async () => {
    await e?.close();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const statuses = (path: RegExp) => e.exchanges.filter((x) => path.test(x.path)).map((x) => x.status);
  const importDisk = (name: string) =>
    block.importSnapshotFromObjectStorage({
      bucket: BUCKET,
      key: "images/t/x86_64/disk.qcow2",
      name,
      projectId: PROJECT,
    });

  it("names operations without their zone", () => {
    expect(operationOf("POST", "/instance/v1/zones/fr-par-1/servers/{id}/action")).toBe(
      "POST /instance/servers/{id}/action",
    );
    expect(operationOf("POST", "/block/v1/zones/nl-ams-3/snapshots/import-from-object-storage")).toBe(
      "POST /block/snapshots/import-from-object-storage",
    );
    expect(operationOf("GET", "/vpc/v2/regions/fr-par/private-networks")).toBe("GET /vpc/private-networks");
  });

  it("answers 429 with Retry-After, which the client honours before retrying", async () => {
    e.faults.add({ kind: "throttle", op: "GET /instance/images", retryAfterSeconds: 1, times: 2 });
    const t0 = Date.now();
    await instance.listImages({});
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(statuses(/\/images$/).slice(-3)).toEqual([429, 429, 200]);
  });

  it("retries 5xx with backoff and fails with the last answer once the retries are spent", async () => {
    e.faults.add({ kind: "server-error", op: "GET /block/snapshots", status: 502, times: 1 });
    await block.listSnapshots({ includeDeleted: false });
    expect(statuses(/\/snapshots$/).slice(-2)).toEqual([502, 200]);
    e.faults.add({ kind: "server-error", op: "GET /block/snapshots", status: 503 });
    await expect(block.listSnapshots({ includeDeleted: false })).rejects.toMatchObject({
      status: 503,
      message: expect.stringContaining("injected 503 on GET /block/snapshots"),
    });
    expect(statuses(/\/snapshots$/).slice(-4)).toEqual([503, 503, 503, 503]);
    e.faults.clear();
  });

  it("fails a conflict at once with the SDK's transient state error", async () => {
    e.faults.add({ kind: "conflict", op: "POST /instance/images", times: 1 });
    const before = e.exchanges.length;
    await expect(
      instance.createImage({
        name: "c",
        rootVolume: "00000000-0000-4000-8000-000000000009",
        arch: "x86_64",
        project: PROJECT,
      }),
    ).rejects.toMatchObject({ name: "TransientStateError", status: 409 });
    expect(e.exchanges.length - before).toBe(1);
  });

  it("holds a slow import in `creating`, ends a failed one in `error`, and a failed image in `error`", async () => {
    e.faults.add({ kind: "slow", op: "POST /block/snapshots/import-from-object-storage", holdMs: 3000, times: 1 });
    const slow = await importDisk("slow");
    await new Promise((r) => setTimeout(r, 1500));
    expect((await block.getSnapshot({ snapshotId: slow.id })).status).toBe("creating");
    expect((await block.waitForSnapshot({ snapshotId: slow.id }, wait)).status).toBe("available");

    e.faults.add({ kind: "fail", op: "POST /block/snapshots/import-from-object-storage", times: 1 });
    const failed = await importDisk("failed");
    expect((await block.waitForSnapshot({ snapshotId: failed.id }, wait)).status).toBe("error");

    e.faults.add({ kind: "fail", op: "POST /instance/images", times: 1 });
    const { image } = await instance.createImage({
      name: "bad",
      rootVolume: slow.id,
      arch: "x86_64",
      project: PROJECT,
    });
    expect((await instance.waitForImage({ imageId: image!.id }, wait)).state).toBe("error");
    expect(e.faults.hits.map((h) => h.kind)).toEqual([
      "throttle",
      "throttle",
      "server-error",
      "server-error",
      "server-error",
      "server-error",
      "server-error",
      "conflict",
      "slow",
      "fail",
      "fail",
    ]);
    await instance.deleteImage({ imageId: image!.id });
    for (const id of [slow.id, failed.id]) await block.deleteSnapshot({ snapshotId: id });
  });

  it("fails a power-on only when asked, before any guest boots: a failed task and a stopped server saying why", async () => {
    const snap = await block.waitForSnapshot({ snapshotId: (await importDisk("root")).id }, wait);
    const { image } = await instance.createImage({
      name: "root",
      rootVolume: snap.id,
      arch: "x86_64",
      project: PROJECT,
    });
    const { server } = await instance.createServer({
      name: "s",
      commercialType: "DEV1-S",
      image: image!.id,
      volumes: { "0": { volumeType: "sbs_volume" } },
      dynamicIpRequired: false,
      project: PROJECT,
      protected: false,
    });
    e.faults.add({ kind: "fail", op: "POST /instance/servers/{id}/action", when: { action: "poweron" }, times: 1 });
    const { task } = await instance.serverAction({ serverId: server!.id, action: "poweron" });
    const after = await instance.waitForServer({ serverId: server!.id }, wait);
    const done = (await (
      await fetch(`${e.url}/instance/v1/zones/${ZONE}/tasks/${task!.id}`, { headers: { "x-auth-token": SECRET } })
    ).json()) as { task: { status: string } };
    expect(done.task.status).toBe("failure");
    expect(after).toMatchObject({
      state: "stopped",
      stateDetail: expect.stringContaining("injected failure of poweron"),
    });
    expect(e.console(server!.id)).toBe("");
    await instance.deleteServer({ serverId: server!.id });
    await block.deleteVolume({ volumeId: after.volumes["0"]!.id });
    await instance.deleteImage({ imageId: image!.id });
    await block.deleteSnapshot({ snapshotId: snap.id });
  });
  it("adopts what a create whose answer was lost made: exactly one of each, however the retries go", async () => {
    const count = async () => ({
      servers: (await instance.listServers({ name: "lost" })).servers.filter((x) => x.name === "lost").length,
      images: (await instance.listImages({ name: "lost" })).images.filter((x) => x.name === "lost").length,
      snapshots: (await block.listSnapshots({ name: "lost", includeDeleted: false })).snapshots.filter(
        (x) => x.name === "lost",
      ).length,
      volumes: (await block.listVolumes({ name: "lost-data", includeDeleted: false })).volumes.filter(
        (x) => x.name === "lost-data",
      ).length,
    });
    const lost = (op: string) => e.faults.add({ kind: "lost-answer", op, status: 502, times: 1 });
    const hitsBefore = e.faults.hits.length;
    lost("POST /block/snapshots/import-from-object-storage");
    const snap = await block.waitForSnapshot({ snapshotId: (await importDisk("lost")).id }, wait);
    lost("POST /instance/images");
    const { image } = await instance.createImage({
      name: "lost",
      rootVolume: snap.id,
      arch: "x86_64",
      project: PROJECT,
      tags: ["t1"],
    });
    lost("POST /instance/servers");
    const { server } = await instance.createServer({
      name: "lost",
      commercialType: "DEV1-S",
      image: image!.id,
      volumes: { "0": { volumeType: "sbs_volume" } },
      dynamicIpRequired: false,
      project: PROJECT,
      protected: false,
      tags: ["factory", "lost"],
    });
    // Not committed (answered before the handler): nothing to adopt, so the retry creates it.
    e.faults.add({ kind: "server-error", op: "POST /block/volumes", status: 503, times: 1 });
    const volume = await block.createVolume({
      name: "lost-data",
      fromEmpty: { size: 10_000_000_000 },
      projectId: PROJECT,
      perfIops: 5000,
    });
    expect(e.faults.hits.slice(hitsBefore).map((h) => h.kind)).toEqual([
      "lost-answer",
      "lost-answer",
      "lost-answer",
      "server-error",
    ]);
    expect(await count()).toEqual({ servers: 1, images: 1, snapshots: 1, volumes: 1 });
    expect(server).toMatchObject({ name: "lost", tags: ["factory", "lost"] });
    expect(image).toMatchObject({ name: "lost", rootVolume: { id: snap.id } });
    // Each lost create was sent once; the one refused before the handler twice.
    const posts = (path: RegExp) =>
      e.exchanges.filter((x) => x.method === "POST" && path.test(x.path)).map((x) => x.status);
    expect(posts(/\/servers$/).slice(-1)).toEqual([502]);
    expect(posts(/\/volumes$/).slice(-2)).toEqual([503, 200]);

    const s = await instance.waitForServer({ serverId: server!.id }, wait);
    await instance.deleteServer({ serverId: server!.id });
    await block.deleteVolume({ volumeId: s.volumes["0"]!.id });
    await block.deleteVolume({ volumeId: volume.id });
    await instance.deleteImage({ imageId: image!.id });
    await block.deleteSnapshot({ snapshotId: snap.id });
  });
});
