/** The emulated public NIC's DHCP server: one fixed lease per machine, as the guest's client sees it. */
import { describe, expect, it } from "vitest";
import {
  answerDhcp,
  buildRequest,
  DHCP,
  describeOptions,
  messageType,
  parseDhcp,
  yiaddr,
} from "../../builder/emulator/dhcp";

const lease = {
  mac: "de:00:00:00:00:01",
  address: "169.254.0.15",
  gateway: "169.254.2.2",
  prefix: 16,
  leaseSeconds: 86400,
};
const offered = {
  type: DHCP.OFFER,
  server: "169.254.2.2",
  lease: 86400,
  mask: "255.255.0.0",
  broadcast: "169.254.255.255",
  router: "169.254.2.2",
  dns: "169.254.2.2",
};

describe("DHCP fixed lease", () => {
  it.each([
    { why: "DISCOVER gets an OFFER", req: { type: DHCP.DISCOVER }, reply: DHCP.OFFER, address: "169.254.0.15" },
    {
      why: "REQUEST of the offered address gets an ACK",
      req: { type: DHCP.REQUEST, requested: "169.254.0.15", server: "169.254.2.2" },
      reply: DHCP.ACK,
      address: "169.254.0.15",
    },
    {
      why: "a renewal (ciaddr, no option 50) gets an ACK",
      req: { type: DHCP.REQUEST, ciaddr: "169.254.0.15" },
      reply: DHCP.ACK,
      address: "169.254.0.15",
    },
    {
      why: "REQUEST of another address gets a NAK",
      req: { type: DHCP.REQUEST, requested: "169.254.0.99" },
      reply: DHCP.NAK,
      address: "0.0.0.0",
    },
    {
      why: "REQUEST to another server gets nothing",
      req: { type: DHCP.REQUEST, server: "10.0.0.1" },
      reply: undefined,
    },
    { why: "RELEASE gets nothing", req: { type: DHCP.RELEASE, ciaddr: "169.254.0.15" }, reply: undefined },
    { why: "another MAC gets nothing", req: { type: DHCP.DISCOVER }, mac: "de:00:00:00:00:02", reply: undefined },
  ])("$why", ({ req, mac, reply, address }) => {
    const answer = answerDhcp(
      parseDhcp(buildRequest({ mac: mac ?? lease.mac, xid: 0x1234abcd, flags: 0x8000, ...req })),
      lease,
    );
    expect(answer?.type).toBe(reply);
    if (!answer) return;
    const p = parseDhcp(answer.packet);
    expect(p.op).toBe(2);
    expect(p.xid).toBe(0x1234abcd);
    expect(p.flags).toBe(0x8000);
    expect(p.mac).toBe(lease.mac);
    expect(messageType(p)).toBe(reply);
    expect(yiaddr(answer.packet)).toBe(address);
    if (reply === DHCP.NAK) expect(describeOptions(p)).toEqual({ type: DHCP.NAK, server: "169.254.2.2" });
    else expect(describeOptions(p)).toEqual({ ...offered, type: reply });
  });

  it.each([
    { why: "too short", packet: Buffer.alloc(100), error: /too short: 100 bytes/ },
    { why: "no magic cookie", packet: Buffer.alloc(300), error: /magic cookie/ },
    {
      why: "an option running past the end",
      packet: Buffer.concat([
        buildRequest({ type: 1, mac: lease.mac, xid: 1 }).subarray(0, 240),
        Buffer.from([12, 10, 1]),
      ]),
      error: /option 12 runs past/,
    },
  ])("refuses a message $why", ({ packet, error }) => expect(() => parseDhcp(packet)).toThrow(error));
});
