/** VPC Private Networks and the Private NICs that plug servers into them. */
import { randomUUID } from "node:crypto";
import type { State } from "./context";
import { precondition } from "./errors";
import { blockDate, instanceDate, type PrivateNetwork, type PrivateNic } from "./model";
import { str, tagsOf, type Router } from "./router";
import type { Views } from "./views";

export function registerPrivateNetworks(ctx: State, v: Views, r: Router): void {
  const { region, servers, networks, nics, counters, later, get, newMac } = ctx;
  const { nicJson, networkJson } = v;
  const { route, I, V } = r;
  // Private NICs
  route("GET", `${I}/servers/{id}/private_nics`, (m) => [
    200,
    {
      private_nics: [...nics.values()]
        .filter((n) => n.serverId === get(servers, m[0]!, "instance_server").id)
        .map(nicJson),
    },
  ]);
  route("POST", `${I}/servers/{id}/private_nics`, async (m, b) => {
    const s = get(servers, m[0]!, "instance_server");
    const pn = get(networks, str(b.private_network_id, "private_network_id"), "private_network");
    const n: PrivateNic = {
      id: randomUUID(),
      serverId: s.id,
      privateNetworkId: pn.id,
      mac: newMac().replace(/^de:00:00/, "02:00:00"),
      state: "syncing",
      tags: tagsOf(b.tags),
      created: instanceDate(),
    };
    nics.set(n.id, n);
    later(async () => {
      if (s.machine?.running) await s.machine.attachNic({ id: n.id, mac: n.mac, subnet: pn.subnet });
      n.state = "available";
    });
    return [201, { private_nic: nicJson(n) }];
  });
  route("GET", `${I}/servers/{id}/private_nics/{nic}`, (m) => [
    200,
    { private_nic: nicJson(get(nics, m[1]!, "instance_private_nic")) },
  ]);
  route("DELETE", `${I}/servers/{id}/private_nics/{nic}`, async (m) => {
    const s = get(servers, m[0]!, "instance_server");
    const n = get(nics, m[1]!, "instance_private_nic");
    if (s.machine?.running) await s.machine.detachNic(n.id);
    nics.delete(n.id);
    return [204, undefined];
  });

  // VPC
  route("GET", `${V}/private-networks`, () => [
    200,
    { private_networks: [...networks.values()].map(networkJson), total_count: networks.size },
  ]);
  route("POST", `${V}/private-networks`, (_, b) => {
    const n: PrivateNetwork = {
      id: randomUUID(),
      name: str(b.name, "name"),
      subnet: `172.16.${(counters.nextSubnet++ % 64) * 4}.0/22`,
      subnetId: randomUUID(),
      tags: tagsOf(b.tags),
      created: blockDate(),
      updated: blockDate(),
      region,
    };
    networks.set(n.id, n);
    return [200, networkJson(n)];
  });
  route("GET", `${V}/private-networks/{id}`, (m) => [200, networkJson(get(networks, m[0]!, "private_network"))]);
  route("DELETE", `${V}/private-networks/{id}`, (m) => {
    const n = get(networks, m[0]!, "private_network");
    if ([...nics.values()].some((x) => x.privateNetworkId === n.id))
      throw precondition(`private network ${n.id} still has NICs`);
    networks.delete(n.id);
    return [204, undefined];
  });
}
