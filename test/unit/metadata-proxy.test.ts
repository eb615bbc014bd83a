/**
 * The metadata API behind a PROXY v1 unix socket (the emulator's TAP network): the header's source port decides the
 * user data rule; a connection without a valid header is refused with a 400 naming why.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMetadataServer, type MetadataServer } from "../../builder/release/metadata-server";
import { parseProxyLine, proxyLine } from "../../builder/release/proxy-header";

/** Writes `preamble` then a GET, in one write or two, and returns the raw answer up to the server's close. */
function exchange(path: string, preamble: string, request: string, split = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    let got = "";
    c.setEncoding("utf8");
    c.on("data", (d: string) => (got += d));
    c.on("end", () => resolve(got));
    c.on("error", reject);
    c.once("connect", () => {
      if (split) {
        c.write(preamble);
        setTimeout(() => c.write(request), 50);
      } else c.write(preamble + request);
    });
  });
}

const get = (p: string) => `GET ${p} HTTP/1.1\r\nhost: 169.254.42.42\r\n\r\n`;
const header = (sport: number) =>
  proxyLine({
    sourceAddress: "169.254.0.15",
    destinationAddress: "169.254.42.42",
    sourcePort: sport,
    destinationPort: 80,
  });
const status = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);

describe("PROXY v1 header parsing", () => {
  it.each([
    { line: "PROXY TCP4 169.254.0.15 169.254.42.42 1 80", sourcePort: 1 },
    { line: "PROXY TCP4 10.0.0.1 10.0.0.2 65535 80", sourcePort: 65535 },
  ])("reads $line", ({ line, sourcePort }) => expect(parseProxyLine(line).sourcePort).toBe(sourcePort));

  it.each([
    { line: "GET / HTTP/1.1", error: /no PROXY header/ },
    { line: "PROXY TCP6 ::1 ::1 1 80", error: /unsupported protocol "TCP6"/ },
    { line: "PROXY UNKNOWN", error: /unsupported protocol "UNKNOWN"/ },
    { line: "PROXY TCP4 169.254.0.15 169.254.42.42 1", error: /5 fields, expected 6/ },
    { line: "PROXY TCP4 169.254.0.256 169.254.42.42 1 80", error: /bad source address/ },
    { line: "PROXY TCP4 169.254.0.15 169.254.42.42 65536 80", error: /bad source port "65536"/ },
    { line: "PROXY TCP4 169.254.0.15 169.254.42.42 01 80", error: /bad source port "01"/ },
    { line: "PROXY TCP4 169.254.0.15 169.254.42.42 1 x", error: /bad destination port "x"/ },
  ])("refuses $line", ({ line, error }) => expect(() => parseProxyLine(line)).toThrow(error));

  it("writes what it reads", () => {
    const h = {
      sourceAddress: "169.254.0.15",
      destinationAddress: "169.254.42.42",
      sourcePort: 1,
      destinationPort: 80,
    };
    expect(parseProxyLine(proxyLine(h).trimEnd())).toEqual(h);
  });
});

describe("metadata server on a PROXY unix socket", () => {
  let dir: string;
  let md: MetadataServer;
  let stop: () => Promise<void>;
  const sock = () => join(dir, "md.sock");

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "md-"));
    // The rule is off for the TCP listener: the PROXY listener applies it anyway.
    md = await startMetadataServer({ id: "i-1" }, { userData: new Map([["cloud-init", "#cloud-config\n"]]) });
    stop = await md.listenProxied(sock());
  });
  afterAll(async () => {
    await stop();
    await md.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    { path: "/user_data/cloud-init", sport: 1, status: 200 },
    { path: "/user_data/cloud-init", sport: 1023, status: 200 },
    { path: "/user_data/cloud-init", sport: 1024, status: 403 },
    { path: "/user_data", sport: 1023, status: 200 },
    { path: "/user_data", sport: 40000, status: 403 },
    { path: "/conf?format=json", sport: 1, status: 200 },
    { path: "/conf?format=json", sport: 40000, status: 200 },
  ])("answers $path from source port $sport with $status", async ({ path, sport, status: want }) => {
    for (const split of [false, true]) {
      const raw = await exchange(sock(), header(sport), get(path), split);
      expect(status(raw)).toBe(want);
      // The server closes after its answer (the test's read ends), and says so.
      expect(raw).toMatch(/\r\nconnection: close\r\n/i);
      if (want === 200 && path === "/user_data/cloud-init") expect(raw).toMatch(/\r\n\r\n#cloud-config\n$/);
    }
  });

  it.each([
    { why: "no header", preamble: "", message: /no PROXY header: the connection starts with "GET/ },
    { why: "a malformed header", preamble: "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", message: /5 fields, expected 6/ },
    { why: "a header too long", preamble: `PROXY ${"x".repeat(120)}`, message: /within 107 bytes/ },
  ])("refuses a connection with $why: 400 naming it", async ({ preamble, message }) => {
    const raw = await exchange(sock(), preamble, get("/user_data"));
    expect(status(raw)).toBe(400);
    expect(raw).toMatch(message);
  });

  it("still serves the TCP listener, the rule off there", async () => {
    const r = await fetch(`${md.url}/user_data/cloud-init`);
    expect(r.status).toBe(200);
  });
});
