/** JSON views of the emulator's resources, field for field as the recorded API answers. */
import { randomUUID } from "node:crypto";
import type { State } from "./context";
import {
  blockDate,
  type Image,
  type PrivateNetwork,
  type PrivateNic,
  type Rule,
  type SecurityGroup,
  type Server,
  type Snapshot,
  type Task,
  type Volume,
} from "./model";

export type Views = ReturnType<typeof views>;

export function views(ctx: State) {
  const { o, zone, images, snapshots, servers, groups, nics } = ctx;
  const volumeJson = (v: Volume) => ({
    id: v.id,
    name: v.name,
    type: "sbs_5k",
    size: v.size,
    project_id: o.projectId,
    created_at: v.created,
    updated_at: v.updated,
    references: v.serverId
      ? [
          {
            id: v.refId,
            product_resource_type: "instance_server",
            product_resource_id: v.serverId,
            created_at: v.updated,
            type: "exclusive",
            status: "attached",
          },
        ]
      : [],
    parent_snapshot_id: v.parentSnapshotId,
    status: v.status,
    tags: v.tags,
    specs: { perf_iops: v.perfIops, class: "sbs" },
    last_detached_at: v.lastDetached,
    kms_key_id: null,
    zone,
  });
  /** An image holds its snapshots with a `link` reference, and they are `in_use` until it is deleted (recorded). */
  const snapshotRefs = (s: Snapshot) =>
    [...images.values()]
      .filter((i) => i.refs[s.id])
      .map((i) => ({
        id: i.refs[s.id]!.id,
        product_resource_type: "instance_image",
        product_resource_id: i.id,
        created_at: i.refs[s.id]!.created,
        type: "link",
        status: "attached",
      }));
  const snapshotJson = (s: Snapshot) => {
    const references = snapshotRefs(s);
    return {
      id: s.id,
      name: s.name,
      parent_volume: s.parentVolume,
      size: s.size,
      project_id: o.projectId,
      created_at: s.created,
      updated_at: s.updated,
      references,
      status: s.status === "available" && references.length ? "in_use" : s.status,
      tags: s.tags,
      class: "sbs",
      public: false,
      zone,
    };
  };
  const linkSnapshots = (ids: string[]) =>
    Object.fromEntries(ids.map((id) => [id, { id: randomUUID(), created: blockDate() }]));
  const imageJson = (i: Image) => ({
    id: i.id,
    name: i.name,
    organization: o.projectId,
    project: o.projectId,
    root_volume: {
      volume_type: "sbs_snapshot",
      id: i.rootSnapshotId,
      size: snapshots.get(i.rootSnapshotId)?.size ?? 0,
      name: snapshots.get(i.rootSnapshotId)?.name ?? "",
    },
    extra_volumes: Object.fromEntries(
      i.extraSnapshotIds.map((id, n) => [
        String(n + 1),
        { volume_type: "sbs_snapshot", id, size: snapshots.get(id)?.size ?? 0, name: snapshots.get(id)?.name ?? "" },
      ]),
    ),
    public: i.public,
    arch: i.arch,
    creation_date: i.created,
    modification_date: i.modified,
    default_bootscript: null,
    from_server: i.fromServer,
    state: i.state,
    tags: i.tags,
    zone,
  });
  const ipJson = (s: Server) => ({
    id: s.ipId,
    address: s.publicIp,
    dynamic: true,
    gateway: "169.254.2.2",
    netmask: "32",
    family: "inet",
    provisioning_mode: "dhcp",
    tags: [],
    state: "attached",
    ipam_id: s.ipId,
  });
  const nicJson = (n: PrivateNic) => ({
    id: n.id,
    server_id: n.serverId,
    private_network_id: n.privateNetworkId,
    mac_address: n.mac,
    state: n.state,
    tags: n.tags,
    creation_date: n.created,
    zone,
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
      id: s.id,
      name: s.name,
      arch: "x86_64",
      commercial_type: s.commercialType,
      boot_type: s.bootType,
      organization: o.projectId,
      project: o.projectId,
      hostname: s.name,
      image: image ? imageJson(image) : null,
      volumes: Object.fromEntries(
        s.volumeIds.map((id, n) => [
          String(n),
          { boot: false, volume_type: "sbs_volume", id, state: "available", zone },
        ]),
      ),
      tags: s.tags,
      state: s.state,
      protected: false,
      state_detail: s.stateDetail,
      public_ip: s.publicIp ? ipJson(s) : null,
      public_ips: s.publicIp ? [ipJson(s)] : [],
      mac_address: s.mac,
      routed_ip_enabled: true,
      ipv6: null,
      extra_networks: [],
      dynamic_ip_required: Boolean(s.publicIp),
      enable_ipv6: false,
      private_ip: null,
      creation_date: s.created,
      modification_date: s.modified,
      bootscript: null,
      security_group: groupRef(groups.get(s.securityGroupId)!),
      location: s.machine?.running
        ? {
            zone_id: zone,
            platform_id: "emulated",
            cluster_id: "qemu",
            hypervisor_id: "local",
            node_id: s.id.slice(0, 8),
          }
        : null,
      maintenances: [],
      allowed_actions: allowedActions(s),
      placement_group: null,
      private_nics: [...nics.values()].filter((n) => n.serverId === s.id).map(nicJson),
      zone,
      filesystems: [],
      end_of_service: false,
      dns: `${s.id}.pub.instances.scw.cloud`,
    };
  };
  const ruleJson = (r: Rule) => ({ ...r, zone });
  const groupJson = (g: SecurityGroup) => ({
    id: g.id,
    name: g.name,
    description: g.description,
    enable_default_security: true,
    inbound_default_policy: g.inbound,
    outbound_default_policy: g.outbound,
    organization: o.projectId,
    project: o.projectId,
    organization_default: false,
    project_default: g.projectDefault,
    creation_date: g.created,
    modification_date: g.modified,
    servers: [...servers.values()].filter((s) => s.securityGroupId === g.id).map((s) => ({ id: s.id, name: s.name })),
    stateful: g.stateful,
    state: "available",
    tags: g.tags,
    zone,
  });
  const networkJson = (n: PrivateNetwork) => ({
    id: n.id,
    name: n.name,
    organization_id: o.projectId,
    project_id: o.projectId,
    region: n.region,
    tags: n.tags,
    created_at: n.created,
    updated_at: n.updated,
    vpc_id: "00000000-0000-4000-8000-00000000000a",
    dhcp_enabled: true,
    default_route_propagation_enabled: false,
    subnets: [
      {
        id: n.subnetId,
        created_at: n.created,
        updated_at: n.updated,
        subnet: n.subnet,
        project_id: o.projectId,
        private_network_id: n.id,
        vpc_id: "00000000-0000-4000-8000-00000000000a",
      },
    ],
  });
  const taskJson = (t: Task) => ({
    id: t.id,
    description: t.description,
    status: t.status,
    href_from: t.hrefFrom,
    href_result: t.hrefResult,
    started_at: t.started,
    terminated_at: t.terminated,
    progress: t.progress,
    zone,
  });

  return {
    volumeJson,
    snapshotRefs,
    snapshotJson,
    linkSnapshots,
    imageJson,
    ipJson,
    nicJson,
    groupRef,
    allowedActions,
    serverJson,
    ruleJson,
    groupJson,
    networkJson,
    taskJson,
  };
}
