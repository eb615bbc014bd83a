/**
 * An emulated machine's public network as Scaleway's looks from the guest: a TAP device in a network namespace of
 * its own (netns-agent.ts runs inside), so the metadata API sees the guest's real TCP source ports (user data only
 * to ports below 1024) and the guest's connections close as they would. The emulator's side here: the agent's
 * process, the DNS relay to this host's resolver, and the public IP's open ports as loopback listeners. Falls back
 * to QEMU's user networking where unprivileged namespaces are not available (see `emulatorNetwork`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import { projectRoot } from "../system/paths";
import { join2, type AgentConfig } from "./netns-agent";

export type NetworkKind = "tap" | "user";

export const GUEST_ADDRESS = "169.254.0.15";
const GATEWAY = "169.254.2.2";
const METADATA = "169.254.42.42";

let chosen: NetworkKind | undefined;

/**
 * The choice, given `FACTORY_EMULATOR_NETWORK` and a probe that says why a TAP namespace cannot be made ("" if it
 * can): the network and the line to log.
 */
export function chooseNetwork(forced: string | undefined, probe: () => string): { kind: NetworkKind; log: string } {
  if (forced && forced !== "tap" && forced !== "user")
    throw new Error(`FACTORY_EMULATOR_NETWORK is "${forced}": expected tap or user`);
  if (forced === "user")
    return {
      kind: "user",
      log: "QEMU user networking (FACTORY_EMULATOR_NETWORK=user); the user data port rule is off",
    };
  const why = probe();
  if (why && forced === "tap")
    throw new Error(`FACTORY_EMULATOR_NETWORK=tap, but this host cannot make a namespace with a TAP device: ${why}`);
  return why
    ? { kind: "user", log: `QEMU user networking (${why}); the user data port rule is off` }
    : { kind: "tap", log: "a TAP network in their own namespace (the metadata API sees source ports)" };
}

/** Why this host cannot make a network namespace with a TAP device as an unprivileged user, or "". */
function probeTap(): string {
  const r = spawnSync("unshare", ["-Urn", "ip", "tuntap", "add", "dev", "tap0", "mode", "tap"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  return r.status === 0 ? "" : (r.stderr || r.error?.message || `exit ${r.status}`).trim();
}

/**
 * TAP when this host lets an unprivileged user make a network namespace with a TAP device in it; else QEMU's user
 * networking, where the metadata API cannot see source ports. `FACTORY_EMULATOR_NETWORK=tap|user` forces one;
 * `tap` forced where it cannot work is an error naming why. Decided, and logged, once per process.
 */
export function emulatorNetwork(env: NodeJS.ProcessEnv = process.env): NetworkKind {
  if (chosen) return chosen;
  const { kind, log } = chooseNetwork(env.FACTORY_EMULATOR_NETWORK, probeTap);
  process.stderr.write(`emulator: machines use ${log}\n`);
  chosen = kind;
  return kind;
}

/** The compiled agent: the emulator may run from source (tests) or from dist; the agent always runs compiled. */
function agentFile(): string {
  const sibling = join(__dirname, "netns-agent.js");
  const file = existsSync(sibling) ? sibling : join(projectRoot(), "dist", "builder", "emulator", "netns-agent.js");
  if (!existsSync(file)) throw new Error(`the network namespace agent ${file} is missing: run npm run build`);
  return file;
}

/** This host's first resolver, as the guest's DNS at the gateway forwards to it. */
function hostResolver(): string {
  const conf = existsSync("/etc/resolv.conf") ? readFileSync("/etc/resolv.conf", "utf8") : "";
  const m = /^nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/m.exec(conf);
  if (!m) throw new Error("no IPv4 nameserver in /etc/resolv.conf for the emulated machines' DNS");
  return m[1]!;
}

/** Answers DNS-over-TCP framed queries (2-byte length) by asking the host's resolver over UDP. */
function dnsRelay(path: string): Promise<Server> {
  const resolver = hostResolver();
  const server = createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on("error", () => s.destroy());
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const query = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + query.length);
        const udp = createSocket("udp4");
        const timer = setTimeout(() => udp.close(), 5_000);
        udp.on("error", () => (clearTimeout(timer), udp.close()));
        udp.once("message", (answer) => {
          clearTimeout(timer);
          udp.close();
          const len = Buffer.alloc(2);
          len.writeUInt16BE(answer.length);
          if (!s.destroyed) s.write(Buffer.concat([len, answer]));
        });
        udp.send(query, 53, resolver);
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve(server));
  });
}

export class TapNetwork {
  private forwards = new Map<number, Server>();
  private closing = false;
  agentLog = "";

  private constructor(
    private readonly agent: ChildProcess,
    private readonly dns: Server,
    private readonly stopMetadata: () => Promise<void>,
    private readonly forwardSocket: string,
  ) {}

  /**
   * Starts the namespace for a machine whose public NIC has `mac`; `metadata` serves the guest's 169.254.42.42 on
   * a PROXY unix socket (MetadataServer.listenProxied). `onDeath` runs if the agent dies before `close`.
   */
  static async start(
    sockDir: string,
    mac: string,
    metadata: (path: string) => Promise<() => Promise<void>>,
    onDeath: (why: string) => void,
  ): Promise<TapNetwork> {
    const config: AgentConfig = {
      tap: "tap0",
      mac,
      guest: GUEST_ADDRESS,
      gateway: GATEWAY,
      metadata: METADATA,
      metadataSocket: join(sockDir, "md.sock"),
      dnsSocket: join(sockDir, "dns.sock"),
      forwardSocket: join(sockDir, "fwd.sock"),
    };
    const stopMetadata = await metadata(config.metadataSocket);
    const dns = await dnsRelay(config.dnsSocket);
    const agent = spawn("unshare", ["-Urn", process.execPath, agentFile(), JSON.stringify(config)], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const net = new TapNetwork(agent, dns, stopMetadata, config.forwardSocket);
    agent.stderr.on("data", (d) => (net.agentLog += d));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error("the network namespace agent is not ready after 20 s")),
          20_000,
        );
        agent.stdout.on("data", (d: Buffer) => {
          if (!/^ready$/m.test(d.toString())) return;
          clearTimeout(timer);
          resolve();
        });
        agent.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`the network namespace agent exited (${code}): ${net.agentLog.trim().slice(-300)}`));
        });
      });
    } catch (err) {
      await net.close();
      throw err;
    }
    agent.once("exit", (code) => {
      if (!net.closing) onDeath(`the network namespace agent exited (${code}): ${net.agentLog.trim().slice(-300)}`);
    });
    return net;
  }

  /** A command run inside the namespace, exec'd by nsenter so its process is the command's own. */
  wrap(command: string, args: string[]): [string, string[]] {
    return ["nsenter", ["-t", String(this.agent.pid), "-U", "-n", "--preserve-credentials", command, ...args]];
  }

  /** Opens exactly the given TCP ports on `publicIp` (loopback), each carried to the guest; closes the others. */
  async forwardPorts(publicIp: string, ports: number[]): Promise<void> {
    for (const [port, server] of this.forwards)
      if (!ports.includes(port)) {
        this.forwards.delete(port);
        // New connections are refused at once; established ones carry on, as with QEMU's hostfwd_remove on user
        // networking (what Scaleway does to a tracked flow when a rule changes is not documented: unverified).
        // Waiting for them to end held the API's answer for as long as a client kept its SSH connection open.
        server.close();
      }
    for (const port of ports.filter((p) => !this.forwards.has(p))) {
      const server = createServer({ pauseOnConnect: true }, (client) => {
        const inside = connect(this.forwardSocket);
        inside.write(`${port}\n`);
        join2(client, inside);
        client.resume();
      });
      await new Promise<void>((resolve, reject) => {
        server.once("error", (err) => reject(new Error(`forwarding ${publicIp}:${port}: ${err.message}`)));
        server.listen(port, publicIp, resolve);
      });
      this.forwards.set(port, server);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.agent.kill("SIGKILL");
    for (const server of this.forwards.values()) server.close();
    this.forwards.clear();
    this.dns.close();
    await this.stopMetadata();
  }
}
