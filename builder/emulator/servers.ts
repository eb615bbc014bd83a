/** Instance servers, their actions and tasks, the products offered, and volume attachment. */
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { BlockWork } from "./block";
import type { State } from "./context";
import { invalid, notFound, precondition } from "./errors";
import type { Machines } from "./machines";
import { undergo } from "./faults";
import { blockDate, instanceDate, PRODUCTS, type Image, type Server, type Task } from "./model";
import { instanceList, paged, refuseUnemulated, str, tagsOf, type Router } from "./router";
import { groupApplier } from "./security-groups";
import type { Views } from "./views";

export function registerServers(ctx: State, v: Views, r: Router, work: BlockWork, machineOps: Machines): void {
  const {
    o,
    zone,
    volumes,
    images,
    snapshots,
    servers,
    groups,
    nics,
    tasks,
    counters,
    faults,
    later,
    get,
    defaultGroup,
    newMac,
    task,
    finish,
  } = ctx;
  const { serverJson, taskJson, allowedActions, linkSnapshots } = v;
  const { route, I } = r;
  const { createVolume, snapshotVolume } = work;
  const { boot, halt } = machineOps;
  const applyGroup = groupApplier(servers);
  // Paged like any Instance list (the recorded lookups read pages 1 to 3 until one comes back short).
  route("GET", `${I}/products/servers`, (_, __, q) => [
    200,
    {
      servers: Object.fromEntries(
        paged(Object.entries(PRODUCTS), q, "per_page").map(([k, p]) => [
          k,
          {
            alt_names: [],
            arch: p.arch,
            ncpus: p.ncpus,
            ram: p.ram,
            gpu: 0,
            gpu_info: null,
            mig_profile: null,
            volumes_constraint: { min_size: 0, max_size: 0 },
            per_volume_constraint: { l_ssd: { min_size: 0, max_size: 0 } },
            scratch_storage_max_size: 0,
            scratch_storage_max_volumes_count: 0,
            monthly_price: 0,
            hourly_price: 0,
            capabilities: {
              boot_types: ["local", "rescue"],
              placement_groups: true,
              block_storage: true,
              hot_snapshots_local_volume: false,
              private_network: 8,
              max_file_systems: 0,
            },
            network: { ipv6_support: true, sum_internal_bandwidth: 0, sum_internet_bandwidth: 0, interfaces: [] },
            block_bandwidth: 0,
            end_of_service: false,
          },
        ]),
      ),
    },
    { "x-total-count": String(Object.keys(PRODUCTS).length) },
  ]);

  // Servers
  route("GET", `${I}/servers`, (_, __, q) => instanceList("servers", [...servers.values()].map(serverJson), q));
  route("POST", `${I}/servers`, async (_, b) => {
    const name = str(b.name, "name");
    const type = str(b.commercial_type, "commercial_type");
    if (!PRODUCTS[type])
      throw invalid(`commercial_type ${type} is not available in ${zone}`, {
        fields: { commercial_type: ["invalid"] },
      });
    const image = get(images, str(b.image, "image"), "instance_image");
    const root = ((b.volumes as Record<string, { size?: number; volume_type?: string }> | undefined) ?? {})["0"] ?? {};
    if (root.volume_type && root.volume_type !== "sbs_volume")
      throw invalid(`volume_type ${root.volume_type} is not emulated: use sbs_volume`);
    const rootSnap = get(snapshots, image.rootSnapshotId, "snapshot");
    const s: Server = {
      id: randomUUID(),
      name,
      commercialType: type,
      imageId: image.id,
      volumeIds: [],
      state: "stopped",
      stateDetail: "",
      bootType: typeof b.boot_type === "string" ? b.boot_type : "local",
      bootedType: "local",
      tags: tagsOf(b.tags),
      securityGroupId:
        typeof b.security_group === "string" ? get(groups, b.security_group, "security_group").id : defaultGroup().id,
      publicIp: b.dynamic_ip_required === false ? null : `127.0.${o.publicNet ?? 42}.${counters.nextIp++}`,
      ipId: randomUUID(),
      mac: newMac(),
      userData: new Map(),
      dir: "",
      created: instanceDate(),
      modified: instanceDate(),
      busy: false,
    };
    s.dir = join(o.stateDir, "servers", s.id);
    mkdirSync(s.dir, { recursive: true });
    const vol = createVolume(
      `${image.name}_sbs_volume_0`,
      Math.max(root.size ?? rootSnap.size, rootSnap.size),
      5000,
      [],
      rootSnap,
    );
    vol.serverId = s.id;
    s.volumeIds.push(vol.id);
    servers.set(s.id, s);
    return [201, { server: serverJson(s) }];
  });
  route("GET", `${I}/servers/{id}`, (m) => [200, { server: serverJson(get(servers, m[0]!, "instance_server")) }]);
  route("PATCH", `${I}/servers/{id}`, async (m, b) => {
    const s = get(servers, m[0]!, "instance_server");
    refuseUnemulated(b, ["name", "tags", "boot_type", "security_group"], serverJson(s), "server", {
      volumes: (v) => {
        const ids = Object.entries((v as Record<string, { id?: string }> | null) ?? {})
          .sort(([a], [b]) => Number(a) - Number(b))
          .map(([, x]) => x.id);
        return ids.length === s.volumeIds.length && ids.every((id, n) => id === s.volumeIds[n]);
      },
    });
    if (typeof b.name === "string") s.name = b.name;
    if (Array.isArray(b.tags)) s.tags = tagsOf(b.tags);
    if (b.boot_type !== undefined) {
      if (b.boot_type !== "local" && b.boot_type !== "rescue")
        throw invalid(`boot_type ${String(b.boot_type)} is not supported`, { fields: { boot_type: ["invalid"] } });
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
    if (s.state !== "stopped")
      throw invalid("instance must be stopped to be deleted", { type: "invalid_request_error" });
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
      throw invalid(`action ${action} is not allowed while the server is ${s.state}${s.busy ? " (busy)" : ""}`, {
        type: "invalid_request_error",
      });
    const t = task(`server_batch_${action}`, s);
    const fault = faults.transition("POST /instance/servers/{id}/action", b);
    const transition = (s: Server, t: Task, during: string, detail: string, work: () => Promise<void>, after: string) =>
      machineOps.transition(
        s,
        t,
        during,
        detail,
        async () => {
          await undergo(fault, `${action} of server ${s.id}`);
          await work();
        },
        after,
      );
    switch (action) {
      case "poweron":
        transition(
          s,
          t,
          "starting",
          s.state === "stopped in place" ? "starting in place" : "allocating node",
          () => boot(s),
          "running",
        );
        break;
      case "poweroff":
        transition(s, t, "stopping", "stopping", () => halt(s), "stopped");
        break;
      case "stop_in_place":
        transition(s, t, "stopping", "stopping in place", () => halt(s), "stopped in place");
        break;
      case "reboot":
        transition(
          s,
          t,
          "starting",
          "rebooting",
          async () => {
            // A new boot mode (rescue or back) needs other disks: a full restart; otherwise a reset, as on Scaleway.
            if (s.bootType !== s.bootedType) {
              await halt(s);
              await boot(s);
            } else await s.machine!.reset();
          },
          "running",
        );
        break;
      case "terminate":
        transition(
          s,
          t,
          "stopping",
          "terminating",
          async () => {
            await halt(s);
            for (const id of s.volumeIds) Object.assign(volumes.get(id) ?? {}, { serverId: null, status: "available" });
            await s.metadata?.close();
            servers.delete(s.id);
          },
          "stopped",
        );
        break;
      case "backup": {
        const name = typeof b.name === "string" && b.name ? b.name : `${s.name}-backup`;
        const snaps = await Promise.all(
          s.volumeIds.map((id, n) => snapshotVolume(get(volumes, id, "volume"), `${name}-${n}`, [])),
        );
        const image: Image = {
          id: randomUUID(),
          name,
          rootSnapshotId: snaps[0]!.id,
          extraSnapshotIds: snaps.slice(1).map((x) => x.id),
          arch: "x86_64",
          state: "creating",
          tags: [],
          fromServer: s.id,
          created: instanceDate(),
          modified: instanceDate(),
          public: false,
          refs: linkSnapshots(snaps.map((x) => x.id)),
        };
        images.set(image.id, image);
        t.hrefResult = `/images/${image.id}`;
        later(async () => {
          const injected = await undergo(fault, `backup of server ${s.id}`).then(
            () => false,
            () => true,
          );
          for (let i = 0; i < 2400 && snaps.some((x) => x.status === "creating"); i++)
            await new Promise((r) => setTimeout(r, 250));
          image.state = !injected && snaps.every((x) => x.status === "available") ? "available" : "error";
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
}
