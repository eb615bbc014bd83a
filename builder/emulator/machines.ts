/** Power transitions of emulated servers: boot and halt their QEMU machine, with its metadata API and forwarded ports. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startMetadataServer } from "../release/metadata-server";
import type { BlockWork } from "./block";
import type { State } from "./context";
import { instanceDate, type PrivateNic, type Server, type Task } from "./model";
import { Machine } from "./machine";
import { rescueSystem } from "./rescue-system";
import { openPorts } from "./security-groups";
import type { Views } from "./views";

export type Machines = ReturnType<typeof machines>;

export function machines(ctx: State, v: Views, work: BlockWork) {
  const { o, zone, volumes, groups, networks, nics, later, get, finish } = ctx;
  const { nicJson } = v;
  const { waitAvailable } = work;
  const metadataConf = (s: Server) => () => ({
    id: s.id,
    name: s.name,
    hostname: s.name,
    organization: o.projectId,
    project: o.projectId,
    commercial_type: s.commercialType,
    tags: s.tags,
    state_detail: s.stateDetail,
    // Keys reach an Instance from the Project and from AUTHORIZED_KEY tags (spaces written as underscores).
    ssh_public_keys: s.tags
      .filter((t) => t.startsWith("AUTHORIZED_KEY="))
      .map((t) => ({ key: t.slice("AUTHORIZED_KEY=".length).replace(/_/g, " ") })),
    public_ip: s.publicIp ? { id: s.ipId, address: s.publicIp, dynamic: true, family: "inet" } : null,
    public_ips_v4: s.publicIp ? [{ address: s.publicIp }] : [],
    private_ip: null,
    ipv6: null,
    location: { zone_id: zone },
    zone,
    timezone: "UTC",
    bootscript: null,
    volumes: Object.fromEntries(
      s.volumeIds.map((id, n) => [String(n), { id, name: volumes.get(id)?.name ?? "", volume_type: "sbs_volume" }]),
    ),
    private_nics: [...nics.values()].filter((n) => n.serverId === s.id).map(nicJson),
  });

  const subnetOf = (nic: PrivateNic) => get(networks, nic.privateNetworkId, "private_network").subnet;

  async function boot(s: Server): Promise<void> {
    const dir = join(s.dir, `boot-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    s.metadata ??= await startMetadataServer(metadataConf(s), {
      userData: s.userData,
      // The metadata API meets the zone's faults too, named by the guest's request (`GET /conf`).
      inject: (op, query) => ctx.faults.request(op, query),
    });
    // A server made a moment ago may still have its root volume being written.
    for (const id of s.volumeIds) await waitAvailable(get(volumes, id, "volume"));
    const disks = s.volumeIds.map((id) => ({ id, file: get(volumes, id, "volume").file }));
    // Rescue boots the rescue system (rescue-system.ts) with the server's volumes attached, none of them booted.
    const kernel = s.bootType === "rescue" ? await rescueSystem() : undefined;
    const machine = new Machine({
      dir,
      accel: o.accel,
      firmware: o.firmware ?? "bios",
      memoryMiB: 1024,
      commercialType: s.commercialType,
      disks,
      nics: [...nics.values()]
        .filter((n) => n.serverId === s.id)
        .map((n) => ({ id: n.id, mac: n.mac, subnet: subnetOf(n) })),
      publicMac: s.mac,
      publicIp: s.publicIp ?? "127.255.255.254",
      metadataPort: s.metadata.port,
      metadataProxy: (path) => s.metadata!.listenProxied(path),
      kernel,
    });
    s.machine = machine;
    await machine.start();
    await machine.forwardPorts(s.publicIp ? openPorts(get(groups, s.securityGroupId, "security_group")) : []);
    s.bootedType = s.bootType;
  }

  async function halt(s: Server): Promise<void> {
    await s.machine?.powerOff();
    s.machine = undefined;
  }

  function transition(s: Server, t: Task, during: string, detail: string, work: () => Promise<void>, after: string) {
    s.state = during;
    s.stateDetail = detail;
    s.busy = true;
    later(async () => {
      try {
        await work();
        s.state = after;
        // The recorded details: "booting kernel" while running, "stopped in place", nothing once stopped.
        s.stateDetail = after === "running" ? "booting kernel" : after === "stopped in place" ? after : "";
        finish(t, true);
      } catch (err) {
        s.state = "stopped";
        s.stateDetail = `error: ${(err as Error).message}`.slice(0, 200);
        await halt(s).catch(() => undefined);
        finish(t, false);
      } finally {
        s.busy = false;
        s.modified = instanceDate();
      }
    });
  }

  return { boot, halt, transition };
}
