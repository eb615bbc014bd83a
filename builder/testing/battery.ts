/**
 * The release test battery of one image in one zone, run against a test Instance through the Scaleway API (the
 * official SDK) plus SSH inside the guest: the blog's twelve tests, each a real API scenario that creates what it
 * needs and removes it, even when it fails. The same code runs against api.scaleway.com and the emulator.
 *
 * SSH follows the Instances API notes: an ephemeral key reaches the Instance through an `AUTHORIZED_KEY` tag (the
 * metadata API lists it, the image's scw-fetch-ssh-keys installs it at boot); the host key is trusted only if its
 * fingerprint is among the `ssh-host-fingerprints` user data the image published at boot.
 */
import type { Client } from "@scaleway/sdk-client";
import { scalewayClient } from "../scw-client";
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { Vpcv2 } from "@scaleway/sdk-vpc";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { Socket } from "node:net";
import { runGuestChecks, type CheckResult } from "./guest-checks";
import { ephemeralKey, HostKeyError, sshSession, type SshSession } from "./ssh";

type InstanceApi = Instancev1.API;
type Server = Instancev1.Server;

export interface BatteryOptions {
  apiUrl?: string;
  accessKey: string;
  secretKey: string;
  projectId: string;
  zone: string;
  serverId: string;
  /** The catalog release the image was built from (checked against /etc/scw-release). */
  releaseId: string;
  /** Names the guest must resolve in the DNS test. */
  dnsNames: string[];
  /** Run only these scenarios (all when empty). */
  only?: string[];
  /** How long a boot may take to publish its host keys and accept the key; TCG is slow. */
  bootTimeoutS?: number;
  log?: (line: string) => void;
}

export const SCENARIOS = [
  "network", "dns", "security group", "private networks", "block volume", "hot snapshot", "cold snapshot",
  "reboot", "stop in place", "archive", "backup", "rescue",
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const token = () => randomBytes(8).toString("hex");

class ScenarioFailure extends Error {}
function expect(ok: unknown, reason: string): asserts ok {
  if (!ok) throw new ScenarioFailure(reason);
}

/** True when a TCP connection to host:port opens and the peer speaks within the time limit. */
export function answers(host: string, port: number, timeoutMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => (socket.destroy(), resolve(ok));
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("error", () => done(false));
    socket.once("data", () => done(true));
    socket.connect(port, host);
  });
}

/** Whether an IPv4 address lies inside a CIDR block. */
export function inSubnet(address: string, cidr: string): boolean {
  const [net, bits] = cidr.split("/");
  const toInt = (a: string) => a.split(".").reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (toInt(address) & mask) === (toInt(net!) & mask);
}

class Battery {
  readonly client: Client;
  readonly instance: InstanceApi;
  readonly block: Blockv1.API;
  readonly vpc: Vpcv2.API;
  private key!: Awaited<ReturnType<typeof ephemeralKey>>;
  private ssh = new Map<string, SshSession>();
  readonly marker = `/root/.factory-test-${token()}`;
  readonly markerValue = token();
  readonly timeout: number;

  constructor(readonly o: BatteryOptions) {
    this.client = scalewayClient({
      accessKey: o.accessKey, secretKey: o.secretKey, defaultProjectId: o.projectId,
      defaultZone: o.zone, defaultRegion: o.zone.replace(/-\d+$/, ""), ...(o.apiUrl ? { apiURL: o.apiUrl } : {}),
    });
    this.instance = new Instancev1.API(this.client);
    this.block = new Blockv1.API(this.client);
    this.vpc = new Vpcv2.API(this.client);
    this.timeout = o.bootTimeoutS ?? 900;
  }

  log(line: string) {
    this.o.log?.(line);
  }

  get zone() {
    return this.o.zone;
  }

  async init() {
    this.key = await ephemeralKey();
  }

  dispose() {
    for (const s of this.ssh.values()) s.dispose();
    if (this.key) rmSync(this.key.dir, { recursive: true, force: true });
  }

  authorizedKeyTag() {
    return `AUTHORIZED_KEY=${this.key.publicKey.split(" ").slice(0, 2).join("_")}`;
  }

  async server(id = this.o.serverId): Promise<Server> {
    const s = (await this.instance.getServer({ zone: this.zone, serverId: id })).server;
    expect(s, `server ${id} not found`);
    return s;
  }

  async waitState(id: string, state: string): Promise<Server> {
    const s = await this.instance.waitForServer({ zone: this.zone, serverId: id }, { timeout: this.timeout, minDelay: 2, maxDelay: 5 });
    expect(s.state === state, `server ${id} is ${s.state} (${s.stateDetail}), expected ${state}`);
    return s;
  }

  async action(id: string, action: Instancev1.ServerAction, expected: string): Promise<Server> {
    await this.instance.serverAction({ zone: this.zone, serverId: id, action });
    return this.waitState(id, expected);
  }

  /** Adds the ephemeral key's tag (the metadata API then lists it), keeping the server's own tags. */
  async authorize(id: string) {
    const s = await this.server(id);
    if (!s.tags.includes(this.authorizedKeyTag()))
      await this.instance.updateServer({ zone: this.zone, serverId: id, tags: [...s.tags, this.authorizedKeyTag()] });
  }

  async unauthorize(id: string) {
    const s = await this.server(id);
    await this.instance.updateServer({ zone: this.zone, serverId: id, tags: s.tags.filter((t) => t !== this.authorizedKeyTag()) });
  }

  publicIpv4(s: Server): string {
    const ip = s.publicIps.find((i) => i.family === "inet")?.address ?? s.publicIp?.address;
    expect(ip, `server ${s.id} has no public IPv4`);
    return ip;
  }

  async forgetFingerprints(id: string) {
    await this.instance.deleteServerUserData({ zone: this.zone, serverId: id, key: "ssh-host-fingerprints" }).catch(() => undefined);
  }

  /**
   * Waits for the boot to publish its host key fingerprints, trusts only a matching host key, then waits for a
   * login with the ephemeral key. A host key matching none of the fingerprints fails at once.
   */
  async connect(id = this.o.serverId): Promise<SshSession> {
    this.ssh.get(id)?.dispose();
    this.ssh.delete(id);
    const deadline = Date.now() + this.timeout * 1000;
    const host = this.publicIpv4(await this.server(id));
    let published = "";
    while (!published) {
      published = await this.instance.getServerUserData({ zone: this.zone, serverId: id, key: "ssh-host-fingerprints" }).then(
        (v) => (typeof v === "string" ? v : String(v)),
        () => "",
      );
      if (published) break;
      expect(Date.now() < deadline, `server ${id} published no ssh-host-fingerprints within ${this.timeout} s`);
      await sleep(3000);
    }
    let lastError = "";
    const ssh = sshSession("root", host, 22, this.key.privateKey, published);
    while (Date.now() < deadline) {
      try {
        const login = await ssh.exec("true", 30_000);
        if (login.code === 0) {
          this.ssh.set(id, ssh);
          return ssh;
        }
        lastError = login.stderr.trim().split("\n")[0] || `exit ${login.code}`;
      } catch (err) {
        ssh.dispose();
        if (err instanceof HostKeyError) throw new ScenarioFailure(err.message);
        throw err;
      }
      await sleep(3000);
    }
    ssh.dispose();
    throw new ScenarioFailure(`no SSH login to ${host} within ${this.timeout} s: ${lastError}`);
  }

  async sh(command: string, id = this.o.serverId): Promise<string> {
    const ssh = this.ssh.get(id) ?? (await this.connect(id));
    const r = await ssh.exec(command, 300_000);
    expect(r.code === 0, `\`${command.slice(0, 80)}\` exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
    return r.stdout;
  }

  async bootId(id = this.o.serverId) {
    return (await this.sh("cat /proc/sys/kernel/random/boot_id", id)).trim();
  }

  async writeMarker() {
    await this.sh(`printf %s ${this.markerValue} > ${this.marker} && sync`);
  }

  async readMarker(id = this.o.serverId): Promise<string> {
    return (await this.sh(`cat ${this.marker} 2>/dev/null || true`, id)).trim();
  }

  async disks(): Promise<Set<string>> {
    return new Set((await this.sh("lsblk -dn -o NAME -e 7,11")).split("\n").map((l) => l.trim()).filter(Boolean));
  }

  /** The disk that appeared since `before`, as the guest names it. */
  async newDisk(before: Set<string>): Promise<string> {
    for (let i = 0; i < 60; i++) {
      const now = [...(await this.disks())].filter((d) => !before.has(d));
      if (now.length === 1) return `/dev/${now[0]}`;
      await sleep(2000);
    }
    throw new ScenarioFailure("the attached volume never appeared in the guest");
  }

  async diskGone(dev: string) {
    for (let i = 0; i < 60; i++) {
      if (!(await this.disks()).has(dev.replace("/dev/", ""))) return;
      await sleep(2000);
    }
    throw new ScenarioFailure(`${dev} is still present in the guest after detach`);
  }

  /** Mounts a disk's first partition (or the disk itself) read-only and reads the marker file from it. */
  async markerOn(dev: string): Promise<string> {
    const mnt = `/mnt/factory-${token()}`;
    const out = await this.sh(
      `part=$(lsblk -ln -o PATH,TYPE ${dev} | awk '$2=="part"{print $1}' | while read p; do ` +
        `mkdir -p ${mnt}; if mount -o ro $p ${mnt} 2>/dev/null || mount -o ro,nouuid $p ${mnt} 2>/dev/null; then ` +
        `if [ -e ${mnt}${this.marker} ]; then cat ${mnt}${this.marker}; fi; umount ${mnt}; fi; done); printf %s "$part"; rmdir ${mnt} 2>/dev/null || true`,
    );
    return out.trim();
  }

  async attach(volumeId: string) {
    await this.instance.attachServerVolume({ zone: this.zone, serverId: this.o.serverId, volumeId, volumeType: "sbs_volume" });
    const v = await this.block.waitForVolume({ zone: this.zone, volumeId }, { timeout: 300, minDelay: 1, maxDelay: 3 });
    expect(v.status === "in_use", `volume ${volumeId} is ${v.status} after attach, expected in_use`);
  }

  async detach(volumeId: string) {
    await this.instance.detachServerVolume({ zone: this.zone, serverId: this.o.serverId, volumeId });
    const v = await this.block.waitForVolume({ zone: this.zone, volumeId }, { timeout: 300, minDelay: 1, maxDelay: 3 });
    expect(v.status === "available", `volume ${volumeId} is ${v.status} after detach, expected available`);
  }

  async deleteVolume(volumeId: string) {
    const v = await this.block.getVolume({ zone: this.zone, volumeId }).catch(() => undefined);
    if (!v) return;
    if (v.references.length) await this.instance.detachServerVolume({ zone: this.zone, serverId: v.references[0]!.productResourceId, volumeId }).catch(() => undefined);
    await this.block.waitForVolume({ zone: this.zone, volumeId }, { timeout: 300 }).catch(() => undefined);
    await this.block.deleteVolume({ zone: this.zone, volumeId });
  }

  async snapshotRootAndCheck(label: string) {
    const root = (await this.server()).volumes["0"]!.id;
    let snapshotId: string | undefined;
    let volumeId: string | undefined;
    try {
      const snap = await this.block.createSnapshot({ zone: this.zone, volumeId: root, name: `factory-${label}-${token()}` });
      snapshotId = snap.id;
      const ready = await this.block.waitForSnapshot({ zone: this.zone, snapshotId: snap.id }, { timeout: 900, minDelay: 2, maxDelay: 5 });
      expect(ready.status === "available", `snapshot ${snap.id} is ${ready.status}`);
      const s = await this.server();
      if (s.state !== "running") {
        await this.action(s.id, "poweron", "running");
        await this.connect();
      }
      const vol = await this.block.createVolume({ zone: this.zone, name: `factory-${label}-${token()}`, perfIops: 5000, fromSnapshot: { snapshotId: snap.id } });
      volumeId = vol.id;
      const v = await this.block.waitForVolume({ zone: this.zone, volumeId: vol.id }, { timeout: 900, minDelay: 2, maxDelay: 5 });
      expect(v.status === "available", `volume from snapshot is ${v.status}`);
      const before = await this.disks();
      await this.attach(vol.id);
      const dev = await this.newDisk(before);
      const found = await this.markerOn(dev);
      expect(found === this.markerValue, `the volume made from the ${label} does not hold the marker file (read "${found}")`);
      await this.detach(vol.id);
      await this.diskGone(dev);
    } finally {
      if (volumeId) await this.deleteVolume(volumeId).catch((e: Error) => this.log(`cleanup: volume ${volumeId}: ${e.message}`));
      if (snapshotId) await this.block.deleteSnapshot({ zone: this.zone, snapshotId }).catch((e: Error) => this.log(`cleanup: snapshot ${snapshotId}: ${e.message}`));
    }
  }

  async ensureRunning() {
    const s = await this.server();
    if (s.state === "running") return;
    if (s.state === "starting" || s.state === "stopping") await this.instance.waitForServer({ zone: this.zone, serverId: s.id }, { timeout: this.timeout });
    if ((await this.server()).state !== "running") await this.action(s.id, "poweron", "running");
    await this.connect();
  }
}

type Scenario = (b: Battery) => Promise<void>;

const scenarios: Record<ScenarioName, Scenario> = {
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
      for (const ip of v6) expect(guest.includes(ip.address), `the public IPv6 ${ip.address} is not configured in the guest`);
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
    const g = (await b.instance.createSecurityGroup({
      zone: b.zone, name: `factory-test-${token()}`, description: "image factory security group test", projectDefault: false,
      stateful: true, inboundDefaultPolicy: "drop", outboundDefaultPolicy: "accept", project: b.o.projectId,
    })).securityGroup!;
    const rule = (action: "accept" | "drop") => ({ protocol: "TCP" as const, direction: "inbound" as const, action, ipRange: "0.0.0.0/0", destPortFrom: 22, destPortTo: 22, position: 1, editable: true });
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
      await b.instance.updateServer({ zone: b.zone, serverId: s.id, securityGroup: { id: original.id, name: original.name } });
      await b.instance.deleteSecurityGroup({ zone: b.zone, securityGroupId: g.id }).catch((e: Error) => b.log(`cleanup: security group: ${e.message}`));
    }
  },

  async "private networks"(b) {
    const pn = await b.vpc.createPrivateNetwork({ region: b.zone.replace(/-\d+$/, "") as never, name: `factory-test-${token()}`, tags: [], subnets: [], defaultRoutePropagationEnabled: false });
    let nicId: string | undefined;
    try {
      const subnet = pn.subnets[0]?.subnet;
      expect(subnet, "the private network has no subnet");
      const nic = (await b.instance.createPrivateNIC({ zone: b.zone, serverId: b.o.serverId, privateNetworkId: pn.id })).privateNic!;
      nicId = nic.id;
      const ready = await b.instance.waitForPrivateNIC({ zone: b.zone, serverId: b.o.serverId, privateNicId: nic.id }, { timeout: 300, minDelay: 1, maxDelay: 3 });
      expect(ready.state === "available", `private NIC is ${ready.state}`);
      let seen = "";
      for (let i = 0; i < 45; i++) {
        seen = await b.sh(`for i in /sys/class/net/*; do if [ "$(cat $i/address)" = "${nic.macAddress.toLowerCase()}" ]; then ip -o -4 addr show dev $(basename $i); fi; done`);
        const addr = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(seen)?.[1];
        if (addr && inSubnet(addr, subnet)) return;
        await sleep(2000);
      }
      throw new ScenarioFailure(`the private NIC (${nic.macAddress}) got no address in ${subnet}: ${seen.trim().slice(0, 160) || "interface absent or unconfigured"}`);
    } finally {
      if (nicId) await b.instance.deletePrivateNIC({ zone: b.zone, serverId: b.o.serverId, privateNicId: nicId }).catch((e: Error) => b.log(`cleanup: private NIC: ${e.message}`));
      await b.vpc.deletePrivateNetwork({ region: b.zone.replace(/-\d+$/, "") as never, privateNetworkId: pn.id }).catch((e: Error) => b.log(`cleanup: private network: ${e.message}`));
    }
  },

  async "block volume"(b) {
    const vol = await b.block.createVolume({ zone: b.zone, name: `factory-test-${token()}`, perfIops: 5000, fromEmpty: { size: 10_000_000_000 } });
    const data = token();
    try {
      const v = await b.block.waitForVolume({ zone: b.zone, volumeId: vol.id }, { timeout: 300, minDelay: 1, maxDelay: 3 });
      expect(v.status === "available", `new volume is ${v.status}`);
      let before = await b.disks();
      await b.attach(vol.id);
      let dev = await b.newDisk(before);
      await b.sh(`mkfs.ext4 -q -F ${dev} && mkdir -p /mnt/factory-bv && mount ${dev} /mnt/factory-bv && printf %s ${data} > /mnt/factory-bv/data && umount /mnt/factory-bv`);
      await b.detach(vol.id);
      await b.diskGone(dev);
      before = await b.disks();
      await b.attach(vol.id);
      dev = await b.newDisk(before);
      const read = (await b.sh(`mount ${dev} /mnt/factory-bv && cat /mnt/factory-bv/data; umount /mnt/factory-bv`)).trim();
      expect(read === data, `data written before detach reads back as "${read}"`);
      await b.detach(vol.id);
      await b.diskGone(dev);
    } finally {
      await b.deleteVolume(vol.id).catch((e: Error) => b.log(`cleanup: volume: ${e.message}`));
    }
  },

  async "hot snapshot"(b) {
    await b.writeMarker();
    await b.snapshotRootAndCheck("hot snapshot");
  },

  async "cold snapshot"(b) {
    await b.writeMarker();
    await b.action(b.o.serverId, "poweroff", "stopped");
    await b.snapshotRootAndCheck("cold snapshot");
  },

  async reboot(b) {
    await b.writeMarker();
    const before = await b.bootId();
    await b.action(b.o.serverId, "reboot", "running");
    for (let i = 0; i < 60; i++) {
      await b.connect();
      const now = await b.bootId().catch(() => before);
      if (now !== before) {
        expect((await b.readMarker()) === b.markerValue, "the marker file did not survive the reboot");
        return;
      }
      await sleep(3000);
    }
    throw new ScenarioFailure("the boot id never changed: the server did not reboot");
  },

  async "stop in place"(b) {
    await b.writeMarker();
    await b.action(b.o.serverId, "stop_in_place", "stopped in place");
    await b.action(b.o.serverId, "poweron", "running");
    await b.connect();
    expect((await b.readMarker()) === b.markerValue, "data written before stop in place is gone after poweron");
  },

  async archive(b) {
    await b.writeMarker();
    await b.action(b.o.serverId, "poweroff", "stopped");
    const s = await b.server();
    expect(s.allowedActions.includes("poweron"), `a stopped server does not allow poweron (${s.allowedActions.join(", ")})`);
    await b.action(b.o.serverId, "poweron", "running");
    await b.connect();
    expect((await b.readMarker()) === b.markerValue, "data is gone after archive (poweroff) and poweron");
  },

  async backup(b) {
    await b.writeMarker();
    const name = `factory-backup-${token()}`;
    const { task } = await b.instance.serverAction({ zone: b.zone, serverId: b.o.serverId, action: "backup", name });
    // The action's task names the new image in `href_result` (`/images/<id>`), as Scaleway's CLI and Packer
    // plugin read it: never a lookup by name, which another image of the same name would answer.
    const imageId = /^\/images\/([0-9a-f-]{36})$/.exec(task?.hrefResult ?? "")?.[1];
    let serverId: string | undefined;
    try {
      expect(imageId, `the backup action's task does not name an image (href_result ${JSON.stringify(task?.hrefResult)})`);
      const image = await b.instance.waitForImage({ zone: b.zone, imageId }, { timeout: 900, minDelay: 2, maxDelay: 5 });
      expect(image.state === "available", `backup image is ${image.state}`);
      const source = await b.server();
      const created = await b.instance.createServer({
        zone: b.zone, name: `factory-backup-test-${token()}`, commercialType: source.commercialType, image: image.id,
        dynamicIpRequired: true, tags: ["factory:role=backup-test", b.authorizedKeyTag()], project: b.o.projectId,
        volumes: { "0": { volumeType: "sbs_volume" } }, bootType: "local", protected: false,
      });
      serverId = created.server!.id;
      await b.action(serverId, "poweron", "running");
      await b.connect(serverId);
      expect((await b.readMarker(serverId)) === b.markerValue, "an Instance booted from the backup image lacks the marker file");
    } finally {
      if (serverId) {
        const s = await b.server(serverId).catch(() => undefined);
        if (s) {
          if (s.state !== "stopped") await b.action(serverId, "poweroff", "stopped").catch(() => undefined);
          await b.instance.deleteServer({ zone: b.zone, serverId }).catch((e: Error) => b.log(`cleanup: backup server: ${e.message}`));
          for (const v of Object.values(s.volumes)) await b.deleteVolume(v.id).catch((e: Error) => b.log(`cleanup: backup volume: ${e.message}`));
        }
      }
      if (imageId) {
        const image = await b.instance.getImage({ zone: b.zone, imageId }).then((r) => r.image, () => undefined);
        await b.instance.deleteImage({ zone: b.zone, imageId }).catch((e: Error) => b.log(`cleanup: backup image: ${e.message}`));
        for (const snap of [image?.rootVolume, ...Object.values(image?.extraVolumes ?? {})].filter((v): v is Instancev1.VolumeSummary => v !== undefined))
          await b.block.deleteSnapshot({ zone: b.zone, snapshotId: snap.id }).catch((e: Error) => b.log(`cleanup: backup snapshot: ${e.message}`));
      }
    }
  },

  async rescue(b) {
    await b.writeMarker();
    const id = b.o.serverId;
    try {
      await b.instance.updateServer({ zone: b.zone, serverId: id, bootType: "rescue" });
      await b.forgetFingerprints(id);
      await b.action(id, "reboot", "running");
      await b.connect();
      const s = await b.server();
      expect(s.bootType === "rescue", `boot type is ${s.bootType} after switching to rescue`);
      expect((await b.readMarker()) === "", "the root file system in rescue mode is the Instance's own volume, not the rescue system");
    } finally {
      await b.instance.updateServer({ zone: b.zone, serverId: id, bootType: "local" });
      await b.forgetFingerprints(id);
      const s = await b.server();
      if (s.state === "running") await b.action(id, "reboot", "running");
      else await b.ensureRunning();
    }
    await b.connect();
    expect((await b.readMarker()) === b.markerValue, "after leaving rescue mode the Instance does not boot its own volume");
  },
};

export interface BatteryReport {
  serverId: string;
  zone: string;
  results: CheckResult[];
}

/**
 * Boots the test Instance with the ephemeral key, runs the in-guest checks, then the scenarios in order. A failed
 * scenario does not stop the others (each leaves the server running for the next); any failure fails the battery.
 */
export async function runBattery(o: BatteryOptions): Promise<BatteryReport> {
  const selected = (o.only?.length ? o.only : [...SCENARIOS]) as string[];
  const unknown = selected.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`unknown test scenario(s): ${unknown.join(", ")} (known: ${SCENARIOS.join(", ")})`);
  const b = new Battery(o);
  await b.init();
  const results: CheckResult[] = [];
  const timed = async (name: string, fn: () => Promise<void>) => {
    const started = Date.now();
    o.log?.(`test: ${name}`);
    try {
      await fn();
      results.push({ name, status: "pass", seconds: (Date.now() - started) / 1000, reason: "" });
    } catch (err) {
      const reason = err instanceof ScenarioFailure ? err.message : `${(err as Error).name}: ${(err as Error).message}`;
      results.push({ name, status: "fail", seconds: (Date.now() - started) / 1000, reason });
      return false;
    }
    return true;
  };
  try {
    const booted = await timed("boot: key accepted, host key verified", async () => {
      await b.authorize(o.serverId);
      const s = await b.server();
      if (s.state === "running") await b.action(s.id, "reboot", "running");
      else await b.action(s.id, "poweron", "running");
      await b.connect();
    });
    if (!booted) {
      for (const name of selected) results.push({ name, status: "skip", seconds: 0, reason: "the test Instance never accepted an SSH login" });
      return { serverId: o.serverId, zone: o.zone, results };
    }
    const server = await b.server();
    const ssh = await b.connect();
    results.push(...(await runGuestChecks(ssh, { hostname: server.hostname, releaseId: o.releaseId, publicIp: b.publicIpv4(server) })));
    for (const name of selected) {
      await timed(name, async () => {
        await b.ensureRunning();
        await scenarios[name as ScenarioName](b);
      });
    }
    return { serverId: o.serverId, zone: o.zone, results };
  } finally {
    await b.unauthorize(o.serverId).catch((e: Error) => o.log?.(`cleanup: key tag: ${e.message}`));
    b.dispose();
  }
}
