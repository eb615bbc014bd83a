/**
 * The battery's driver: one test Instance reached through the Scaleway API (the official SDK) and SSH inside the
 * guest, with the waits and guest probes the scenarios share. The same code runs against api.scaleway.com and the
 * emulator.
 *
 * SSH follows the Instances API notes: an ephemeral key reaches the Instance through an `AUTHORIZED_KEY` tag (the
 * metadata API lists it, the image's scw-fetch-ssh-keys installs it at boot); the host key is trusted only if its
 * fingerprint is among the `ssh-host-fingerprints` user data the image published at boot.
 */
import type { Client } from "@scaleway/sdk-client";
import { scalewayClient } from "./scw-client";
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { Vpcv2 } from "@scaleway/sdk-vpc";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { Socket } from "node:net";
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const token = () => randomBytes(8).toString("hex");

/** A scenario's verdict that the feature is broken (as opposed to an error of the runner or the API). */
export class ScenarioFailure extends Error {}
export function expect(ok: unknown, reason: string): asserts ok {
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

export class Battery {
  readonly client: Client;
  readonly instance: InstanceApi;
  readonly block: Blockv1.API;
  readonly vpc: Vpcv2.API;
  private key!: Awaited<ReturnType<typeof ephemeralKey>>;
  private ssh = new Map<string, SshSession>();
  readonly marker = `/root/.factory-test-${token()}`;
  /** Written afresh by each `writeMarker`, so a check never passes on an earlier write. */
  markerValue = token();
  readonly timeout: number;

  constructor(readonly o: BatteryOptions) {
    this.client = scalewayClient({
      accessKey: o.accessKey,
      secretKey: o.secretKey,
      defaultProjectId: o.projectId,
      defaultZone: o.zone,
      defaultRegion: o.zone.replace(/-\d+$/, ""),
      ...(o.apiUrl ? { apiURL: o.apiUrl } : {}),
    });
    this.instance = new Instancev1.API(this.client);
    this.block = new Blockv1.API(this.client);
    this.vpc = new Vpcv2.API(this.client);
    this.timeout = o.bootTimeoutS ?? 900;
  }

  log(line: string) {
    this.o.log?.(line);
  }

  /** Removals that failed in the scenarios' cleanups, until the battery takes them (each fails its group). */
  private cleanupFailures: string[] = [];
  cleanupFailed(what: string, err: Error) {
    this.cleanupFailures.push(`removing the ${what}: ${err.message}`);
    this.log(`cleanup: ${what}: ${err.message}`);
  }
  takeCleanupFailures(): string[] {
    return this.cleanupFailures.splice(0);
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
    const s = await this.instance.waitForServer(
      { zone: this.zone, serverId: id },
      { timeout: this.timeout, minDelay: 2, maxDelay: 5 },
    );
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
    await this.instance.updateServer({
      zone: this.zone,
      serverId: id,
      tags: s.tags.filter((t) => t !== this.authorizedKeyTag()),
    });
  }

  publicIpv4(s: Server): string {
    const ip = s.publicIps.find((i) => i.family === "inet")?.address ?? s.publicIp?.address;
    expect(ip, `server ${s.id} has no public IPv4`);
    return ip;
  }

  async forgetFingerprints(id = this.o.serverId) {
    await this.instance
      .deleteServerUserData({ zone: this.zone, serverId: id, key: "ssh-host-fingerprints" })
      .catch(() => undefined);
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
      published = await this.instance
        .getServerUserData({ zone: this.zone, serverId: id, key: "ssh-host-fingerprints" })
        .then(
          (v) => (typeof v === "string" ? v : String(v)),
          () => "",
        );
      if (published) break;
      expect(Date.now() < deadline, `server ${id} published no ssh-host-fingerprints within ${this.timeout} s`);
      // A read of the API costs the guest nothing: ask often, so the wait ends within a second of the publication.
      await sleep(1000);
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
      // sshd starts right after the fingerprints are published: a refused connection costs the guest nothing.
      await sleep(1000);
    }
    ssh.dispose();
    throw new ScenarioFailure(`no SSH login to ${host} within ${this.timeout} s: ${lastError}`);
  }

  async sh(command: string, id = this.o.serverId): Promise<string> {
    const ssh = this.ssh.get(id) ?? (await this.connect(id));
    const r = await ssh.exec(command, 300_000);
    expect(
      r.code === 0,
      `\`${command.slice(0, 80)}\` exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}`,
    );
    return r.stdout;
  }

  async bootId(id = this.o.serverId) {
    return (await this.sh("cat /proc/sys/kernel/random/boot_id", id)).trim();
  }

  async writeMarker() {
    this.markerValue = token();
    await this.sh(`printf %s ${this.markerValue} > ${this.marker} && sync`);
  }

  async readMarker(id = this.o.serverId): Promise<string> {
    return (await this.sh(`cat ${this.marker} 2>/dev/null || true`, id)).trim();
  }

  async disks(): Promise<Set<string>> {
    return new Set(
      (await this.sh("lsblk -dn -o NAME -e 7,11"))
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean),
    );
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
    await this.instance.attachServerVolume({
      zone: this.zone,
      serverId: this.o.serverId,
      volumeId,
      volumeType: "sbs_volume",
    });
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
    if (v.references.length)
      await this.instance
        .detachServerVolume({ zone: this.zone, serverId: v.references[0]!.productResourceId, volumeId })
        .catch(() => undefined);
    await this.block.waitForVolume({ zone: this.zone, volumeId }, { timeout: 300 }).catch(() => undefined);
    await this.block.deleteVolume({ zone: this.zone, volumeId });
  }

  // ---- the test server's power cycles (scenarios/power-cycles.ts): what its CycleDriver asks -----------------------
  get serverId() {
    return this.o.serverId;
  }

  async cycleState() {
    const s = await this.server();
    return {
      state: s.state,
      bootType: s.bootType,
      allowedActions: [...s.allowedActions],
      rootVolumeId: s.volumes["0"]!.id,
    };
  }

  async act(action: Instancev1.ServerAction, expected: string) {
    await this.action(this.o.serverId, action, expected);
  }

  async setBootType(bootType: "local" | "rescue") {
    await this.instance.updateServer({ zone: this.zone, serverId: this.o.serverId, bootType });
  }

  async rootFsUuid(): Promise<string> {
    return (await this.sh("findmnt -n -o UUID /")).trim();
  }

  /** Block devices holding the file system `uuid`, and whether each is mounted (read without udev's help). */
  async filesystems(uuid: string): Promise<{ device: string; mounted: boolean }[]> {
    const out = await this.sh(
      `for d in $(blkid -c /dev/null -t UUID=${uuid} -o device); do if grep -q "^$d " /proc/mounts; then echo "$d mounted"; else echo "$d free"; fi; done`,
    );
    return out
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => ({ device: l.split(" ")[0]!, mounted: l.endsWith(" mounted") }));
  }

  /** sha256 of a device's first 64 MiB: the superblock, whose mount count and times change with every mount. */
  async headHash(device: string): Promise<string> {
    return (await this.sh(`dd if=${device} bs=1M count=64 status=none | sha256sum`)).split(" ")[0]!;
  }

  async snapshotRoot(label: string): Promise<string> {
    const root = (await this.server()).volumes["0"]!.id;
    const snap = await this.block.createSnapshot({
      zone: this.zone,
      volumeId: root,
      name: `factory-${label}-${token()}`,
    });
    return snap.id;
  }

  async snapshotReady(snapshotId: string) {
    const ready = await this.block.waitForSnapshot(
      { zone: this.zone, snapshotId },
      { timeout: 900, minDelay: 2, maxDelay: 5 },
    );
    expect(ready.status === "available", `snapshot ${snapshotId} is ${ready.status}`);
  }

  async volumeFromSnapshot(snapshotId: string, label: string): Promise<string> {
    const vol = await this.block.createVolume({
      zone: this.zone,
      name: `factory-${label}-${token()}`,
      perfIops: 5000,
      fromSnapshot: { snapshotId },
    });
    const v = await this.block.waitForVolume(
      { zone: this.zone, volumeId: vol.id },
      { timeout: 900, minDelay: 2, maxDelay: 5 },
    );
    expect(v.status === "available", `volume from snapshot ${snapshotId} is ${v.status}`);
    return vol.id;
  }

  /** Attaches a volume to the test server and returns the disk it became in the guest. */
  async attachNew(volumeId: string): Promise<string> {
    const before = await this.disks();
    await this.attach(volumeId);
    return this.newDisk(before);
  }

  async detachGone(volumeId: string, dev: string) {
    await this.detach(volumeId);
    await this.diskGone(dev);
  }

  async deleteSnapshot(snapshotId: string) {
    await this.block.deleteSnapshot({ zone: this.zone, snapshotId });
  }

  async ensureRunning() {
    const s = await this.server();
    if (s.state === "running") return;
    if (s.state === "starting" || s.state === "stopping")
      await this.instance.waitForServer({ zone: this.zone, serverId: s.id }, { timeout: this.timeout });
    if ((await this.server()).state !== "running") await this.action(s.id, "poweron", "running");
    await this.connect();
  }
}
