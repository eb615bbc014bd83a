/**
 * A Scaleway API emulator for the `local` stack and the test battery: the Instance (`/instance/v1`), Block Storage
 * (`/block/v1`) and VPC (`/vpc/v2`) endpoints the factory and its test runner use, on loopback, with the shapes,
 * status codes, state names and error bodies of the recorded real API. Instances are real QEMU machines: volumes
 * are qcow2 files, snapshots are copies (point-in-time through QMP while running), a server's public IPv4 is a
 * loopback address whose forwarded ports follow its security group, Private Network NICs are hot-plugged NICs
 * with DHCP, and the metadata API with user data answers inside each guest at 169.254.42.42.
 */
import { S3Client, GetBucketLocationCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { randomBytes, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream, mkdirSync, rmSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import type { Accelerator } from "../accel";
import { run } from "../exec";
import { startMetadataServer, type MetadataServer } from "../testing/metadata-server";
import { bucketRefusal, imageRefusal, QemuImgInfo, type Refusal } from "./import-rules";
import { Machine } from "./machine";
import { rescueSystem } from "./rescue-system";

export interface EmulatorOptions {
  stateDir: string;
  /** The secret key callers must send as X-Auth-Token. */
  secretKey: string;
  projectId: string;
  zone: string;
  /** Where `import-from-object-storage` reads buckets. */
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  accel: Accelerator;
  firmware?: "bios" | "uefi";
  /** Third octet of the loopback network public IPv4s come from (127.0.N.x). */
  publicNet?: number;
  port?: number;
}

export interface Exchange {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

export interface Emulator {
  url: string;
  exchanges: Exchange[];
  /** Serial console of an emulated server, for a failing test's post-mortem. */
  console(serverId: string): string;
  close(): Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.message));
  }
}
const notFound = (resource: string, id: string) => new ApiError(404, { type: "not_found", message: "resource is not found", resource, resource_id: id });
const invalid = (message: string, details: Record<string, unknown> = {}) => new ApiError(400, { type: "invalid_arguments", message, ...details });
// The SDKs' PreconditionFailedError: `precondition` (`resource_still_in_use`…) and a `help_message`
// (scaleway-sdk-go, scw/errors.go).
const precondition = (message: string) => new ApiError(412, { type: "precondition_failed", message, precondition: "resource_still_in_use", help_message: message });
// The SDKs' InvalidArgumentsError: one `details` entry per argument, with a reason and a help message (same source).
const invalidArguments = (details: Refusal[]) => new ApiError(400, { type: "invalid_arguments", message: "invalid argument(s)", details });
/** An update the emulator cannot carry out: refused, naming the field, so a test never passes on an ignored change. */
const notEmulated = (field: string, what: string) =>
  new ApiError(501, { type: "not_implemented", message: `the emulator does not implement ${what}`, fields: { [field]: ["not emulated"] } });

const instanceDate = () => new Date().toISOString().replace("Z", "+00:00");
const blockDate = () => new Date().toISOString();

interface Volume {
  id: string; name: string; size: number; status: string; file: string; perfIops: number;
  parentSnapshotId: string | null; tags: string[]; serverId: string | null; refId: string;
  created: string; updated: string; lastDetached: string | null;
}
interface Snapshot {
  id: string; name: string; size: number; status: string; file: string; tags: string[];
  parentVolume: { id: string; name: string; status: string; type: string } | null; created: string; updated: string;
}
interface Image {
  id: string; name: string; rootSnapshotId: string; extraSnapshotIds: string[]; arch: string; state: string;
  tags: string[]; fromServer: string; created: string; modified: string; public: boolean;
  /** The block reference each of its snapshots carries while the image exists, by snapshot id. */
  refs: Record<string, { id: string; created: string }>;
}
interface Rule {
  id: string; protocol: string; direction: string; action: string; ip_range: string;
  dest_port_from: number | null; dest_port_to: number | null; position: number; editable: boolean;
}
interface SecurityGroup {
  id: string; name: string; description: string; inbound: string; outbound: string; stateful: boolean;
  rules: Rule[]; projectDefault: boolean; tags: string[]; created: string; modified: string;
}
interface PrivateNetwork { id: string; name: string; subnet: string; subnetId: string; tags: string[]; created: string; updated: string; region: string }
interface PrivateNic { id: string; serverId: string; privateNetworkId: string; mac: string; state: string; tags: string[]; created: string }
interface Task { id: string; description: string; status: string; hrefFrom: string; hrefResult: string; started: string; terminated: string | null; progress: number }
interface Server {
  id: string; name: string; commercialType: string; imageId: string; volumeIds: string[]; state: string; stateDetail: string;
  bootType: string; bootedType: string; tags: string[]; securityGroupId: string; publicIp: string | null; ipId: string;
  mac: string; userData: Map<string, string>; dir: string; created: string; modified: string; busy: boolean;
  machine?: Machine; metadata?: MetadataServer;
}

/** Commercial types the emulator offers, with the recorded products' cpus and memory (machines boot smaller). */
const PRODUCTS: Record<string, { ncpus: number; ram: number; arch: string }> = {
  "DEV1-S": { ncpus: 2, ram: 2 * 1024 ** 3, arch: "x86_64" },
  "DEV1-M": { ncpus: 3, ram: 4 * 1024 ** 3, arch: "x86_64" },
  "PLAY2-PICO": { ncpus: 1, ram: 2 * 1024 ** 3, arch: "x86_64" },
  "PLAY2-NANO": { ncpus: 2, ram: 4 * 1024 ** 3, arch: "x86_64" },
  "PRO2-XXS": { ncpus: 2, ram: 8 * 1024 ** 3, arch: "x86_64" },
};
/** Ports a security group can open on an emulated public IP, besides those its rules name. */
const WATCHED_PORTS = [22, 80, 443];

export async function startEmulator(o: EmulatorOptions): Promise<Emulator> {
  mkdirSync(o.stateDir, { recursive: true });
  const volumes = new Map<string, Volume>();
  const snapshots = new Map<string, Snapshot>();
  const images = new Map<string, Image>();
  const servers = new Map<string, Server>();
  const groups = new Map<string, SecurityGroup>();
  const networks = new Map<string, PrivateNetwork>();
  const nics = new Map<string, PrivateNic>();
  const tasks = new Map<string, Task>();
  const exchanges: Exchange[] = [];
  const s3 = new S3Client({
    endpoint: o.s3.endpoint, region: o.s3.region, forcePathStyle: true,
    credentials: { accessKeyId: o.s3.accessKeyId, secretAccessKey: o.s3.secretAccessKey },
  });
  let nextIp = 2;
  let nextSubnet = 0;
  const zone = o.zone;
  const region = zone.replace(/-\d+$/, "");
  const file = (kind: string, id: string) => join(o.stateDir, kind, `${id}.qcow2`);
  mkdirSync(join(o.stateDir, "volumes"), { recursive: true });
  mkdirSync(join(o.stateDir, "snapshots"), { recursive: true });
  const later = (fn: () => Promise<void>) => void fn().catch((err: Error) => process.stderr.write(`emulator: ${err.message}\n`));

  // ---- JSON views, field for field as the recorded API answers ----------------------------------------------
  const volumeJson = (v: Volume) => ({
    id: v.id, name: v.name, type: "sbs_5k", size: v.size, project_id: o.projectId, created_at: v.created, updated_at: v.updated,
    references: v.serverId
      ? [{ id: v.refId, product_resource_type: "instance_server", product_resource_id: v.serverId, created_at: v.updated, type: "exclusive", status: "attached" }]
      : [],
    parent_snapshot_id: v.parentSnapshotId, status: v.status, tags: v.tags, specs: { perf_iops: v.perfIops, class: "sbs" },
    last_detached_at: v.lastDetached, kms_key_id: null, zone,
  });
  /** An image holds its snapshots with a `link` reference, and they are `in_use` until it is deleted (recorded). */
  const snapshotRefs = (s: Snapshot) =>
    [...images.values()].filter((i) => i.refs[s.id]).map((i) => ({
      id: i.refs[s.id]!.id, product_resource_type: "instance_image", product_resource_id: i.id, created_at: i.refs[s.id]!.created, type: "link", status: "attached",
    }));
  const snapshotJson = (s: Snapshot) => {
    const references = snapshotRefs(s);
    return {
      id: s.id, name: s.name, parent_volume: s.parentVolume, size: s.size, project_id: o.projectId, created_at: s.created,
      updated_at: s.updated, references, status: s.status === "available" && references.length ? "in_use" : s.status, tags: s.tags, class: "sbs", public: false, zone,
    };
  };
  const linkSnapshots = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, { id: randomUUID(), created: blockDate() }]));
  const imageJson = (i: Image) => ({
    id: i.id, name: i.name, organization: o.projectId, project: o.projectId,
    root_volume: { volume_type: "sbs_snapshot", id: i.rootSnapshotId, size: snapshots.get(i.rootSnapshotId)?.size ?? 0, name: snapshots.get(i.rootSnapshotId)?.name ?? "" },
    extra_volumes: Object.fromEntries(i.extraSnapshotIds.map((id, n) => [String(n + 1), { volume_type: "sbs_snapshot", id, size: snapshots.get(id)?.size ?? 0, name: snapshots.get(id)?.name ?? "" }])),
    public: i.public, arch: i.arch, creation_date: i.created, modification_date: i.modified, default_bootscript: null,
    from_server: i.fromServer, state: i.state, tags: i.tags, zone,
  });
  const ipJson = (s: Server) => ({
    id: s.ipId, address: s.publicIp, dynamic: true, gateway: "169.254.2.2", netmask: "32", family: "inet",
    provisioning_mode: "dhcp", tags: [], state: "attached", ipam_id: s.ipId,
  });
  const nicJson = (n: PrivateNic) => ({
    id: n.id, server_id: n.serverId, private_network_id: n.privateNetworkId, mac_address: n.mac, state: n.state,
    tags: n.tags, creation_date: n.created, zone,
  });
  const groupRef = (g: SecurityGroup) => ({ id: g.id, name: g.name });
  const allowedActions = (s: Server) =>
    ({
      running: ["poweroff", "terminate", "reboot", "stop_in_place", "backup"],
      stopped: ["poweron", "backup"],
      "stopped in place": ["poweron", "poweroff", "backup"],
    })[s.state] ?? [];
  const serverJson = (s: Server) => {
    const image = images.get(s.imageId);
    return {
      id: s.id, name: s.name, arch: "x86_64", commercial_type: s.commercialType, boot_type: s.bootType,
      organization: o.projectId, project: o.projectId, hostname: s.name, image: image ? imageJson(image) : null,
      volumes: Object.fromEntries(
        s.volumeIds.map((id, n) => [String(n), { boot: false, volume_type: "sbs_volume", id, state: "available", zone }]),
      ),
      tags: s.tags, state: s.state, protected: false, state_detail: s.stateDetail,
      public_ip: s.publicIp ? ipJson(s) : null, public_ips: s.publicIp ? [ipJson(s)] : [], mac_address: s.mac,
      routed_ip_enabled: true, ipv6: null, extra_networks: [], dynamic_ip_required: Boolean(s.publicIp), enable_ipv6: false,
      private_ip: null, creation_date: s.created, modification_date: s.modified, bootscript: null,
      security_group: groupRef(groups.get(s.securityGroupId)!), location: s.machine?.running ? { zone_id: zone, platform_id: "emulated", cluster_id: "qemu", hypervisor_id: "local", node_id: s.id.slice(0, 8) } : null,
      maintenances: [], allowed_actions: allowedActions(s), placement_group: null,
      private_nics: [...nics.values()].filter((n) => n.serverId === s.id).map(nicJson), zone, filesystems: [], end_of_service: false,
      dns: `${s.id}.pub.instances.scw.cloud`,
    };
  };
  const ruleJson = (r: Rule) => ({ ...r, zone });
  const groupJson = (g: SecurityGroup) => ({
    id: g.id, name: g.name, description: g.description, enable_default_security: true,
    inbound_default_policy: g.inbound, outbound_default_policy: g.outbound, organization: o.projectId, project: o.projectId,
    organization_default: false, project_default: g.projectDefault, creation_date: g.created, modification_date: g.modified,
    servers: [...servers.values()].filter((s) => s.securityGroupId === g.id).map((s) => ({ id: s.id, name: s.name })),
    stateful: g.stateful, state: "available", tags: g.tags, zone,
  });
  const networkJson = (n: PrivateNetwork) => ({
    id: n.id, name: n.name, organization_id: o.projectId, project_id: o.projectId, region: n.region, tags: n.tags,
    created_at: n.created, updated_at: n.updated, vpc_id: "00000000-0000-4000-8000-00000000000a", dhcp_enabled: true, default_route_propagation_enabled: false,
    subnets: [{ id: n.subnetId, created_at: n.created, updated_at: n.updated, subnet: n.subnet, project_id: o.projectId, private_network_id: n.id, vpc_id: "00000000-0000-4000-8000-00000000000a" }],
  });
  const taskJson = (t: Task) => ({
    id: t.id, description: t.description, status: t.status, href_from: t.hrefFrom, href_result: t.hrefResult,
    started_at: t.started, terminated_at: t.terminated, progress: t.progress, zone,
  });

  // ---- helpers ------------------------------------------------------------------------------------------------
  const get = <T>(m: Map<string, T>, id: string, resource: string): T => {
    const v = m.get(id);
    if (!v) throw notFound(resource, id);
    return v;
  };
  const defaultGroup = (): SecurityGroup => {
    const found = [...groups.values()].find((g) => g.projectDefault);
    if (found) return found;
    const g: SecurityGroup = {
      id: randomUUID(), name: "Default security group", description: "Auto generated security group.", inbound: "accept", outbound: "accept",
      stateful: true, rules: [], projectDefault: true, tags: [], created: instanceDate(), modified: instanceDate(),
    };
    groups.set(g.id, g);
    return g;
  };
  const newMac = () => `de:00:00:${[0, 0, 0].map(() => randomBytes(1).toString("hex")).join(":")}`;
  const task = (description: string, s: Server): Task => {
    const t: Task = {
      id: randomUUID(), description, status: "pending", hrefFrom: `/servers/${s.id}/action`, hrefResult: `/servers/${s.id}`,
      started: instanceDate(), terminated: null, progress: 0,
    };
    tasks.set(t.id, t);
    return t;
  };
  const finish = (t: Task, ok: boolean) => Object.assign(t, { status: ok ? "success" : "failure", terminated: instanceDate(), progress: 100 });
  const copyQcow2 = (from: string, to: string, sizeBytes?: number) =>
    run("qemu-img", ["convert", "-q", "-O", "qcow2", from, to]).then(async () => {
      if (sizeBytes) {
        const info = JSON.parse((await run("qemu-img", ["info", "--output=json", to])).stdout) as { "virtual-size": number };
        if (info["virtual-size"] < sizeBytes) await run("qemu-img", ["resize", "-q", to, String(sizeBytes)]);
      }
    });

  /** The security group's verdict on inbound TCP to each port worth forwarding. */
  const openPorts = (g: SecurityGroup): number[] => {
    const named = g.rules.flatMap((r) =>
      r.dest_port_from !== null && (r.dest_port_to ?? r.dest_port_from) - r.dest_port_from < 16
        ? Array.from({ length: (r.dest_port_to ?? r.dest_port_from) - r.dest_port_from + 1 }, (_, i) => r.dest_port_from! + i)
        : [],
    );
    const candidates = [...new Set([...WATCHED_PORTS, ...named])];
    const inbound = g.rules.filter((r) => r.direction === "inbound" && (r.protocol === "TCP" || r.protocol === "ANY")).sort((a, b) => a.position - b.position);
    return candidates.filter((port) => {
      const rule = inbound.find((r) => r.dest_port_from === null || (port >= r.dest_port_from && port <= (r.dest_port_to ?? r.dest_port_from)));
      return (rule ? rule.action : g.inbound) === "accept";
    });
  };
  const applyGroup = async (g: SecurityGroup) => {
    for (const s of servers.values())
      if (s.securityGroupId === g.id && s.machine?.running) await s.machine.forwardPorts(openPorts(g));
  };

  const metadataConf = (s: Server) => () => ({
    id: s.id, name: s.name, hostname: s.name, organization: o.projectId, project: o.projectId, commercial_type: s.commercialType,
    tags: s.tags, state_detail: s.stateDetail,
    // Keys reach an Instance from the Project and from AUTHORIZED_KEY tags (spaces written as underscores).
    ssh_public_keys: s.tags.filter((t) => t.startsWith("AUTHORIZED_KEY=")).map((t) => ({ key: t.slice("AUTHORIZED_KEY=".length).replace(/_/g, " ") })),
    public_ip: s.publicIp ? { id: s.ipId, address: s.publicIp, dynamic: true, family: "inet" } : null,
    public_ips_v4: s.publicIp ? [{ address: s.publicIp }] : [], private_ip: null, ipv6: null,
    location: { zone_id: zone }, zone, timezone: "UTC", bootscript: null,
    volumes: Object.fromEntries(s.volumeIds.map((id, n) => [String(n), { id, name: volumes.get(id)?.name ?? "", volume_type: "sbs_volume" }])),
    private_nics: [...nics.values()].filter((n) => n.serverId === s.id).map(nicJson),
  });

  const subnetOf = (nic: PrivateNic) => get(networks, nic.privateNetworkId, "private_network").subnet;

  async function boot(s: Server): Promise<void> {
    const dir = join(s.dir, `boot-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    s.metadata ??= await startMetadataServer(metadataConf(s), { userData: s.userData });
    // A server made a moment ago may still have its root volume being written.
    for (const id of s.volumeIds) await waitAvailable(get(volumes, id, "volume"));
    const disks = s.volumeIds.map((id) => ({ id, file: get(volumes, id, "volume").file }));
    // Rescue boots the rescue system (rescue-system.ts) with the server's volumes attached, none of them booted.
    const kernel = s.bootType === "rescue" ? await rescueSystem() : undefined;
    const machine = new Machine({
      dir, accel: o.accel, firmware: o.firmware ?? "bios", memoryMiB: 1024, commercialType: s.commercialType, disks,
      nics: [...nics.values()].filter((n) => n.serverId === s.id).map((n) => ({ id: n.id, mac: n.mac, subnet: subnetOf(n) })),
      publicMac: s.mac, publicIp: s.publicIp ?? "127.255.255.254", metadataPort: s.metadata.port, kernel,
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

  async function snapshotVolume(v: Volume, name: string, tags: string[]): Promise<Snapshot> {
    const snap: Snapshot = {
      id: randomUUID(), name, size: v.size, status: "creating", file: "", tags,
      parentVolume: { id: v.id, name: v.name, status: v.status, type: "sbs_5k" }, created: blockDate(), updated: blockDate(),
    };
    snap.file = file("snapshots", snap.id);
    snapshots.set(snap.id, snap);
    const server = v.serverId ? servers.get(v.serverId) : undefined;
    const work = server?.machine?.running && server.bootedType === "local"
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
      id: randomUUID(), name, size, status: "creating", file: "", perfIops, parentSnapshotId: from?.id ?? null, tags,
      serverId: null, refId: randomUUID(), created: blockDate(), updated: blockDate(), lastDetached: null,
    };
    v.file = file("volumes", v.id);
    volumes.set(v.id, v);
    const work = from ? copyQcow2(from.file, v.file, size) : run("qemu-img", ["create", "-q", "-f", "qcow2", v.file, String(size)]).then(() => undefined);
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

  // ---- routes ---------------------------------------------------------------------------------------------------
  type Reply = [number, unknown] | [number, unknown, Record<string, string>];
  type Handler = (m: string[], body: Record<string, unknown>, q: URLSearchParams) => Promise<Reply> | Reply;
  /** One page of a list, as the real API pages it: `page` from 1, `per_page` (Instance) or `page_size` (Block), 50 by default, 100 at most. */
  const paged = <T>(items: T[], q: URLSearchParams, sizeParam: "per_page" | "page_size"): T[] => {
    const page = Number(q.get("page") ?? 1);
    const size = Number(q.get(sizeParam) ?? 50);
    if (!Number.isInteger(page) || page < 1) throw invalid("page must be a whole number from 1", { fields: { page: ["must be >= 1"] } });
    if (!Number.isInteger(size) || size < 1 || size > 100) throw invalid(`${sizeParam} must be between 1 and 100`, { fields: { [sizeParam]: ["must be between 1 and 100"] } });
    return items.slice((page - 1) * size, page * size);
  };
  /** An Instance API list: the page, and the total in `X-Total-Count` as the real API sends it. */
  const instanceList = <T>(key: string, items: T[], q: URLSearchParams): Reply => [200, { [key]: paged(items, q, "per_page") }, { "x-total-count": String(items.length) }];
  const routes: [string, RegExp, Handler][] = [];
  const route = (method: string, pattern: string, h: Handler) =>
    routes.push([method, new RegExp(`^${pattern.replace(/\{[a-z_]+\}/g, "([A-Za-z0-9_.-]+)")}$`), h]);
  const I = `/instance/v1/zones/${zone}`;
  const B = `/block/v1/zones/${zone}`;
  const V = `/vpc/v2/regions/${region}`;
  const str = (v: unknown, field: string): string => {
    if (typeof v !== "string" || !v) throw invalid(`${field} is required`, { fields: { [field]: ["required"] } });
    return v;
  };
  const tagsOf = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  /**
   * Refuses an update the emulator would otherwise ignore (a resize, new IOPS, another commercial type, other
   * volumes): only the `handled` fields change anything; any other field passes only when it restates the current
   * value (`same`, else equal to `current[field]`).
   */
  const refuseUnemulated = (
    b: Record<string, unknown>, handled: string[], current: Record<string, unknown>, what: string,
    same: Record<string, (v: unknown) => boolean> = {},
  ) => {
    for (const [field, value] of Object.entries(b)) {
      if (handled.includes(field) || value === undefined) continue;
      const unchanged = same[field] ? same[field](value) : JSON.stringify(value) === JSON.stringify(current[field]);
      if (!unchanged) throw notEmulated(field, `changing a ${what}'s ${field}`);
    }
  };

  // Paged like any Instance list (the recorded lookups read pages 1 to 3 until one comes back short).
  route("GET", `${I}/products/servers`, (_, __, q) => [200, {
    servers: Object.fromEntries(paged(Object.entries(PRODUCTS), q, "per_page").map(([k, p]) => [k, {
      alt_names: [], arch: p.arch, ncpus: p.ncpus, ram: p.ram, gpu: 0, gpu_info: null, mig_profile: null,
      volumes_constraint: { min_size: 0, max_size: 0 }, per_volume_constraint: { l_ssd: { min_size: 0, max_size: 0 } },
      scratch_storage_max_size: 0, scratch_storage_max_volumes_count: 0, monthly_price: 0, hourly_price: 0,
      capabilities: { boot_types: ["local", "rescue"], placement_groups: true, block_storage: true, hot_snapshots_local_volume: false, private_network: 8, max_file_systems: 0 },
      network: { ipv6_support: true, sum_internal_bandwidth: 0, sum_internet_bandwidth: 0, interfaces: [] }, block_bandwidth: 0, end_of_service: false,
    }])),
  }, { "x-total-count": String(Object.keys(PRODUCTS).length) }]);

  // Servers
  route("GET", `${I}/servers`, (_, __, q) => instanceList("servers", [...servers.values()].map(serverJson), q));
  route("POST", `${I}/servers`, async (_, b) => {
    const name = str(b.name, "name");
    const type = str(b.commercial_type, "commercial_type");
    if (!PRODUCTS[type]) throw invalid(`commercial_type ${type} is not available in ${zone}`, { fields: { commercial_type: ["invalid"] } });
    const image = get(images, str(b.image, "image"), "instance_image");
    const root = ((b.volumes as Record<string, { size?: number; volume_type?: string }> | undefined) ?? {})["0"] ?? {};
    if (root.volume_type && root.volume_type !== "sbs_volume") throw invalid(`volume_type ${root.volume_type} is not emulated: use sbs_volume`);
    const rootSnap = get(snapshots, image.rootSnapshotId, "snapshot");
    const s: Server = {
      id: randomUUID(), name, commercialType: type, imageId: image.id, volumeIds: [], state: "stopped", stateDetail: "",
      bootType: typeof b.boot_type === "string" ? b.boot_type : "local", bootedType: "local", tags: tagsOf(b.tags),
      securityGroupId: typeof b.security_group === "string" ? get(groups, b.security_group, "security_group").id : defaultGroup().id,
      publicIp: b.dynamic_ip_required === false ? null : `127.0.${o.publicNet ?? 42}.${nextIp++}`, ipId: randomUUID(), mac: newMac(),
      userData: new Map(), dir: "", created: instanceDate(), modified: instanceDate(), busy: false,
    };
    s.dir = join(o.stateDir, "servers", s.id);
    mkdirSync(s.dir, { recursive: true });
    const vol = createVolume(`${image.name}_sbs_volume_0`, Math.max(root.size ?? rootSnap.size, rootSnap.size), 5000, [], rootSnap);
    vol.serverId = s.id;
    s.volumeIds.push(vol.id);
    servers.set(s.id, s);
    return [201, { server: serverJson(s) }];
  });
  route("GET", `${I}/servers/{id}`, (m) => [200, { server: serverJson(get(servers, m[0]!, "instance_server")) }]);
  route("PATCH", `${I}/servers/{id}`, async (m, b) => {
    const s = get(servers, m[0]!, "instance_server");
    refuseUnemulated(b, ["name", "tags", "boot_type", "security_group"], serverJson(s) as Record<string, unknown>, "server", {
      volumes: (v) => {
        const ids = Object.entries((v as Record<string, { id?: string }> | null) ?? {}).sort(([a], [b]) => Number(a) - Number(b)).map(([, x]) => x.id);
        return ids.length === s.volumeIds.length && ids.every((id, n) => id === s.volumeIds[n]);
      },
    });
    if (typeof b.name === "string") s.name = b.name;
    if (Array.isArray(b.tags)) s.tags = tagsOf(b.tags);
    if (b.boot_type !== undefined) {
      if (b.boot_type !== "local" && b.boot_type !== "rescue") throw invalid(`boot_type ${String(b.boot_type)} is not supported`, { fields: { boot_type: ["invalid"] } });
      s.bootType = b.boot_type;
    }
    if (b.security_group && typeof b.security_group === "object") {
      const g = get(groups, str((b.security_group as { id?: unknown }).id, "security_group.id"), "security_group");
      s.securityGroupId = g.id;
      await applyGroup(g);
    }
    s.modified = instanceDate();
    return [200, { server: serverJson(s) }];
  });
  route("DELETE", `${I}/servers/{id}`, async (m) => {
    const s = get(servers, m[0]!, "instance_server");
    if (s.state !== "stopped") throw invalid("instance must be stopped to be deleted", { type: "invalid_request_error" });
    for (const id of s.volumeIds) {
      const v = volumes.get(id);
      if (v) Object.assign(v, { serverId: null, status: "available", lastDetached: blockDate() });
    }
    for (const n of [...nics.values()].filter((n) => n.serverId === s.id)) nics.delete(n.id);
    await s.metadata?.close();
    servers.delete(s.id);
    rmSync(s.dir, { recursive: true, force: true });
    return [204, undefined];
  });
  route("POST", `${I}/servers/{id}/action`, async (m, b) => {
    const s = get(servers, m[0]!, "instance_server");
    const action = str(b.action, "action");
    if (s.busy || !allowedActions(s).includes(action))
      throw invalid(`action ${action} is not allowed while the server is ${s.state}${s.busy ? " (busy)" : ""}`, { type: "invalid_request_error" });
    const t = task(`server_batch_${action}`, s);
    switch (action) {
      case "poweron":
        transition(s, t, "starting", s.state === "stopped in place" ? "starting in place" : "allocating node", () => boot(s), "running");
        break;
      case "poweroff":
        transition(s, t, "stopping", "stopping", () => halt(s), "stopped");
        break;
      case "stop_in_place":
        transition(s, t, "stopping", "stopping in place", () => halt(s), "stopped in place");
        break;
      case "reboot":
        transition(s, t, "starting", "rebooting", async () => {
          // A new boot mode (rescue or back) needs other disks: a full restart; otherwise a reset, as on Scaleway.
          if (s.bootType !== s.bootedType) {
            await halt(s);
            await boot(s);
          } else await s.machine!.reset();
        }, "running");
        break;
      case "terminate":
        transition(s, t, "stopping", "terminating", async () => {
          await halt(s);
          for (const id of s.volumeIds) Object.assign(volumes.get(id) ?? {}, { serverId: null, status: "available" });
          await s.metadata?.close();
          servers.delete(s.id);
        }, "stopped");
        break;
      case "backup": {
        const name = typeof b.name === "string" && b.name ? b.name : `${s.name}-backup`;
        const snaps = await Promise.all(s.volumeIds.map((id, n) => snapshotVolume(get(volumes, id, "volume"), `${name}-${n}`, [])));
        const image: Image = {
          id: randomUUID(), name, rootSnapshotId: snaps[0]!.id, extraSnapshotIds: snaps.slice(1).map((x) => x.id), arch: "x86_64",
          state: "creating", tags: [], fromServer: s.id, created: instanceDate(), modified: instanceDate(), public: false,
          refs: linkSnapshots(snaps.map((x) => x.id)),
        };
        images.set(image.id, image);
        t.hrefResult = `/images/${image.id}`;
        later(async () => {
          for (let i = 0; i < 2400 && snaps.some((x) => x.status === "creating"); i++) await new Promise((r) => setTimeout(r, 250));
          image.state = snaps.every((x) => x.status === "available") ? "available" : "error";
          finish(t, image.state === "available");
        });
        // The answer is the task alone; its href_result names the image (`/images/<id>`), as Scaleway's CLI and
        // Packer plugin read it (scaleway-cli `instance server backup`, packer-plugin-scaleway's backup step).
        return [202, { task: taskJson(t) }];
      }
      default:
        throw invalid(`action ${action} is not emulated`);
    }
    return [202, { task: taskJson(t) }];
  });
  route("GET", `${I}/tasks/{id}`, (m) => [200, { task: taskJson(get(tasks, m[0]!, "task")) }]);
  route("GET", `${I}/servers/{id}/user_data`, (m) => [200, { user_data: [...get(servers, m[0]!, "instance_server").userData.keys()] }]);
  route("GET", `${I}/servers/{id}/user_data/{key}`, (m) => {
    const v = get(servers, m[0]!, "instance_server").userData.get(m[1]!);
    if (v === undefined) throw notFound("instance_user_data", m[1]!);
    return [200, Buffer.from(v)];
  });
  route("PATCH", `${I}/servers/{id}/user_data/{key}`, (m, b) => {
    get(servers, m[0]!, "instance_server").userData.set(m[1]!, String(b.__raw ?? ""));
    return [204, undefined];
  });
  route("DELETE", `${I}/servers/{id}/user_data/{key}`, (m) => {
    get(servers, m[0]!, "instance_server").userData.delete(m[1]!);
    return [204, undefined];
  });
  route("POST", `${I}/servers/{id}/attach-volume`, async (m, b) => {
    const s = get(servers, m[0]!, "instance_server");
    const v = get(volumes, str(b.volume_id, "volume_id"), "volume");
    if (v.serverId) throw precondition(`volume ${v.id} is already attached to ${v.serverId}`);
    if (v.status !== "available") throw precondition(`volume ${v.id} is ${v.status}`);
    if (s.machine?.running) await s.machine.attachDisk({ id: v.id, file: v.file });
    Object.assign(v, { serverId: s.id, status: "in_use", updated: blockDate(), refId: randomUUID() });
    s.volumeIds.push(v.id);
    return [200, { server: serverJson(s) }];
  });
  route("POST", `${I}/servers/{id}/detach-volume`, async (m, b) => {
    const s = get(servers, m[0]!, "instance_server");
    const v = get(volumes, str(b.volume_id, "volume_id"), "volume");
    if (v.serverId !== s.id) throw invalid(`volume ${v.id} is not attached to server ${s.id}`);
    if (s.volumeIds[0] === v.id) throw invalid("the root volume cannot be detached");
    if (s.machine?.running) await s.machine.detachDisk(v.id);
    Object.assign(v, { serverId: null, status: "available", updated: blockDate(), lastDetached: blockDate() });
    s.volumeIds = s.volumeIds.filter((id) => id !== v.id);
    return [200, { server: serverJson(s) }];
  });
  route("GET", `${I}/volumes/{id}`, (m) => {
    throw notFound("instance_volume", m[0]!);
  });

  // Private NICs
  route("GET", `${I}/servers/{id}/private_nics`, (m) => [200, { private_nics: [...nics.values()].filter((n) => n.serverId === get(servers, m[0]!, "instance_server").id).map(nicJson) }]);
  route("POST", `${I}/servers/{id}/private_nics`, async (m, b) => {
    const s = get(servers, m[0]!, "instance_server");
    const pn = get(networks, str(b.private_network_id, "private_network_id"), "private_network");
    const n: PrivateNic = { id: randomUUID(), serverId: s.id, privateNetworkId: pn.id, mac: newMac().replace(/^de:00:00/, "02:00:00"), state: "syncing", tags: tagsOf(b.tags), created: instanceDate() };
    nics.set(n.id, n);
    later(async () => {
      if (s.machine?.running) await s.machine.attachNic({ id: n.id, mac: n.mac, subnet: pn.subnet });
      n.state = "available";
    });
    return [201, { private_nic: nicJson(n) }];
  });
  route("GET", `${I}/servers/{id}/private_nics/{nic}`, (m) => [200, { private_nic: nicJson(get(nics, m[1]!, "instance_private_nic")) }]);
  route("DELETE", `${I}/servers/{id}/private_nics/{nic}`, async (m) => {
    const s = get(servers, m[0]!, "instance_server");
    const n = get(nics, m[1]!, "instance_private_nic");
    if (s.machine?.running) await s.machine.detachNic(n.id);
    nics.delete(n.id);
    return [204, undefined];
  });

  // Images
  route("GET", `${I}/images`, (_, __, q) => instanceList("images", [...images.values()].filter((i) => !q.get("name") || i.name.includes(q.get("name")!)).map(imageJson), q));
  route("POST", `${I}/images`, (_, b) => {
    const snap = get(snapshots, str(b.root_volume, "root_volume"), "snapshot");
    if (snap.status !== "available") throw precondition(`snapshot ${snap.id} is ${snap.status}`);
    const extra = Object.values((b.extra_volumes as Record<string, { id: string }> | undefined) ?? {}).map((e) => get(snapshots, e.id, "snapshot").id);
    const image: Image = {
      id: randomUUID(), name: str(b.name, "name"), rootSnapshotId: snap.id, extraSnapshotIds: extra, arch: typeof b.arch === "string" ? b.arch : "x86_64",
      state: "available", tags: tagsOf(b.tags), fromServer: "", created: instanceDate(), modified: instanceDate(), public: b.public === true,
      refs: linkSnapshots([snap.id, ...extra]),
    };
    images.set(image.id, image);
    return [201, { image: imageJson(image) }];
  });
  route("GET", `${I}/images/{id}`, (m) => [200, { image: imageJson(get(images, m[0]!, "instance_image")) }]);
  route("PATCH", `${I}/images/{id}`, (m, b) => {
    const i = get(images, m[0]!, "instance_image");
    if (typeof b.name === "string") i.name = b.name;
    if (Array.isArray(b.tags)) i.tags = tagsOf(b.tags);
    if (typeof b.public === "boolean") i.public = b.public;
    if (b.arch === "x86_64" || b.arch === "arm64") i.arch = b.arch;
    i.modified = instanceDate();
    return [200, { image: imageJson(i) }];
  });
  route("DELETE", `${I}/images/{id}`, (m) => {
    const i = get(images, m[0]!, "instance_image");
    images.delete(i.id);
    return [204, undefined];
  });

  // Security groups
  route("GET", `${I}/security_groups`, () => (defaultGroup(), [200, { security_groups: [...groups.values()].map(groupJson) }]));
  route("POST", `${I}/security_groups`, (_, b) => {
    const g: SecurityGroup = {
      id: randomUUID(), name: str(b.name, "name"), description: typeof b.description === "string" ? b.description : "",
      inbound: b.inbound_default_policy === "drop" ? "drop" : "accept", outbound: b.outbound_default_policy === "drop" ? "drop" : "accept",
      stateful: b.stateful !== false, rules: [], projectDefault: false, tags: tagsOf(b.tags), created: instanceDate(), modified: instanceDate(),
    };
    groups.set(g.id, g);
    return [201, { security_group: groupJson(g) }];
  });
  route("GET", `${I}/security_groups/{id}`, (m) => [200, { security_group: groupJson(get(groups, m[0]!, "instance_security_group")) }]);
  route("PATCH", `${I}/security_groups/{id}`, async (m, b) => {
    const g = get(groups, m[0]!, "instance_security_group");
    if (b.inbound_default_policy === "accept" || b.inbound_default_policy === "drop") g.inbound = b.inbound_default_policy;
    if (b.outbound_default_policy === "accept" || b.outbound_default_policy === "drop") g.outbound = b.outbound_default_policy;
    if (typeof b.name === "string") g.name = b.name;
    g.modified = instanceDate();
    await applyGroup(g);
    return [200, { security_group: groupJson(g) }];
  });
  route("DELETE", `${I}/security_groups/{id}`, (m) => {
    const g = get(groups, m[0]!, "instance_security_group");
    if ([...servers.values()].some((s) => s.securityGroupId === g.id)) throw precondition(`security group ${g.id} is in use`);
    if (g.projectDefault) throw precondition("the default security group cannot be deleted");
    groups.delete(g.id);
    return [204, undefined];
  });
  const parseRule = (b: Record<string, unknown>, position: number): Rule => {
    const protocol = String(b.protocol ?? "TCP");
    if (!["TCP", "UDP", "ICMP", "ANY"].includes(protocol)) throw invalid(`protocol ${protocol} is invalid`, { fields: { protocol: ["invalid"] } });
    const action = String(b.action ?? "");
    if (action !== "accept" && action !== "drop") throw invalid("action must be accept or drop", { fields: { action: ["invalid"] } });
    const direction = String(b.direction ?? "inbound");
    if (direction !== "inbound" && direction !== "outbound") throw invalid("direction must be inbound or outbound", { fields: { direction: ["invalid"] } });
    const from = typeof b.dest_port_from === "number" ? b.dest_port_from : null;
    return {
      id: randomUUID(), protocol, direction, action, ip_range: typeof b.ip_range === "string" ? b.ip_range : "0.0.0.0/0",
      dest_port_from: from, dest_port_to: typeof b.dest_port_to === "number" ? b.dest_port_to : from, position: typeof b.position === "number" ? b.position : position, editable: true,
    };
  };
  route("GET", `${I}/security_groups/{id}/rules`, (m) => [200, { rules: get(groups, m[0]!, "instance_security_group").rules.map(ruleJson) }]);
  route("POST", `${I}/security_groups/{id}/rules`, async (m, b) => {
    const g = get(groups, m[0]!, "instance_security_group");
    const rule = parseRule(b, g.rules.length + 1);
    g.rules.push(rule);
    await applyGroup(g);
    return [201, { rule: ruleJson(rule) }];
  });
  route("PUT", `${I}/security_groups/{id}/rules`, async (m, b) => {
    const g = get(groups, m[0]!, "instance_security_group");
    g.rules = (Array.isArray(b.rules) ? (b.rules as Record<string, unknown>[]) : []).map((r, n) => parseRule(r, n + 1));
    await applyGroup(g);
    return [200, { rules: g.rules.map(ruleJson) }];
  });
  route("DELETE", `${I}/security_groups/{id}/rules/{rule}`, async (m) => {
    const g = get(groups, m[0]!, "instance_security_group");
    if (!g.rules.some((r) => r.id === m[1])) throw notFound("instance_security_group_rule", m[1]!);
    g.rules = g.rules.filter((r) => r.id !== m[1]);
    await applyGroup(g);
    return [204, undefined];
  });

  // Block storage
  route("GET", `${B}/volumes`, (_, __, q) => [200, { volumes: paged([...volumes.values()], q, "page_size").map(volumeJson), total_count: volumes.size }]);
  route("POST", `${B}/volumes`, (_, b) => {
    const name = str(b.name, "name");
    const fromSnapshot = b.from_snapshot as { snapshot_id?: string; size?: number } | undefined;
    const fromEmpty = b.from_empty as { size?: number } | undefined;
    if (!fromSnapshot === !fromEmpty) throw invalid("exactly one of from_empty and from_snapshot is required", { fields: { from_empty: ["required"] } });
    if (fromSnapshot) {
      const snap = get(snapshots, str(fromSnapshot.snapshot_id, "from_snapshot.snapshot_id"), "snapshot");
      if (snap.status !== "available") throw precondition(`snapshot ${snap.id} is ${snap.status}`);
      return [200, volumeJson(createVolume(name, fromSnapshot.size ?? snap.size, Number(b.perf_iops ?? 5000), tagsOf(b.tags), snap))];
    }
    const size = Number(fromEmpty!.size);
    if (!Number.isFinite(size) || size < 1e9) throw invalid("from_empty.size must be at least 1 GB", { fields: { "from_empty.size": ["too small"] } });
    return [200, volumeJson(createVolume(name, size, Number(b.perf_iops ?? 5000), tagsOf(b.tags)))];
  });
  route("GET", `${B}/volumes/{id}`, (m) => [200, volumeJson(get(volumes, m[0]!, "volume"))]);
  route("PATCH", `${B}/volumes/{id}`, (m, b) => {
    const v = get(volumes, m[0]!, "volume");
    refuseUnemulated(b, ["name", "tags"], {}, "volume", { perf_iops: (x) => x === v.perfIops, size: (x) => x === v.size });
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
  route("GET", `${B}/snapshots`, (_, __, q) => [200, { snapshots: paged([...snapshots.values()], q, "page_size").map(snapshotJson), total_count: snapshots.size }]);
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
      throw invalidArguments([{ argument_name: "bucket", reason: "constraint", help_message: `bucket ${bucket} cannot be read: ${err.name}` }]);
    });
    const wrongRegion = bucketRefusal(bucket, location.LocationConstraint || o.s3.region, region);
    if (wrongRegion) throw invalidArguments([wrongRegion]);
    const probe = join(o.stateDir, "snapshots", `probe-${randomUUID()}.qcow2`);
    let info: QemuImgInfo;
    try {
      const head = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: "bytes=0-1048575" })).catch((err: Error) => {
        throw invalidArguments([{ argument_name: "key", reason: "constraint", help_message: `s3://${bucket}/${key} cannot be read: ${err.name}` }]);
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
      id: randomUUID(), name, size: info["virtual-size"], status: "creating", file: "", tags: tagsOf(b.tags),
      parentVolume: null, created: blockDate(), updated: blockDate(),
    };
    snap.file = file("snapshots", snap.id);
    snapshots.set(snap.id, snap);
    later(async () => {
      try {
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
      throw invalidArguments([{ argument_name: "bucket", reason: "constraint", help_message: `bucket ${bucket} cannot be read: ${err.name}` }]);
    });
    const wrongRegion = bucketRefusal(bucket, location.LocationConstraint || o.s3.region, region);
    if (wrongRegion) throw invalidArguments([wrongRegion]);
    if (snap.status !== "available") throw precondition(`snapshot ${snap.id} is ${snap.status}`);
    // Recorded: `exporting` while the qcow2 is written to the bucket, `available` again after.
    snap.status = "exporting";
    later(async () => {
      try {
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(snap.file), ContentLength: statSync(snap.file).size }));
      } catch (err) {
        process.stderr.write(`emulator: export of ${snap.id} to s3://${bucket}/${key} failed: ${(err as Error).message}\n`);
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
    if (refs.length) throw precondition(`snapshot ${s.id} is in use by ${refs.map((r) => `${r.product_resource_type} ${r.product_resource_id}`).join(", ")}`);
    snapshots.delete(s.id);
    rmSync(s.file, { force: true });
    return [204, undefined];
  });

  // VPC
  route("GET", `${V}/private-networks`, () => [200, { private_networks: [...networks.values()].map(networkJson), total_count: networks.size }]);
  route("POST", `${V}/private-networks`, (_, b) => {
    const n: PrivateNetwork = {
      id: randomUUID(), name: str(b.name, "name"), subnet: `172.16.${(nextSubnet++ % 64) * 4}.0/22`, subnetId: randomUUID(),
      tags: tagsOf(b.tags), created: blockDate(), updated: blockDate(), region,
    };
    networks.set(n.id, n);
    return [200, networkJson(n)];
  });
  route("GET", `${V}/private-networks/{id}`, (m) => [200, networkJson(get(networks, m[0]!, "private_network"))]);
  route("DELETE", `${V}/private-networks/{id}`, (m) => {
    const n = get(networks, m[0]!, "private_network");
    if ([...nics.values()].some((x) => x.privateNetworkId === n.id)) throw precondition(`private network ${n.id} still has NICs`);
    networks.delete(n.id);
    return [204, undefined];
  });

  // ---- HTTP -----------------------------------------------------------------------------------------------------
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator");
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      exchanges.push({ method: req.method ?? "", path: url.pathname, status, body: Buffer.isBuffer(body) ? body.toString("utf8") : body });
      if (status === 204 || body === undefined) return void res.writeHead(status, headers).end();
      if (Buffer.isBuffer(body)) return void res.writeHead(status, { ...headers, "content-type": "text/plain" }).end(body);
      res.writeHead(status, { ...headers, "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (req.headers["x-auth-token"] !== o.secretKey)
      return reply(401, { type: "denied_authentication", method: "api_key", reason: "invalid_argument", message: "authentication is denied (method: api_key, reason: invalid_argument)" });
    const candidates = routes.filter(([, re]) => re.test(url.pathname));
    const match = candidates.find(([method]) => method === req.method);
    if (!match) {
      return candidates.length
        ? reply(405, { type: "invalid_request_error", message: `method ${req.method} is not allowed on ${url.pathname}` })
        : reply(404, { type: "not_found", message: `${url.pathname} is not an emulated endpoint` });
    }
    let body: Record<string, unknown> = {};
    if (raw) {
      if ((req.headers["content-type"] ?? "").startsWith("text/plain")) body = { __raw: raw };
      else {
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          return reply(400, { type: "invalid_request_error", message: "request body is not valid JSON" });
        }
      }
    }
    try {
      const [status, out, headers] = await match[2](match[1].exec(url.pathname)!.slice(1), body, url.searchParams);
      reply(status, out, headers);
    } catch (err) {
      if (err instanceof ApiError) return reply(err.status, err.body);
      reply(500, { type: "internal_error", message: (err as Error).message });
    }
  }

  const http: HttpServer = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => http.listen(o.port ?? 0, "127.0.0.1", resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    console: (id) => servers.get(id)?.machine?.console() ?? "",
    async close() {
      for (const s of servers.values()) {
        s.machine?.kill();
        await s.metadata?.close();
      }
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
      s3.destroy();
    },
  };
}
