/**
 * What the ZonalImage's Scaleway resources do after publish, against the emulated API: import the artifact from
 * Object Storage as a block snapshot, make an Instance image of it, create the test Instance (stopped, as the
 * component does) and run `image-factory test-instance` with the environment the component's test Command gives it.
 * Once the battery passed, the test Instance leaves the zone, as the stack's next `up` removes it.
 */
import type { Client } from "@scaleway/sdk-client";
import { scalewayClient } from "../release/scw-client";
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { Vpcv2 } from "@scaleway/sdk-vpc";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Accelerator } from "../system/accel";
import { startEmulator, type Emulator, type Fault } from "../emulator/api";
import { run, ToolError } from "../system/exec";
import type { CheckResult } from "../release/guest-checks";
import { LineSplitter } from "./progress";
import { sdkRequests, testEnvironment, type ReleaseSpec } from "../core/release-spec";

export interface EmulatedReleaseOptions {
  stateDir: string;
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  /** The release sequence the ZonalImage maps to Pulumi resources (builder/core/release-spec.ts). */
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
  /** Faults the emulated API injects (tests only: builder/emulator/faults.ts). */
  faults?: Fault[];
  /** Called with the emulator once it is up, for a test to read its faults' hits before it closes. */
  onEmulator?: (emulator: Emulator) => void;
  /** How long the snapshot import may take, in seconds (900 by default). */
  importTimeoutS?: number;
  /** Third octet of the 127.0.N.x public IPs: releases running at once need one each (the battery's ports). */
  publicNet?: number;
}

/** A release step that failed, naming it and the zone, with what the zone still held after the run cleaned up. */
export class ReleaseStepError extends Error {
  constructor(
    readonly step: "import" | "image" | "server create",
    readonly zone: string,
    cause: Error,
    readonly leftovers: string[],
  ) {
    super(
      `${zone}: ${step}: ${cause.message}${leftovers.length ? `; and the cleanup left ${leftovers.join(", ")}` : ""}`,
      { cause },
    );
    this.name = "ReleaseStepError";
  }
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
async function leftovers(
  client: Client,
  zone: string,
  own: { snapshot: string; image: string; server: string },
): Promise<string[]> {
  const instance = new Instancev1.API(client);
  const block = new Blockv1.API(client);
  const vpc = new Vpcv2.API(client);
  const server = (await instance.getServer({ zone: zone, serverId: own.server })).server!;
  const root = server.volumes["0"]?.id;
  const z = { zone: zone as never };
  return [
    ...(await instance.listServers(z)).servers.filter((x) => x.id !== own.server).map((x) => `server ${x.name}`),
    ...(await instance.listImages(z)).images.filter((x) => x.id !== own.image).map((x) => `image ${x.name}`),
    ...(await instance.listSecurityGroups(z)).securityGroups
      .filter((x) => x.id !== server.securityGroup?.id)
      .map((x) => `security group ${x.name}`),
    ...(await instance.listPrivateNICs({ ...z, serverId: own.server })).privateNics.map((x) => `private NIC ${x.id}`),
    ...(await block.listSnapshots({ ...z, includeDeleted: false })).snapshots
      .filter((x) => x.id !== own.snapshot)
      .map((x) => `snapshot ${x.name}`),
    ...(await block.listVolumes({ ...z, includeDeleted: false })).volumes
      .filter((x) => x.id !== root)
      .map((x) => `volume ${x.name}`),
    ...(await vpc.listPrivateNetworks({ region: zone.replace(/-\d+$/, "") as never })).privateNetworks.map(
      (x) => `private network ${x.name}`,
    ),
  ];
}

/** Every server, volume, snapshot, image, public IP and non-default security group in the zone. */
async function zoneContents(client: Client, zone: string): Promise<string[]> {
  const instance = new Instancev1.API(client);
  const block = new Blockv1.API(client);
  const z = { zone: zone as never };
  const servers = (await instance.listServers(z)).servers;
  return [
    ...servers.map((x) => `server ${x.name}`),
    ...servers.flatMap((x) => x.publicIps ?? []).map((ip) => `public IP ${ip.address}`),
    ...(await instance.listImages(z)).images.map((x) => `image ${x.name}`),
    ...(await instance.listSecurityGroups(z)).securityGroups
      .filter((g) => !g.projectDefault)
      .map((x) => `security group ${x.name}`),
    ...(await block.listSnapshots({ ...z, includeDeleted: false })).snapshots.map((x) => `snapshot ${x.name}`),
    ...(await block.listVolumes({ ...z, includeDeleted: false })).volumes.map((x) => `volume ${x.name}`),
  ];
}

/** Deletes the test server and its root volume as the provider would; returns what is wrong or still there. */
export async function removeTestServer(client: Client, zone: ReleaseSpec["zone"], serverId: string): Promise<string[]> {
  const instance = new Instancev1.API(client);
  const block = new Blockv1.API(client);
  const s = (await instance.getServer({ zone, serverId })).server!;
  if (s.state !== "stopped") return [`test server ${s.name} is ${s.state} after the battery, not stopped as declared`];
  const root = s.volumes["0"]?.id;
  await instance.deleteServer({ zone, serverId });
  if (root) await block.deleteVolume({ zone, volumeId: root });
  return [
    ...(await instance.listServers({ zone })).servers.map((x) => `server ${x.name} after the test server's removal`),
    ...(await block.listVolumes({ zone, includeDeleted: false })).volumes.map(
      (x) => `volume ${x.name} after the test server's removal`,
    ),
  ];
}

export async function releaseThroughEmulator(o: EmulatedReleaseOptions): Promise<EmulatedReleaseResult> {
  const secretKey = randomUUID();
  const accessKey = `SCW${randomBytes(9).toString("hex").toUpperCase().slice(0, 17)}`;
  const projectId = randomUUID();
  const emulator: Emulator = await startEmulator({
    stateDir: join(o.stateDir, "scaleway"),
    secretKey,
    projectId,
    zone: o.spec.zone,
    s3: o.s3,
    accel: o.accel,
    faults: o.faults,
    publicNet: o.publicNet,
  });
  o.onEmulator?.(emulator);
  try {
    const client = scalewayClient({
      accessKey,
      secretKey,
      defaultProjectId: projectId,
      defaultZone: o.spec.zone,
      apiURL: emulator.url,
    });
    const block = new Blockv1.API(client);
    const instance = new Instancev1.API(client);
    const requests = sdkRequests(o.spec, projectId, o.buildDate);
    const zone = o.spec.zone;
    // What this run made, undone in reverse when a later step fails, as a failed `up` must not leave orphans.
    const made: { what: string; undo: () => Promise<unknown> }[] = [];
    const step = async <T>(name: ReleaseStepError["step"], fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        const left: string[] = [];
        for (const m of made.reverse()) await m.undo().catch((e: Error) => left.push(`${m.what} (${e.message})`));
        left.push(...(await zoneContents(client, zone)));
        throw new ReleaseStepError(name, zone, err as Error, left);
      }
    };
    o.log(
      `scaleway: importing s3://${o.spec.snapshot.import.bucket}/${o.spec.snapshot.import.key} as a block snapshot`,
    );
    const snap = await step("import", async () => {
      const imported = await block.importSnapshotFromObjectStorage(requests.importSnapshot);
      made.push({
        what: `snapshot ${imported.id}`,
        undo: () => block.deleteSnapshot({ zone, snapshotId: imported.id }),
      });
      const ready = await block
        .waitForSnapshot(
          { zone, snapshotId: imported.id },
          { timeout: o.importTimeoutS ?? 900, minDelay: 1, maxDelay: 5 },
        )
        .catch((err: Error) =>
          Promise.reject(
            new Error(`snapshot ${imported.id} not available after ${o.importTimeoutS ?? 900} s: ${err.message}`),
          ),
        );
      if (ready.status !== "available") throw new Error(`snapshot import ended ${ready.status}`);
      return ready;
    });
    const image = await step("image", async () => {
      const created = (await instance.createImage(requests.createImage(snap.id))).image!;
      made.push({ what: `image ${created.id}`, undo: () => instance.deleteImage({ zone, imageId: created.id }) });
      return created;
    });
    const server = await step(
      "server create",
      async () => (await instance.createServer(requests.createServer(image.id))).server!,
    );
    o.log(`scaleway: image ${image.id}, test server ${server.id}: running the battery`);
    let passed = true;
    try {
      // The test Command's environment, written as the component writes it.
      const env = testEnvironment(o.spec, {
        serverId: server.id,
        accessKey,
        secretKey,
        projectId,
        apiUrl: emulator.url,
        dnsNames: o.dnsNames,
        only: o.only?.length ? o.only : undefined,
        report: o.reportFile,
      });
      const lines = new LineSplitter(o.log);
      try {
        await run(process.execPath, [o.cli, "test-instance"], {
          env: { ...process.env, ...env },
          onStderr: (d) => lines.push(d),
        });
      } finally {
        lines.flush();
      }
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
