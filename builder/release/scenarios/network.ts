/**
 * Network scenarios, none of which needs a power cycle: public reachability and metadata, DNS, a security group's
 * verdict on port 22, and a Private Network NIC getting its DHCP address.
 */
import { answers, expect, inSubnet, ScenarioFailure, sleep, token, type Battery } from "../battery-driver";

export const networkScenarios: Record<
  "network" | "dns" | "security group" | "private networks",
  (b: Battery) => Promise<void>
> = {
  async network(b) {
    const s = await b.server();
    const v4 = s.publicIps.filter((i) => i.family === "inet").map((i) => i.address);
    expect(v4.length > 0, "the server has no public IPv4");
    for (const ip of v4) expect(await answers(ip, 22), `SSH does not answer on the public IPv4 ${ip}`);
    const route = await b.sh("ip -4 route show default");
    expect(/^default /m.test(route), `no IPv4 default route in the guest: ${route.trim().slice(0, 200)}`);
    const meta = await b.sh("curl -fsS -o /dev/null -w '%{http_code}' http://169.254.42.42/conf");
    expect(meta.trim() === "200", `the metadata API does not answer over IPv4 (${meta.trim()})`);
    const v6 = s.publicIps.filter((i) => i.family === "inet6");
    if (v6.length) {
      const guest = await b.sh("ip -6 route show default; ip -o -6 addr show scope global");
      expect(/^default /m.test(guest), "no IPv6 default route in the guest");
      for (const ip of v6)
        expect(guest.includes(ip.address), `the public IPv6 ${ip.address} is not configured in the guest`);
    }
  },

  async dns(b) {
    const conf = await b.sh("cat /etc/resolv.conf; resolvectl dns 2>/dev/null || true");
    expect(/nameserver|DNS Servers|\d+\.\d+\.\d+\.\d+/.test(conf), "the guest has no DNS resolver configured");
    for (const name of b.o.dnsNames) {
      const out = await b.sh(`getent ahosts ${name} || true`);
      expect(out.trim(), `${name} does not resolve inside the guest`);
    }
  },

  async "security group"(b) {
    const s = await b.server();
    const ip = b.publicIpv4(s);
    const original = s.securityGroup!;
    const g = (
      await b.instance.createSecurityGroup({
        zone: b.zone,
        name: `factory-test-${token()}`,
        description: "image factory security group test",
        projectDefault: false,
        stateful: true,
        inboundDefaultPolicy: "drop",
        outboundDefaultPolicy: "accept",
        project: b.o.projectId,
      })
    ).securityGroup!;
    const rule = (action: "accept" | "drop") => ({
      protocol: "TCP" as const,
      direction: "inbound" as const,
      action,
      ipRange: "0.0.0.0/0",
      destPortFrom: 22,
      destPortTo: 22,
      position: 1,
      editable: true,
    });
    const until = async (want: boolean) => {
      for (let i = 0; i < 20; i++) {
        if ((await answers(ip, 22)) === want) return true;
        await sleep(3000);
      }
      return false;
    };
    try {
      await b.instance.setSecurityGroupRules({ zone: b.zone, securityGroupId: g.id, rules: [rule("accept")] });
      await b.instance.updateServer({ zone: b.zone, serverId: s.id, securityGroup: { id: g.id, name: g.name } });
      expect(await until(true), "port 22, allowed by the group, does not answer");
      expect(!(await answers(ip, 80, 3000)), "port 80 answers although the group drops it");
      await b.instance.setSecurityGroupRules({ zone: b.zone, securityGroupId: g.id, rules: [rule("drop")] });
      expect(await until(false), "port 22 still answers after the group dropped it");
      await b.instance.setSecurityGroupRules({ zone: b.zone, securityGroupId: g.id, rules: [rule("accept")] });
      expect(await until(true), "port 22 does not answer again after the rule was restored");
    } finally {
      await b.instance.updateServer({
        zone: b.zone,
        serverId: s.id,
        securityGroup: { id: original.id, name: original.name },
      });
      await b.instance
        .deleteSecurityGroup({ zone: b.zone, securityGroupId: g.id })
        .catch((e: Error) => b.cleanupFailed(`security group ${g.id}`, e));
    }
  },

  async "private networks"(b) {
    const pn = await b.vpc.createPrivateNetwork({
      region: b.zone.replace(/-\d+$/, ""),
      name: `factory-test-${token()}`,
      tags: [],
      subnets: [],
      defaultRoutePropagationEnabled: false,
    });
    let nicId: string | undefined;
    try {
      const subnet = pn.subnets[0]?.subnet;
      expect(subnet, "the private network has no subnet");
      const nic = (await b.instance.createPrivateNIC({ zone: b.zone, serverId: b.o.serverId, privateNetworkId: pn.id }))
        .privateNic!;
      nicId = nic.id;
      const ready = await b.instance.waitForPrivateNIC(
        { zone: b.zone, serverId: b.o.serverId, privateNicId: nic.id },
        { timeout: 300, minDelay: 1, maxDelay: 3 },
      );
      expect(ready.state === "available", `private NIC is ${ready.state}`);
      let seen = "";
      for (let i = 0; i < 45; i++) {
        seen = await b.sh(
          `for i in /sys/class/net/*; do if [ "$(cat $i/address)" = "${nic.macAddress.toLowerCase()}" ]; then ip -o -4 addr show dev $(basename $i); fi; done`,
        );
        const addr = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(seen)?.[1];
        if (addr && inSubnet(addr, subnet)) return;
        await sleep(2000);
      }
      throw new ScenarioFailure(
        `the private NIC (${nic.macAddress}) got no address in ${subnet}: ${seen.trim().slice(0, 160) || "interface absent or unconfigured"}`,
      );
    } finally {
      if (nicId)
        await b.instance
          .deletePrivateNIC({ zone: b.zone, serverId: b.o.serverId, privateNicId: nicId })
          .catch((e: Error) => b.cleanupFailed(`private NIC ${nicId}`, e));
      await b.vpc
        .deletePrivateNetwork({ region: b.zone.replace(/-\d+$/, ""), privateNetworkId: pn.id })
        .catch((e: Error) => b.cleanupFailed(`private network ${pn.id}`, e));
    }
  },
};
