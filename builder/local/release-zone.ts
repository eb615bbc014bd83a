/**
 * The emulated zone a release runs in, and what the release reads of it: what a battery left behind, what the zone
 * holds after a failed step, and the test server's removal after a pass. A zone outlives one release so that a rerun
 * meets what an earlier run left, as a stack's next `up` meets the zone and the state its last one left.
 */
import type { Client } from "@scaleway/sdk-client";
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { Vpcv2 } from "@scaleway/sdk-vpc";
import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Accelerator } from "../system/accel";
import { startEmulator, type Emulator, type Fault } from "../emulator/api";
import type { ReleaseSpec } from "../core/release-spec";
import { scalewayClient } from "../release/scw-client";

/** The release steps, as a failure names them; `cleanup` is the removal of what the release must not leave. */
export type ReleaseStep = "import" | "image" | "server create" | "cleanup";

/** A release step that failed, naming it and the zone, with what its cleanup could not remove. */
export class ReleaseStepError extends Error {
  constructor(
    readonly step: ReleaseStep,
    readonly zone: string,
    cause: Error,
    /** What the zone still held after the cleanup (nothing, when it worked). */
    readonly leftovers: string[],
    /** Each removal that failed, as `<what> (<error>)`: a failed cleanup fails the run, beside the step's own error. */
    readonly cleanupFailures: string[] = [],
  ) {
    super(
      `${zone}: ${step}: ${cause.message}` +
        (cleanupFailures.length ? `; cleanup failed too: ${cleanupFailures.join("; ")}` : "") +
        (leftovers.length ? `; left behind: ${leftovers.join(", ")}` : ""),
      { cause },
    );
    this.name = "ReleaseStepError";
  }
}

/** What releases in a zone made and did not remove, as a stack's state records it: a rerun adopts it. */
export interface ReleaseState {
  snapshot?: string;
  image?: string;
  server?: string;
  /** The test server's root volume, until its removal is done (it outlives a server deleted first). */
  rootVolume?: string;
}

export interface EmulatedZone {
  emulator: Emulator;
  client: Client;
  zone: ReleaseSpec["zone"];
  accessKey: string;
  secretKey: string;
  projectId: string;
  state: ReleaseState;
}

export interface EmulatedZoneOptions {
  stateDir: string;
  zone: ReleaseSpec["zone"];
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  accel: Accelerator;
  /** Faults the emulated API injects (tests only: builder/emulator/faults.ts). */
  faults?: Fault[];
  /** Third octet of the 127.0.N.x public IPs: zones running at once need one each (the battery's ports). */
  publicNet?: number;
}

/** Starts an emulated zone with credentials of its own; the caller closes its emulator. */
export async function startEmulatedZone(o: EmulatedZoneOptions): Promise<EmulatedZone> {
  const secretKey = randomUUID();
  const accessKey = `SCW${randomBytes(9).toString("hex").toUpperCase().slice(0, 17)}`;
  const projectId = randomUUID();
  const emulator = await startEmulator({
    stateDir: join(o.stateDir, "scaleway"),
    secretKey,
    projectId,
    zone: o.zone,
    s3: o.s3,
    accel: o.accel,
    faults: o.faults,
    publicNet: o.publicNet,
  });
  const client = scalewayClient({
    accessKey,
    secretKey,
    defaultProjectId: projectId,
    defaultZone: o.zone,
    apiURL: emulator.url,
  });
  return { emulator, client, zone: o.zone, accessKey, secretKey, projectId, state: {} };
}

/**
 * Everything in the emulated zone besides what the release itself made (snapshot, image, test server and its
 * root volume, the default security group): what a battery left behind.
 */
export async function leftovers(
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
export async function zoneContents(client: Client, zone: string): Promise<string[]> {
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

const notFound = (e: Error & { status?: number }) => (e.status === 404 ? undefined : Promise.reject(e));

/**
 * Deletes the test server and its root volume as the provider would; returns what is wrong or still there. A
 * removal that fails throws a ReleaseStepError of the `cleanup` step naming what it could not remove; `state`
 * records what is still to remove, so that calling it again finishes a removal that failed half-way.
 */
export async function removeTestServer(
  client: Client,
  zone: ReleaseSpec["zone"],
  serverId: string | undefined,
  state: ReleaseState = {},
): Promise<string[]> {
  const instance = new Instancev1.API(client);
  const block = new Blockv1.API(client);
  const remove = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      const e = err as Error;
      throw new ReleaseStepError(
        "cleanup",
        zone,
        new Error(`removing the ${what}: ${e.message}`, { cause: e }),
        await zoneContents(client, zone),
      );
    }
  };
  const s = serverId ? (await instance.getServer({ zone, serverId }).catch(notFound))?.server : undefined;
  if (s) {
    if (s.state !== "stopped")
      return [`test server ${s.name} is ${s.state} after the battery, not stopped as declared`];
    state.rootVolume = s.volumes["0"]?.id;
    await remove(`test server ${s.name} (${s.id})`, () => instance.deleteServer({ zone, serverId: s.id }));
  }
  delete state.server;
  const root = state.rootVolume;
  if (root)
    await remove(`test server's root volume ${root}`, () =>
      block.deleteVolume({ zone, volumeId: root }).catch(notFound),
    );
  delete state.rootVolume;
  return [
    ...(await instance.listServers({ zone })).servers.map((x) => `server ${x.name} after the test server's removal`),
    ...(await block.listVolumes({ zone, includeDeleted: false })).volumes.map(
      (x) => `volume ${x.name} after the test server's removal`,
    ),
  ];
}
