/** Security groups and their rules; a group's verdict decides which ports of a server's public IP are forwarded. */
import { randomUUID } from "node:crypto";
import type { State } from "./context";
import { invalid, notFound, precondition } from "./errors";
import { instanceDate, WATCHED_PORTS, type Rule, type SecurityGroup, type Server } from "./model";
import { str, tagsOf, type Router } from "./router";
import type { Views } from "./views";

/** The security group's verdict on inbound TCP to each port worth forwarding. */
export const openPorts = (g: SecurityGroup): number[] => {
  const named = g.rules.flatMap((r) =>
    r.dest_port_from !== null && (r.dest_port_to ?? r.dest_port_from) - r.dest_port_from < 16
      ? Array.from(
          { length: (r.dest_port_to ?? r.dest_port_from) - r.dest_port_from + 1 },
          (_, i) => r.dest_port_from! + i,
        )
      : [],
  );
  const candidates = [...new Set([...WATCHED_PORTS, ...named])];
  const inbound = g.rules
    .filter((r) => r.direction === "inbound" && (r.protocol === "TCP" || r.protocol === "ANY"))
    .sort((a, b) => a.position - b.position);
  return candidates.filter((port) => {
    const rule = inbound.find(
      (r) => r.dest_port_from === null || (port >= r.dest_port_from && port <= (r.dest_port_to ?? r.dest_port_from)),
    );
    return (rule ? rule.action : g.inbound) === "accept";
  });
};
/** Re-forwards the ports of every running server in the group after a change of its rules or policy. */
export const groupApplier = (servers: Map<string, Server>) => async (g: SecurityGroup) => {
  for (const s of servers.values())
    if (s.securityGroupId === g.id && s.machine?.running) await s.machine.forwardPorts(openPorts(g));
};

export function registerSecurityGroups(ctx: State, v: Views, r: Router): void {
  const { groups, servers, get, defaultGroup } = ctx;
  const { groupJson, ruleJson } = v;
  const { route, I } = r;
  const applyGroup = groupApplier(servers);
  route(
    "GET",
    `${I}/security_groups`,
    () => (defaultGroup(), [200, { security_groups: [...groups.values()].map(groupJson) }]),
  );
  route("POST", `${I}/security_groups`, (_, b) => {
    const g: SecurityGroup = {
      id: randomUUID(),
      name: str(b.name, "name"),
      description: typeof b.description === "string" ? b.description : "",
      inbound: b.inbound_default_policy === "drop" ? "drop" : "accept",
      outbound: b.outbound_default_policy === "drop" ? "drop" : "accept",
      stateful: b.stateful !== false,
      rules: [],
      projectDefault: false,
      tags: tagsOf(b.tags),
      created: instanceDate(),
      modified: instanceDate(),
    };
    groups.set(g.id, g);
    return [201, { security_group: groupJson(g) }];
  });
  route("GET", `${I}/security_groups/{id}`, (m) => [
    200,
    { security_group: groupJson(get(groups, m[0]!, "instance_security_group")) },
  ]);
  route("PATCH", `${I}/security_groups/{id}`, async (m, b) => {
    const g = get(groups, m[0]!, "instance_security_group");
    if (b.inbound_default_policy === "accept" || b.inbound_default_policy === "drop")
      g.inbound = b.inbound_default_policy;
    if (b.outbound_default_policy === "accept" || b.outbound_default_policy === "drop")
      g.outbound = b.outbound_default_policy;
    if (typeof b.name === "string") g.name = b.name;
    g.modified = instanceDate();
    await applyGroup(g);
    return [200, { security_group: groupJson(g) }];
  });
  route("DELETE", `${I}/security_groups/{id}`, (m) => {
    const g = get(groups, m[0]!, "instance_security_group");
    if ([...servers.values()].some((s) => s.securityGroupId === g.id))
      throw precondition(`security group ${g.id} is in use`);
    if (g.projectDefault) throw precondition("the default security group cannot be deleted");
    groups.delete(g.id);
    return [204, undefined];
  });
  const parseRule = (b: Record<string, unknown>, position: number): Rule => {
    const protocol = String(b.protocol ?? "TCP");
    if (!["TCP", "UDP", "ICMP", "ANY"].includes(protocol))
      throw invalid(`protocol ${protocol} is invalid`, { fields: { protocol: ["invalid"] } });
    const action = String(b.action ?? "");
    if (action !== "accept" && action !== "drop")
      throw invalid("action must be accept or drop", { fields: { action: ["invalid"] } });
    const direction = String(b.direction ?? "inbound");
    if (direction !== "inbound" && direction !== "outbound")
      throw invalid("direction must be inbound or outbound", { fields: { direction: ["invalid"] } });
    const from = typeof b.dest_port_from === "number" ? b.dest_port_from : null;
    return {
      id: randomUUID(),
      protocol,
      direction,
      action,
      ip_range: typeof b.ip_range === "string" ? b.ip_range : "0.0.0.0/0",
      dest_port_from: from,
      dest_port_to: typeof b.dest_port_to === "number" ? b.dest_port_to : from,
      position: typeof b.position === "number" ? b.position : position,
      editable: true,
    };
  };
  route("GET", `${I}/security_groups/{id}/rules`, (m) => [
    200,
    { rules: get(groups, m[0]!, "instance_security_group").rules.map(ruleJson) },
  ]);
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
}
