/**
 * The local job's emulated release steps against the emulated Scaleway API, without booting: the image and the
 * test server are created from the release spec's SDK requests (the ones the ZonalImage's resources mirror), the
 * server is created stopped as declared, and removing it after a pass leaves only the snapshot and the image.
 */
import { createClient } from "@scaleway/sdk-client";
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../../builder/emulator/api";
import { removeTestServer } from "../../builder/local/emulated-release";
import { localReleaseSpec } from "../../builder/local/local-job";
import { planStack } from "../../builder/core/plan";
import { GB, sdkRequests } from "../../builder/core/release-spec";
import { loadCatalog } from "../../images";
import { settingsFor } from "../unit/helpers";

const SECRET = "00000000-0000-4000-8000-000000000011";
const PROJECT = "00000000-0000-4000-8000-000000000012";

describe("the emulated release, from the release spec", () => {
  let emulator: Emulator;
  const state = mkdtempSync(join(tmpdir(), "factory-emulated-release-"));
  const settings = settingsFor({ images: ["debian-12"], zone: "fr-par-1" });
  const plan = planStack(loadCatalog(), settings)[0]!;
  const spec = localReleaseSpec(plan, settings);
  const zone = spec.zone;

  beforeAll(async () => {
    emulator = await startEmulator({
      stateDir: state,
      secretKey: SECRET,
      projectId: PROJECT,
      zone,
      accel: "tcg",
      s3: { endpoint: "http://127.0.0.1:9", region: "fr-par", accessKeyId: "x", secretAccessKey: "x" },
    });
  }, 60_000);
  afterAll(async () => {
    await emulator?.close();
    rmSync(state, { recursive: true, force: true });
  });

  it("creates the image and a stopped test server as specified, and removes the server after a pass", async () => {
    const client = createClient({
      accessKey: "SCWXXXXXXXXXXXXXXXXX",
      secretKey: SECRET,
      defaultProjectId: PROJECT,
      defaultZone: zone,
      apiURL: emulator.url,
    });
    const block = new Blockv1.API(client);
    const instance = new Instancev1.API(client);
    // Stands in for the import (which needs Object Storage): a snapshot of an empty 2 GB volume.
    const vol = await block.createVolume({
      zone,
      name: "stand-in",
      projectId: PROJECT,
      fromEmpty: { size: 2 * GB },
      perfIops: 5000,
      tags: [],
    });
    await block.waitForVolume({ zone, volumeId: vol.id }, { timeout: 60, minDelay: 1, maxDelay: 2 });
    const snap = await block.createSnapshot({
      zone,
      volumeId: vol.id,
      name: spec.snapshot.name,
      projectId: PROJECT,
      tags: [],
    });
    await block.waitForSnapshot({ zone, snapshotId: snap.id }, { timeout: 60, minDelay: 1, maxDelay: 2 });
    await block.deleteVolume({ zone, volumeId: vol.id });

    const requests = sdkRequests(spec, PROJECT, "2026-11-20");
    const image = (await instance.createImage(requests.createImage(snap.id))).image!;
    expect(image.name).toBe(plan.imageName);
    expect(image.tags).toContain(`factory:content-hash=${plan.contentHash}`);
    expect(image.tags).toContain("scs:image_build_date=2026-11-20");
    const server = (await instance.createServer(requests.createServer(image.id))).server!;
    expect(server.name).toBe(spec.server.name);
    expect(server.state).toBe(spec.server.state);
    expect(server.bootType).toBe("local");
    expect(server.tags).toContain("factory:role=test-instance");
    const root = server.volumes["0"]!.id;
    expect((await block.getVolume({ zone, volumeId: root })).size).toBe(spec.server.rootVolume.sizeInGb * GB);

    expect(await removeTestServer(client, zone, server.id)).toEqual([]);
    expect((await instance.listServers({ zone })).servers).toEqual([]);
    expect((await block.listVolumes({ zone, includeDeleted: false })).volumes).toEqual([]);
    expect((await instance.listImages({ zone })).images.map((i) => i.id)).toEqual([image.id]);
  });
});
