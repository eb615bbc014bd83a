/**
 * The DHCP server of an emulated Instance's public NIC (RFC 2131/2132), as pure functions: one fixed lease for the
 * machine's MAC, the way Scaleway's own DHCP hands each Instance its address. The agent in the machine's network
 * namespace (netns-agent.ts) runs it on UDP 67.
 */

export const DHCP = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;

const MAGIC = 0x63825363;
const OPTIONS_AT = 240;
const OPT = { mask: 1, router: 3, dns: 6, broadcast: 28, requested: 50, lease: 51, type: 53, server: 54, end: 255 };

export interface DhcpPacket {
  op: number;
  xid: number;
  flags: number;
  ciaddr: string;
  giaddr: string;
  /** Lower-case, colon-separated. */
  mac: string;
  options: Map<number, Buffer>;
}

export interface Lease {
  mac: string;
  address: string;
  /** Also the server identifier, the router and the DNS server. */
  gateway: string;
  prefix: number;
  leaseSeconds: number;
}

const ip = (b: Buffer, at: number) => [...b.subarray(at, at + 4)].join(".");
const ipBytes = (a: string) => {
  const parts = a.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${a}`);
  return Buffer.from(parts);
};
const maskOf = (prefix: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
  return b;
};

/** A BOOTP/DHCP message, or an error naming what is wrong with it. */
export function parseDhcp(b: Buffer): DhcpPacket {
  if (b.length < OPTIONS_AT + 1) throw new Error(`DHCP message too short: ${b.length} bytes`);
  if (b.readUInt32BE(236) !== MAGIC) throw new Error("DHCP message without the magic cookie");
  if (b[1] !== 1 || b[2] !== 6) throw new Error(`DHCP message for hardware type ${b[1]}/${b[2]}, not Ethernet`);
  const options = new Map<number, Buffer>();
  for (let i = OPTIONS_AT; i < b.length;) {
    const code = b[i]!;
    if (code === OPT.end) break;
    if (code === 0) {
      i++;
      continue;
    }
    const len = b[i + 1];
    if (len === undefined || i + 2 + len > b.length) throw new Error(`DHCP option ${code} runs past the message`);
    options.set(code, b.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return {
    op: b[0]!,
    xid: b.readUInt32BE(4),
    flags: b.readUInt16BE(10),
    ciaddr: ip(b, 12),
    giaddr: ip(b, 24),
    mac: [...b.subarray(28, 34)].map((x) => x.toString(16).padStart(2, "0")).join(":"),
    options,
  };
}

export const messageType = (p: DhcpPacket) => p.options.get(OPT.type)?.[0];

/** The reply to a client's message under a fixed lease, or undefined when it gets none (not ours, or no reply due). */
export function answerDhcp(p: DhcpPacket, lease: Lease): { type: number; packet: Buffer } | undefined {
  if (p.op !== 1 || p.mac !== lease.mac.toLowerCase()) return undefined;
  const type = messageType(p);
  const server = p.options.get(OPT.server);
  if (type === DHCP.DISCOVER) return { type: DHCP.OFFER, packet: buildReply(p, lease, DHCP.OFFER) };
  if (type === DHCP.REQUEST) {
    // A REQUEST answering another server's offer is not for us (RFC 2131 4.3.2).
    if (server && ip(server, 0) !== lease.gateway) return undefined;
    const requested = p.options.get(OPT.requested);
    const wants = requested?.length === 4 ? ip(requested, 0) : p.ciaddr;
    const ok = wants === lease.address;
    return { type: ok ? DHCP.ACK : DHCP.NAK, packet: buildReply(p, lease, ok ? DHCP.ACK : DHCP.NAK) };
  }
  if (type === DHCP.INFORM) return { type: DHCP.ACK, packet: buildReply(p, lease, DHCP.ACK, false) };
  return undefined;
}

function buildReply(p: DhcpPacket, lease: Lease, type: number, withAddress = true): Buffer {
  const head = Buffer.alloc(OPTIONS_AT);
  head[0] = 2;
  head[1] = 1;
  head[2] = 6;
  head.writeUInt32BE(p.xid, 4);
  head.writeUInt16BE(p.flags, 10);
  if (type !== DHCP.NAK) {
    if (withAddress) ipBytes(lease.address).copy(head, 16);
    else ipBytes(p.ciaddr).copy(head, 12);
    ipBytes(lease.gateway).copy(head, 20);
  }
  ipBytes(p.giaddr).copy(head, 24);
  Buffer.from(p.mac.split(":").map((h) => parseInt(h, 16))).copy(head, 28);
  head.writeUInt32BE(MAGIC, 236);
  const opt = (code: number, value: Buffer) => Buffer.concat([Buffer.from([code, value.length]), value]);
  const seconds = Buffer.alloc(4);
  seconds.writeUInt32BE(lease.leaseSeconds);
  const broadcast = Buffer.from(ipBytes(lease.address).map((b, i) => b | (~maskOf(lease.prefix)[i]! & 255)));
  const options = [opt(OPT.type, Buffer.from([type])), opt(OPT.server, ipBytes(lease.gateway))];
  if (type !== DHCP.NAK)
    options.push(
      ...(withAddress ? [opt(OPT.lease, seconds)] : []),
      opt(OPT.mask, maskOf(lease.prefix)),
      opt(OPT.broadcast, broadcast),
      opt(OPT.router, ipBytes(lease.gateway)),
      opt(OPT.dns, ipBytes(lease.gateway)),
    );
  return Buffer.concat([head, ...options, Buffer.from([OPT.end])]);
}

/** A client's message, for tests and for reading replies the same way. */
export function buildRequest(o: {
  type: number;
  mac: string;
  xid: number;
  requested?: string;
  server?: string;
  ciaddr?: string;
  flags?: number;
}): Buffer {
  const head = Buffer.alloc(OPTIONS_AT);
  head[0] = 1;
  head[1] = 1;
  head[2] = 6;
  head.writeUInt32BE(o.xid, 4);
  head.writeUInt16BE(o.flags ?? 0, 10);
  ipBytes(o.ciaddr ?? "0.0.0.0").copy(head, 12);
  Buffer.from(o.mac.split(":").map((h) => parseInt(h, 16))).copy(head, 28);
  head.writeUInt32BE(MAGIC, 236);
  const options: number[] = [OPT.type, 1, o.type];
  if (o.requested) options.push(OPT.requested, 4, ...ipBytes(o.requested));
  if (o.server) options.push(OPT.server, 4, ...ipBytes(o.server));
  return Buffer.concat([head, Buffer.from([...options, OPT.end])]);
}

/** Option values in readable form, for tests and logs. */
export function describeOptions(p: DhcpPacket): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [code, v] of p.options) {
    const name = Object.entries(OPT).find(([, c]) => c === code)?.[0] ?? String(code);
    out[name] =
      v.length === 1 ? v[0]! : code === OPT.lease ? v.readUInt32BE(0) : v.length === 4 ? ip(v, 0) : v.toString("hex");
  }
  return out;
}

export const yiaddr = (b: Buffer) => ip(b, 16);
