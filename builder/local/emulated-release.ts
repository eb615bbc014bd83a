/**
 * What the ZonalImage's Scaleway resources do after publish, against the emulated API: import the artifact from
 * Object Storage as a block snapshot, make an Instance image of it, create the test Instance (stopped, as the
 * component does) and run `image-factory test-instance` with the environment the component's test Command gives it.
 * Once the battery passed, the test Instance leaves the zone, as the stack's next `up` removes it.
 */
import { createClient } from "@scaleway/sdk-client";
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { Vpcv2 } from "@scaleway/sdk-vpc";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Accelerator } from "../accel";
import { startEmulator, type Emulator } from "../emulator/api";
import { run, ToolError } from "../exec";
import type { CheckResult } from "../testing/guest-checks";
import { sdkRequests, testEnvironment, type ReleaseSpec } from "../release-spec";

export interface EmulatedReleaseOptions {
  stateDir: string;
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  /** The release sequence the ZonalImage maps to Pulumi resources (builder/release-spec.ts). */
  spec: ReleaseSpec;
  /** The artifact's build date as publish reported it: the image's SCS image_build_date tag. */
  buildDate: string;
  accel: Accelerator;
  cli: string;
  dnsNames: string[];
  only?: string[];
  /** Where the test Command writes its JSON report. */
  reportFile: string;
  log: (line: string) => void;
}

export interface EmulatedReleaseResult {
  imageId: string;
  serverId: string;
  passed: boolean;
  results: CheckResult[];
  /** What the battery created and did not remove (each scenario must clean up, even when it fails). */
  leftovers: string[];
}

/**
 * Everything in the emulated zone besides what the release itself made (snapshot, image, test server and its
 * root volume, the default security group): what a battery left behind.
 */
async function leftovers(client: ReturnType<typeof createClient>, zone: string, own: { snapshot: string; image: string; server: string }): Promise<string[]> {
  const instance = new Instancev1.API(client);
  const block = new Blockv1.API(client);
  const vpc = new Vpcv2.API(client);
  const server = (await instance.getServer({ zone: zone, serverId: own.server })).server!;
  const root = server.volumes["0"]?.id;
  const z = { zone: zone as never };
  return [
    ...(await instance.listServers(z)).servers.filter((x) => x.id !== own.server).map((x) => `server ${x.name}`),
    ...(await instance.listImages(z)).images.filter((x) => x.id !== own.image).map((x) => `image ${x.name}`),
    ...(await instance.listSecurityGroups(z)).securityGroups.filter((x) => x.id !== server.securityGroup?.id).map((x) => `security group ${x.name}`),
    ...(await instance.listPrivateNICs({ ...z, serverId: own.server })).privateNics.map((x) => `private NIC ${x.id}`),
    ...(await block.listSnapshots({ ...z, includeDeleted: false })).snapshots.filter((x) => x.id !== own.snapshot).map((x) => `snapshot ${x.name}`),
    ...(await block.listVolumes({ ...z, includeDeleted: false })).volumes.filter((x) => x.id !== root).map((x) => `volume ${x.name}`),
    ...(await vpc.listPrivateNetworks({ region: zone.replace(/-\d+$/, "") as never })).privateNetworks.map((x) => `private network ${x.name}`),
  ];
}

/** Deletes the test server and its root volume as the provider would; returns what is wrong or still there. */
export async function removeTestServer(client: ReturnType<typeof createClient>, zone: ReleaseSpec["zone"], serverId: string): Promise<string[]> {
  const instance = new Instancev1.API(client);
  const block = new Blockv1.API(client);
  const s = (await instance.getServer({ zone, serverId })).server!;
  if (s.state !== "stopped") return [`test server ${s.name} is ${s.state} after the battery, not stopped as declared`];
  const root = s.volumes["0"]?.id;
  await instance.deleteServer({ zone, serverId });
  if (root) await block.deleteVolume({ zone, volumeId: root });
  return [
    ...(await instance.listServers({ zone })).servers.map((x) => `server ${x.name} after the test server's removal`),
    ...(await block.listVolumes({ zone, includeDeleted: false })).volumes.map((x) => `volume ${x.name} after the test server's removal`),
  ];
}

export async function releaseThroughEmulator(o: EmulatedReleaseOptions): Promise<EmulatedReleaseResult> {
  const secretKey = randomUUID();
  const accessKey = `SCW${randomBytes(9).toString("hex").toUpperCase().slice(0, 17)}`;
  const projectId = randomUUID();
  const emulator: Emulator = await startEmulator({ stateDir: join(o.stateDir, "scaleway"), secretKey, projectId, zone: o.spec.zone, s3: o.s3, accel: o.accel });
  try {
    const client = createClient({ accessKey, secretKey, defaultProjectId: projectId, defaultZone: o.spec.zone, apiURL: emulator.url });
    const block = new Blockv1.API(client);
    const instance = new Instancev1.API(client);
    const requests = sdkRequests(o.spec, projectId, o.buildDate);
    const zone = o.spec.zone;
    o.log(`scaleway: importing s3://${o.spec.snapshot.import.bucket}/${o.spec.snapshot.import.key} as a block snapshot`);
    const imported = await block.importSnapshotFromObjectStorage(requests.importSnapshot);
    const snap = await block.waitForSnapshot({ zone, snapshotId: imported.id }, { timeout: 900, minDelay: 1, maxDelay: 5 });
    if (snap.status !== "available") throw new Error(`snapshot import ended ${snap.status}`);
    const image = (await instance.createImage(requests.createImage(snap.id))).image!;
    const server = (await instance.createServer(requests.createServer(image.id))).server!;
    o.log(`scaleway: image ${image.id}, test server ${server.id}: running the battery`);
    let passed = true;
    try {
      // The test Command's environment, written as the component writes it.
      const env = testEnvironment(o.spec, {
        serverId: server.id, accessKey, secretKey, projectId, apiUrl: emulator.url, dnsNames: o.dnsNames, only: o.only?.length ? o.only : undefined, report: o.reportFile,
      });
      await run(process.execPath, [o.cli, "test-instance"], { env: { ...process.env, ...env }, streamStderr: true });
    } catch (err) {
      if (!(err instanceof ToolError) || err.code !== 1) throw err;
      passed = false;
      o.log(`scaleway: test server console tail:\n${emulator.console(server.id).slice(-2000)}`);
    }
    const report = JSON.parse(readFileSync(o.reportFile, "utf8")) as { results: CheckResult[] };
    const left = await leftovers(client, zone, { snapshot: snap.id, image: image.id, server: server.id });
    // The stack's second `up`: a passed content hash no longer declares its test Instance, so the provider deletes
    // it and its root volume. The battery must have left it as declared (stopped), or that `up` would see drift.
    if (passed) left.push(...(await removeTestServer(client, zone, server.id)));
    return { imageId: image.id, serverId: server.id, passed, results: report.results, leftovers: left };
  } finally {
    await emulator.close();
  }
}
