/**
 * One emulated Instance's hardware: a QEMU process with a QMP socket, so the emulator can reset it, power it down
 * through ACPI, hot-plug volumes and NICs, take a point-in-time copy of a running disk and open or close forwarded
 * ports as security group rules change.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import type { Accelerator } from "../system/accel";
import { OVMF } from "../release/local-boot";
import { emulatorNetwork, TapNetwork } from "./tap-network";

export interface Disk {
  /** Volume id: the disk's serial (virtio-blk keeps 20 characters) and QEMU node name. */
  id: string;
  file: string;
}

export interface Nic {
  id: string;
  mac: string;
  /** IPv4 network the NIC's DHCP hands addresses from, e.g. 172.16.4.0/22. */
  subnet: string;
}

export interface MachineSpec {
  dir: string;
  accel: Accelerator;
  firmware: "bios" | "uefi";
  memoryMiB: number;
  commercialType: string;
  /** Boot disk first. */
  disks: Disk[];
  nics: Nic[];
  publicMac: string;
  /** Public IPv4 on the host's loopback the forwarded ports listen on. */
  publicIp: string;
  /** Loopback port of this Instance's metadata API (QEMU user networking). */
  metadataPort: number;
  /**
   * Serves the metadata API on a PROXY unix socket (MetadataServer.listenProxied); given, the machine gets the TAP
   * network where the host allows it (tap-network.ts), so the API sees the guest's own source ports.
   */
  metadataProxy?: (path: string) => Promise<() => Promise<void>>;
  /** Boot this kernel and initramfs instead of the boot disk (the rescue system); the disks stay data disks. */
  kernel?: { kernel: string; initrd: string; append: string };
}

const node = (id: string) => `vol-${id.slice(0, 24)}`;
const netdev = (id: string) => `pn-${id.slice(0, 8)}`;
const nicDevice = (id: string) => `nic-${id.slice(0, 8)}`;
const serial = (id: string) => id.slice(0, 20);

export class QmpError extends Error {}

export class Machine {
  private proc?: ChildProcess;
  private qmp?: Socket;
  private buffered = "";
  private pending: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private listeners: ((event: { event: string; data?: Record<string, unknown> }) => void)[] = [];
  private forwarded = new Set<string>();
  private tap?: TapNetwork;
  private exitWaiters: (() => void)[] = [];
  stderr = "";

  constructor(readonly spec: MachineSpec) {}

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get consoleLog(): string {
    return join(this.spec.dir, "console.log");
  }

  console(): string {
    return existsSync(this.consoleLog) ? readFileSync(this.consoleLog, "utf8") : "";
  }

  /** Which network the public NIC is on. */
  get network(): "tap" | "user" {
    return this.tap ? "tap" : "user";
  }

  async start(): Promise<void> {
    const s = this.spec;
    // Unix socket paths are limited to 108 bytes; state directories can be deeper than that.
    const sockDir = mkdtempSync(join(tmpdir(), "qmp-"));
    const sock = join(sockDir, "qmp.sock");
    this.tap = undefined;
    try {
      if (s.metadataProxy && emulatorNetwork() === "tap")
        this.tap = await TapNetwork.start(sockDir, s.publicMac, s.metadataProxy, (why) => {
          this.stderr += `${why}\n`;
          this.proc?.kill("SIGKILL");
        });
    } catch (err) {
      rmSync(sockDir, { recursive: true, force: true });
      throw err;
    }
    const publicNetdev = this.tap
      ? "tap,id=public,ifname=tap0,script=no,downscript=no"
      : `user,id=public,net=169.254.0.0/16,ipv4=on,ipv6=on,guestfwd=tcp:169.254.42.42:80-cmd:socat - TCP:127.0.0.1:${s.metadataPort}`;
    const args = [
      "-accel",
      s.accel,
      "-cpu",
      s.accel === "kvm" ? "host" : "max",
      "-smp",
      "2",
      "-m",
      String(s.memoryMiB),
      "-nodefaults",
      "-display",
      "none",
      "-serial",
      `file:${this.consoleLog}`,
      // What a Scaleway Instance's firmware reports: cloud-init picks its Scaleway datasource from it.
      "-smbios",
      `type=1,manufacturer=Scaleway,product=${s.commercialType}`,
      "-qmp",
      `unix:${sock},server=on,wait=off`,
      ...s.disks.flatMap((d, i) => [
        "-blockdev",
        `driver=qcow2,node-name=${node(d.id)},file.driver=file,file.filename=${d.file}`,
        "-device",
        `virtio-blk-pci,drive=${node(d.id)},id=dev-${node(d.id)},serial=${serial(d.id)}${i === 0 && !s.kernel ? ",bootindex=0" : ""}`,
      ]),
      ...(s.kernel ? ["-kernel", s.kernel.kernel, "-initrd", s.kernel.initrd, "-append", s.kernel.append] : []),
      // Public NIC: the guest reaches the host at 169.254.2.2 and the metadata API at its real address.
      "-netdev",
      publicNetdev,
      "-device",
      `virtio-net-pci,netdev=public,mac=${s.publicMac}`,
      ...s.nics.flatMap((n) => [
        "-netdev",
        `user,id=${netdev(n.id)},net=${n.subnet},restrict=on,ipv6=off`,
        "-device",
        `virtio-net-pci,netdev=${netdev(n.id)},mac=${n.mac},id=${nicDevice(n.id)}`,
      ]),
      "-device",
      "virtio-rng-pci",
      ...(s.firmware === "uefi" ? ["-bios", OVMF] : []),
    ];
    this.forwarded.clear();
    this.stderr = "";
    const [command, argv] = this.tap ? this.tap.wrap("qemu-system-x86_64", args) : ["qemu-system-x86_64", args];
    const proc = spawn(command, argv, { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = proc;
    proc.stderr.on("data", (d) => (this.stderr += d));
    const tap = this.tap;
    proc.once("exit", () => {
      // What the namespace agent reported (DHCP messages it could not read, its death): beside the console.
      if (tap?.agentLog) writeFileSync(join(this.spec.dir, "network.log"), tap.agentLog);
      // The namespace's sockets live in sockDir: the directory goes once the network is down.
      void (tap?.close() ?? Promise.resolve()).finally(() => rmSync(sockDir, { recursive: true, force: true }));
      this.qmp?.destroy();
      this.qmp = undefined;
      for (const p of this.pending.splice(0)) p.reject(new QmpError(`QEMU exited: ${this.stderr.trim().slice(-300)}`));
      for (const w of this.exitWaiters.splice(0)) w();
    });
    await this.connectQmp(sock);
  }

  private async connectQmp(sock: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (!this.running) throw new QmpError(`QEMU did not start: ${this.stderr.trim().slice(-300)}`);
      if (existsSync(sock)) {
        const ok = await new Promise<boolean>((resolve) => {
          const c = connect(sock);
          c.once("connect", () => {
            this.qmp = c;
            c.setEncoding("utf8");
            c.on("data", (d: string) => this.onData(d));
            resolve(true);
          });
          c.once("error", () => resolve(false));
        });
        if (ok) {
          await this.command("qmp_capabilities");
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new QmpError("QMP socket never answered");
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf("\n")) >= 0) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as {
        QMP?: unknown;
        event?: string;
        data?: Record<string, unknown>;
        return?: unknown;
        error?: { desc: string };
      };
      if (msg.QMP) continue;
      if (msg.event) {
        for (const l of this.listeners) l({ event: msg.event, data: msg.data });
        continue;
      }
      const p = this.pending.shift();
      if (!p) continue;
      if (msg.error) p.reject(new QmpError(msg.error.desc));
      else p.resolve(msg.return);
    }
  }

  command(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    if (!this.qmp) return Promise.reject(new QmpError("machine is not running"));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.qmp!.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    });
  }

  /** An HMP command; `ok` matches the output of success where the command reports it (hostfwd_remove does). */
  private async hmp(commandLine: string, ok = /^$/): Promise<void> {
    const out = ((await this.command("human-monitor-command", { "command-line": commandLine })) as string).trim();
    if (!ok.test(out)) throw new QmpError(`${commandLine}: ${out}`);
  }

  waitEvent(
    name: string,
    match: (data: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== listener);
        reject(new QmpError(`no ${name} event within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const listener = (e: { event: string; data?: Record<string, unknown> }) => {
        if (e.event !== name || !match(e.data ?? {})) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== listener);
        resolve(e.data ?? {});
      };
      this.listeners.push(listener);
    });
  }

  /** Opens exactly the given TCP ports on the public IP (the security group's verdict), closing the others. */
  async forwardPorts(ports: number[]): Promise<void> {
    if (this.tap) return this.tap.forwardPorts(this.spec.publicIp, ports);
    const want = new Set(ports.map((p) => `tcp:${this.spec.publicIp}:${p}-:${p}`));
    for (const rule of [...this.forwarded].filter((r) => !want.has(r))) {
      await this.hmp(
        `hostfwd_remove public ${rule.replace(/-:\d+$/, "")}`,
        /^(|host forwarding rule for \S+ removed)$/,
      );
      this.forwarded.delete(rule);
    }
    for (const rule of [...want].filter((r) => !this.forwarded.has(r))) {
      await this.hmp(`hostfwd_add public ${rule}`);
      this.forwarded.add(rule);
    }
  }

  /** A hard reset, like the API's `reboot` on a running Instance. */
  async reset(): Promise<void> {
    await this.command("system_reset");
  }

  /**
   * The ACPI power button, as a Scaleway stop presses it: a guest whose OS listens for the button (ACPI mode on and
   * the power button event enabled, read from its PM1 registers) gets it and QEMU exits when the guest powers off;
   * a guest that does not listen (firmware only, an OS without ACPI) would never react, so the plug is pulled at
   * once. QEMU itself drops the button press when the event is not enabled, so this reads the same bit it does.
   * `capMs` only bounds a guest that listens but hangs on its way down.
   */
  async powerOff({ capMs = 300_000 } = {}): Promise<{ graceful: boolean; ms: number }> {
    const started = Date.now();
    if (!this.running) return { graceful: true, ms: 0 };
    let exited = false;
    const exit = new Promise<void>((r) => this.exitWaiters.push(() => ((exited = true), r())));
    const pullPlug = async () => {
      this.proc?.kill("SIGKILL");
      await exit;
      return { graceful: false, ms: Date.now() - started };
    };
    if (!(await this.listensToPowerButton().catch(() => false))) return pullPlug();
    await this.command("system_powerdown").catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exit, new Promise((r) => (timer = setTimeout(r, capMs)))]);
    clearTimeout(timer);
    return exited ? { graceful: true, ms: Date.now() - started } : pullPlug();
  }

  /**
   * Whether the guest OS would act on the ACPI power button: SCI_EN in PM1_CNT (the OS switched to ACPI mode) and
   * PWRBTN_EN in PM1_EN. The PM1 blocks sit where the firmware mapped them (`acpi-evt`, `acpi-cnt` in the I/O
   * memory tree); unmapped, no OS has taken them over.
   */
  async listensToPowerButton(): Promise<boolean> {
    const tree = (await this.command("human-monitor-command", { "command-line": "info mtree -f" })) as string;
    const base = (name: string) => {
      const m = new RegExp(`^\\s*([0-9a-f]+)-[0-9a-f]+ \\(prio \\d+, i/o\\): ${name}$`, "m").exec(tree);
      return m ? parseInt(m[1]!, 16) : undefined;
    };
    const evt = base("acpi-evt");
    const cnt = base("acpi-cnt");
    if (evt === undefined || cnt === undefined) return false;
    // HMP's `i` reads 32 bits: PM1_STS in the low half, PM1_EN in the high half; PM1_CNT in the low half.
    const read = async (port: number) => {
      const out = (await this.command("human-monitor-command", {
        "command-line": `i 0x${port.toString(16)}`,
      })) as string;
      const m = /= 0x([0-9a-f]+)/.exec(out);
      if (!m) throw new QmpError(`reading I/O port ${port}: ${out.trim()}`);
      return parseInt(m[1]!, 16);
    };
    const pm1 = await read(evt);
    const control = (await read(cnt)) & 0xffff;
    const SCI_EN = 1;
    const PWRBTN_EN = 1 << 8;
    return (control & SCI_EN) !== 0 && ((pm1 >>> 16) & PWRBTN_EN) !== 0;
  }

  kill(): void {
    this.proc?.kill("SIGKILL");
  }

  async attachDisk(d: Disk): Promise<void> {
    await this.command("blockdev-add", {
      driver: "qcow2",
      "node-name": node(d.id),
      file: { driver: "file", filename: d.file },
    });
    await this.command("device_add", {
      driver: "virtio-blk-pci",
      drive: node(d.id),
      id: `dev-${node(d.id)}`,
      serial: serial(d.id),
    });
  }

  /** Hot-unplug needs the guest's consent (ACPI); the node is released only once the device is gone. */
  async detachDisk(id: string, timeoutMs = 120_000): Promise<void> {
    const gone = this.waitEvent("DEVICE_DELETED", (d) => d.device === `dev-${node(id)}`, timeoutMs);
    await this.command("device_del", { id: `dev-${node(id)}` });
    await gone;
    await this.command("blockdev-del", { "node-name": node(id) });
  }

  /** A crash-consistent, point-in-time copy of a disk while the guest runs (what a hot snapshot is). */
  async copyDisk(id: string, target: string, timeoutMs = 600_000): Promise<void> {
    const jobId = `copy-${node(id)}`;
    const done = this.waitEvent("BLOCK_JOB_COMPLETED", (d) => d.device === jobId, timeoutMs);
    await this.command("drive-backup", {
      "job-id": jobId,
      device: node(id),
      target,
      format: "qcow2",
      sync: "full",
      mode: "absolute-paths",
    });
    const result = await done;
    if (result.error) throw new QmpError(`copy of ${id} failed: ${String(result.error)}`);
  }

  async attachNic(n: Nic): Promise<void> {
    await this.command("netdev_add", { type: "user", id: netdev(n.id), net: n.subnet, restrict: true, ipv6: false });
    await this.command("device_add", {
      driver: "virtio-net-pci",
      netdev: netdev(n.id),
      mac: n.mac,
      id: nicDevice(n.id),
    });
  }

  async detachNic(id: string, timeoutMs = 120_000): Promise<void> {
    const gone = this.waitEvent("DEVICE_DELETED", (d) => d.device === nicDevice(id), timeoutMs);
    await this.command("device_del", { id: nicDevice(id) });
    await gone;
    await this.command("netdev_del", { id: netdev(id) });
  }
}
