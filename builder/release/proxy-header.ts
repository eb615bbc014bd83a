/**
 * The PROXY protocol's text header (version 1, haproxy's proxy-protocol.txt): how a forwarder tells the server
 * behind it the client's real address and TCP source port, which the metadata API's user data rule depends on.
 */
import type { Socket } from "node:net";

export interface ProxyHeader {
  sourceAddress: string;
  destinationAddress: string;
  sourcePort: number;
  destinationPort: number;
}

/** The spec's bound: a v1 line is at most 107 bytes, CRLF included. */
export const PROXY_V1_MAX = 107;

export function proxyLine(h: ProxyHeader): string {
  return `PROXY TCP4 ${h.sourceAddress} ${h.destinationAddress} ${h.sourcePort} ${h.destinationPort}\r\n`;
}

const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const port = (s: string | undefined, what: string) => {
  if (!s || !/^(0|[1-9]\d{0,4})$/.test(s) || Number(s) > 65535) throw new Error(`PROXY header: bad ${what} "${s}"`);
  return Number(s);
};

/** One header line without its CRLF; only TCP4, the one family the emulated metadata API is reached by. */
export function parseProxyLine(line: string): ProxyHeader {
  const f = line.split(" ");
  if (f[0] !== "PROXY") throw new Error(`no PROXY header: the connection starts with "${line.slice(0, 40)}"`);
  if (f[1] !== "TCP4") throw new Error(`PROXY header: unsupported protocol "${f[1] ?? ""}" (only TCP4)`);
  if (f.length !== 6) throw new Error(`PROXY header: ${f.length} fields, expected 6`);
  for (const [a, what] of [
    [f[2], "source address"],
    [f[3], "destination address"],
  ] as const)
    if (!v4.test(a!)) throw new Error(`PROXY header: bad ${what} "${a}"`);
  return {
    sourceAddress: f[2]!,
    destinationAddress: f[3]!,
    sourcePort: port(f[4], "source port"),
    destinationPort: port(f[5], "destination port"),
  };
}

/**
 * Reads the header off a fresh connection: resolves with it and whatever followed it in the same read, the socket
 * paused; rejects when the first line is not a header or does not end within the spec's bound.
 */
export function readProxyHeader(sock: Socket, timeoutMs = 5_000): Promise<{ header: ProxyHeader; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const done = (err?: Error, value?: { header: ProxyHeader; rest: Buffer }) => {
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("end", onEnd);
      sock.pause();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => done(new Error(`no PROXY header within ${timeoutMs / 1000} s`)), timeoutMs);
    const onEnd = () => done(new Error("connection closed before its PROXY header"));
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const crlf = got.indexOf("\r\n");
      if (crlf + 2 > PROXY_V1_MAX || (crlf < 0 && got.length >= PROXY_V1_MAX))
        return done(new Error(`no PROXY header line within ${PROXY_V1_MAX} bytes`));
      if (crlf < 0) return;
      try {
        done(undefined, {
          header: parseProxyLine(got.subarray(0, crlf).toString("latin1")),
          rest: got.subarray(crlf + 2),
        });
      } catch (err) {
        done(err as Error);
      }
    };
    sock.on("data", onData);
    sock.once("end", onEnd);
  });
}
