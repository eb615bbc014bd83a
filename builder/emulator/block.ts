/** Block Storage: volumes and snapshots as qcow2 files, and snapshot import from / export to Object Storage. */
import { GetBucketLocationCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { run } from "../system/exec";
import type { State } from "./context";
import { invalid, invalidArguments, precondition } from "./errors";
import { undergo } from "./faults";
import { bucketRefusal, imageRefusal, QemuImgInfo } from "./import-rules";
import { blockDate, type Snapshot, type Volume } from "./model";
import { paged, refuseUnemulated, str, tagsOf, type Router } from "./router";
import type { Views } from "./views";

export type BlockWork = ReturnType<typeof blockWork>;

/** Volume and snapshot creation: the record at once, its file written in the background as on Scaleway. */
export function blockWork(ctx: State) {
  const { volumes, snapshots, servers, file, later, copyQcow2 } = ctx;
  async function snapshotVolume(v: Volume, name: string, tags: string[]): Promise<Snapshot> {
    const snap: Snapshot = {
      id: randomUUID(),
      name,
      size: v.size,
      status: "creating",
      file: "",
      tags,
      parentVolume: { id: v.id, name: v.name, status: v.status, type: "sbs_5k" },
      created: blockDate(),
      updated: blockDate(),
    };
    snap.file = file("snapshots", snap.id);
    snapshots.set(snap.id, snap);
    const server = v.serverId ? servers.get(v.serverId) : undefined;
    const work =
      server?.machine?.running && server.bootedType === "local"
        ? server.machine.copyDisk(v.id, snap.file)
        : copyQcow2(v.file, snap.file);
    later(() =>
      work.then(
        () => void Object.assign(snap, { status: "available", updated: blockDate() }),
        (err: Error) => void Object.assign(snap, { status: "error", updated: blockDate(), errorMessage: err.message }),
      ),
    );
    return snap;
  }

  function createVolume(name: string, size: number, perfIops: number, tags: string[], from?: Snapshot): Volume {
    const v: Volume = {
      id: randomUUID(),
      name,
      size,
      status: "creating",
      file: "",
      perfIops,
      parentSnapshotId: from?.id ?? null,
      tags,
      serverId: null,
      refId: randomUUID(),
      created: blockDate(),
      updated: blockDate(),
      lastDetached: null,
    };
    v.file = file("volumes", v.id);
    volumes.set(v.id, v);
    const work = from
      ? copyQcow2(from.file, v.file, size)
      : run("qemu-img", ["create", "-q", "-f", "qcow2", v.file, String(size)]).then(() => undefined);
    later(() =>
      work.then(
        () => void Object.assign(v, { status: v.serverId ? "in_use" : "available", updated: blockDate() }),
        () => void Object.assign(v, { status: "error", updated: blockDate() }),
      ),
    );
    return v;
  }

  const waitAvailable = async (v: Volume) => {
    for (let i = 0; i < 1200 && v.status === "creating"; i++) await new Promise((r) => setTimeout(r, 250));
    if (v.status === "error") throw new Error(`volume ${v.id} failed`);
  };

  return { snapshotVolume, createVolume, waitAvailable };
}

export function registerBlock(ctx: State, v: Views, r: Router, work: BlockWork): void {
  const { o, region, volumes, snapshots, s3, file, later, get, faults } = ctx;
  const { volumeJson, snapshotJson, snapshotRefs } = v;
  const { route, B } = r;
  const { snapshotVolume, createVolume, waitAvailable } = work;
  route("GET", `${B}/volumes`, (_, __, q) => [
    200,
    { volumes: paged([...volumes.values()], q, "page_size").map(volumeJson), total_count: volumes.size },
  ]);
  route("POST", `${B}/volumes`, (_, b) => {
    const name = str(b.name, "name");
    const fromSnapshot = b.from_snapshot as { snapshot_id?: string; size?: number } | undefined;
    const fromEmpty = b.from_empty as { size?: number } | undefined;
    if (!fromSnapshot === !fromEmpty)
      throw invalid("exactly one of from_empty and from_snapshot is required", {
        fields: { from_empty: ["required"] },
      });
    if (fromSnapshot) {
      const snap = get(snapshots, str(fromSnapshot.snapshot_id, "from_snapshot.snapshot_id"), "snapshot");
      if (snap.status !== "available") throw precondition(`snapshot ${snap.id} is ${snap.status}`);
      return [
        200,
        volumeJson(
          createVolume(name, fromSnapshot.size ?? snap.size, Number(b.perf_iops ?? 5000), tagsOf(b.tags), snap),
        ),
      ];
    }
    const size = Number(fromEmpty!.size);
    if (!Number.isFinite(size) || size < 1e9)
      throw invalid("from_empty.size must be at least 1 GB", { fields: { "from_empty.size": ["too small"] } });
    return [200, volumeJson(createVolume(name, size, Number(b.perf_iops ?? 5000), tagsOf(b.tags)))];
  });
  route("GET", `${B}/volumes/{id}`, (m) => [200, volumeJson(get(volumes, m[0]!, "volume"))]);
  route("PATCH", `${B}/volumes/{id}`, (m, b) => {
    const v = get(volumes, m[0]!, "volume");
    refuseUnemulated(b, ["name", "tags"], {}, "volume", {
      perf_iops: (x) => x === v.perfIops,
      size: (x) => x === v.size,
    });
    if (typeof b.name === "string") v.name = b.name;
    if (Array.isArray(b.tags)) v.tags = tagsOf(b.tags);
    v.updated = blockDate();
    return [200, volumeJson(v)];
  });
  route("DELETE", `${B}/volumes/{id}`, async (m) => {
    const v = get(volumes, m[0]!, "volume");
    if (v.serverId) throw precondition(`volume ${v.id} is attached to server ${v.serverId}`);
    await waitAvailable(v).catch(() => undefined);
    volumes.delete(v.id);
    rmSync(v.file, { force: true });
    return [204, undefined];
  });
  route("GET", `${B}/snapshots`, (_, __, q) => [
    200,
    { snapshots: paged([...snapshots.values()], q, "page_size").map(snapshotJson), total_count: snapshots.size },
  ]);
  route("POST", `${B}/snapshots`, async (_, b) => {
    const v = get(volumes, str(b.volume_id, "volume_id"), "volume");
    return [200, snapshotJson(await snapshotVolume(v, str(b.name, "name"), tagsOf(b.tags)))];
  });
  route("POST", `${B}/snapshots/import-from-object-storage`, async (_, b) => {
    const bucket = str(b.bucket, "bucket");
    const key = str(b.key, "key");
    const name = str(b.name, "name");
    // Judged before answering, as the real API answers with the image's virtual size already (recorded): the
    // bucket's region, then `qemu-img info` on the object's first MiB (header and extensions).
    const location = await s3.send(new GetBucketLocationCommand({ Bucket: bucket })).catch((err: Error) => {
      throw invalidArguments([
        { argument_name: "bucket", reason: "constraint", help_message: `bucket ${bucket} cannot be read: ${err.name}` },
      ]);
    });
    const wrongRegion = bucketRefusal(bucket, location.LocationConstraint || o.s3.region, region);
    if (wrongRegion) throw invalidArguments([wrongRegion]);
    const probe = join(o.stateDir, "snapshots", `probe-${randomUUID()}.qcow2`);
    let info: QemuImgInfo;
    try {
      const head = await s3
        .send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: "bytes=0-1048575" }))
        .catch((err: Error) => {
          throw invalidArguments([
            {
              argument_name: "key",
              reason: "constraint",
              help_message: `s3://${bucket}/${key} cannot be read: ${err.name}`,
            },
          ]);
        });
      await pipeline(head.Body as Readable, createWriteStream(probe));
      const out = await run("qemu-img", ["info", "--output=json", probe]).catch(() => {
        throw invalidArguments([{ argument_name: "key", reason: "format", help_message: `${key}: not a QCOW2 image` }]);
      });
      info = QemuImgInfo.parse(JSON.parse(out.stdout));
    } finally {
      rmSync(probe, { force: true });
    }
    const refusal = imageRefusal(key, info);
    if (refusal) throw invalidArguments([refusal]);
    const snap: Snapshot = {
      id: randomUUID(),
      name,
      size: info["virtual-size"],
      status: "creating",
      file: "",
      tags: tagsOf(b.tags),
      parentVolume: null,
      created: blockDate(),
      updated: blockDate(),
    };
    snap.file = file("snapshots", snap.id);
    snapshots.set(snap.id, snap);
    const fault = faults.transition("POST /block/snapshots/import-from-object-storage", b);
    later(async () => {
      try {
        await undergo(fault, `the import of s3://${bucket}/${key}`);
        const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        await pipeline(obj.Body as Readable, createWriteStream(snap.file));
        await run("qemu-img", ["check", "-q", snap.file]);
        Object.assign(snap, { status: "available", updated: blockDate() });
      } catch (err) {
        rmSync(snap.file, { force: true });
        Object.assign(snap, { status: "error", updated: blockDate() });
        process.stderr.write(`emulator: import of s3://${bucket}/${key} failed: ${(err as Error).message}\n`);
      }
    });
    return [200, snapshotJson(snap)];
  });
  route("POST", `${B}/snapshots/{id}/export-to-object-storage`, async (m, b) => {
    const snap = get(snapshots, m[0]!, "snapshot");
    const bucket = str(b.bucket, "bucket");
    const key = str(b.key, "key");
    const location = await s3.send(new GetBucketLocationCommand({ Bucket: bucket })).catch((err: Error) => {
      throw invalidArguments([
        { argument_name: "bucket", reason: "constraint", help_message: `bucket ${bucket} cannot be read: ${err.name}` },
      ]);
    });
    const wrongRegion = bucketRefusal(bucket, location.LocationConstraint || o.s3.region, region);
    if (wrongRegion) throw invalidArguments([wrongRegion]);
    if (snap.status !== "available") throw precondition(`snapshot ${snap.id} is ${snap.status}`);
    // Recorded: `exporting` while the qcow2 is written to the bucket, `available` again after.
    snap.status = "exporting";
    later(async () => {
      try {
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: createReadStream(snap.file),
            ContentLength: statSync(snap.file).size,
          }),
        );
      } catch (err) {
        process.stderr.write(
          `emulator: export of ${snap.id} to s3://${bucket}/${key} failed: ${(err as Error).message}\n`,
        );
      } finally {
        Object.assign(snap, { status: "available", updated: blockDate() });
      }
    });
    return [200, snapshotJson(snap)];
  });
  route("GET", `${B}/snapshots/{id}`, (m) => [200, snapshotJson(get(snapshots, m[0]!, "snapshot"))]);
  route("PATCH", `${B}/snapshots/{id}`, (m, b) => {
    const s = get(snapshots, m[0]!, "snapshot");
    if (typeof b.name === "string") s.name = b.name;
    if (Array.isArray(b.tags)) s.tags = tagsOf(b.tags);
    return [200, snapshotJson(s)];
  });
  route("DELETE", `${B}/snapshots/{id}`, (m) => {
    const s = get(snapshots, m[0]!, "snapshot");
    const refs = snapshotRefs(s);
    if (refs.length)
      throw precondition(
        `snapshot ${s.id} is in use by ${refs.map((r) => `${r.product_resource_type} ${r.product_resource_id}`).join(", ")}`,
      );
    snapshots.delete(s.id);
    rmSync(s.file, { force: true });
    return [204, undefined];
  });
}
