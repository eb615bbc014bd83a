/**
 * The inside of one emulated machine's network namespace (`unshare -Urn node netns-agent.js <config>`): the TAP
 * device QEMU's public NIC plugs into, and what sits behind it on Scaleway — DHCP, DNS at the gateway, the metadata
 * API at 169.254.42.42 — each carried to the emulator over a unix socket, so the guest's real TCP connections (their
 * source ports, their closes) reach it. Prints `ready` once everything listens; exits when its stdin closes (the
 * emulator went away) so nothing outlives the machine.
 */
import { spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect, createServer, type Socket } from "node:net";
import { answerDhcp, parseDhcp } from "./dhcp";
import { proxyLine } from "../release/proxy-header";

export interface AgentConfig {
  tap: string;
  mac: string;
  /** The guest's fixed address, inside 169.254.0.0/16. */
  guest: string;
  gateway: string;
  metadata: string;
  /** Unix sockets on the emulator's side. */
  metadataSocket: string;
  dnsSocket: string;
  /** Unix socket this agent listens on for forwarded public ports: `<port>\n`, then the stream. */
  forwardSocket: string;
}

const sh = (cmd: string[]) => {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${(r.stderr || r.error?.message || "").trim()}`);
};

/** Two streams joined until either ends; an error on one drops both. */
export function join2(a: Socket, b: Socket): void {
  a.on("error", () => b.destroy());
  b.on("error", () => a.destroy());
  a.pipe(b);
  b.pipe(a);
}

const listen = (server: ReturnType<typeof createServer>, ...at: [string] | [number, string]) =>
  new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (at.length === 1) server.listen(at[0], resolve);
    else server.listen(at[0], at[1], resolve);
  });

async function main(c: AgentConfig): Promise<void> {
  sh(["ip", "link", "set", "lo", "up"]);
  sh(["ip", "tuntap", "add", "dev", c.tap, "mode", "tap"]);
  sh(["ip", "addr", "add", `${c.gateway}/16`, "dev", c.tap]);
  sh(["ip", "addr", "add", `${c.metadata}/32`, "dev", c.tap]);
  sh(["ip", "link", "set", c.tap, "up"]);
  // DHCP answers go to 255.255.255.255, which needs a route; the namespace has nowhere else to send anything.
  sh(["ip", "route", "add", "default", "dev", c.tap]);

  const dhcp = createSocket("udp4");
  dhcp.on("message", (msg) => {
    try {
      const answer = answerDhcp(parseDhcp(msg), {
        mac: c.mac,
        address: c.guest,
        gateway: c.gateway,
        prefix: 16,
        leaseSeconds: 86_400,
      });
      if (answer) dhcp.send(answer.packet, 68, "255.255.255.255");
    } catch (err) {
      process.stderr.write(`dhcp: ${(err as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve) => dhcp.bind(67, "0.0.0.0", resolve));
  dhcp.setBroadcast(true);

  // DNS: the unix socket speaks DNS-over-TCP framing (2-byte length), so TCP queries are a plain pipe.
  const dnsUdp = createSocket("udp4");
  dnsUdp.on("message", (query, from) => {
    const up = connect(c.dnsSocket);
    let got = Buffer.alloc(0);
    up.on("error", () => up.destroy());
    up.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        dnsUdp.send(got.subarray(2, 2 + got.readUInt16BE(0)), from.port, from.address);
        up.end();
      }
    });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(query.length);
    up.write(Buffer.concat([len, query]));
  });
  await new Promise<void>((resolve) => dnsUdp.bind(53, c.gateway, resolve));
  await listen(
    createServer((s) => join2(s, connect(c.dnsSocket))),
    53,
    c.gateway,
  );

  await listen(
    createServer((s) => {
      const up = connect(c.metadataSocket);
      up.write(
        proxyLine({
          sourceAddress: s.remoteAddress!.replace(/^::ffff:/, ""),
          destinationAddress: c.metadata,
          sourcePort: s.remotePort!,
          destinationPort: 80,
        }),
      );
      join2(s, up);
    }),
    80,
    c.metadata,
  );

  await listen(
    createServer((s) => {
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const nl = head.indexOf("\n");
        if (nl < 0) return void (head.length > 8 && s.destroy());
        s.off("data", onData);
        s.pause();
        const port = Number(head.subarray(0, nl).toString());
        const guest = connect(port, c.guest);
        guest.once("connect", () => {
          if (head.length > nl + 1) guest.write(head.subarray(nl + 1));
          join2(s, guest);
          s.resume();
        });
        // A port the guest does not listen on: the emulator's caller sees the connection dropped.
        guest.once("error", () => s.destroy());
      };
      s.on("data", onData);
      s.on("error", () => s.destroy());
    }),
    c.forwardSocket,
  );

  process.stdin.resume();
  process.stdin.once("end", () => process.exit(0));
  process.stdin.once("close", () => process.exit(0));
  process.stdout.write("ready\n");
}

if (require.main === module) {
  main(JSON.parse(process.argv[2] ?? "{}") as AgentConfig).catch((err: Error) => {
    process.stderr.write(`netns agent: ${err.message}\n`);
    process.exit(1);
  });
}
