/**
 * A Scaleway API emulator for the `local` stack and the test battery: the Instance (`/instance/v1`), Block Storage
 * (`/block/v1`) and VPC (`/vpc/v2`) endpoints the factory and its test runner use, on loopback, with the shapes,
 * status codes, state names and error bodies of the recorded real API. Instances are real QEMU machines: volumes
 * are qcow2 files, snapshots are copies (point-in-time through QMP while running), a server's public IPv4 is a
 * loopback address whose forwarded ports follow its security group, Private Network NICs are hot-plugged NICs
 * with DHCP, and the metadata API with user data answers inside each guest at 169.254.42.42.
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { blockWork, registerBlock } from "./block";
import { createState } from "./context";
import { registerImages } from "./images";
import { machines } from "./machines";
import type { FaultBook } from "./faults";
import type { EmulatorOptions, Exchange } from "./model";
import { registerPrivateNetworks } from "./private-networks";
import { createRouter } from "./router";
import { registerSecurityGroups } from "./security-groups";
import { registerServers } from "./servers";
import { registerUserData } from "./user-data";
import { views } from "./views";

export type { EmulatorOptions, Exchange } from "./model";
export type { Fault, FaultBook } from "./faults";

export interface Emulator {
  url: string;
  exchanges: Exchange[];
  /** Faults to inject on demand (tests only). */
  faults: FaultBook;
  /** Serial console of an emulated server, for a failing test's post-mortem. */
  console(serverId: string): string;
  close(): Promise<void>;
}

export async function startEmulator(o: EmulatorOptions): Promise<Emulator> {
  const ctx = createState(o);
  const { servers, s3 } = ctx;
  const exchanges: Exchange[] = [];
  const v = views(ctx);
  const work = blockWork(ctx);
  const r = createRouter(ctx.zone, ctx.region, o.secretKey, exchanges, ctx.faults);
  registerServers(ctx, v, r, work, machines(ctx, v, work));
  registerUserData(ctx, r);
  registerPrivateNetworks(ctx, v, r);
  registerImages(ctx, v, r);
  registerSecurityGroups(ctx, v, r);
  registerBlock(ctx, v, r, work);

  const http: HttpServer = createServer((req, res) => void r.handle(req, res));
  await new Promise<void>((resolve) => http.listen(o.port ?? 0, "127.0.0.1", resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    faults: ctx.faults,
    console: (id) => servers.get(id)?.machine?.console() ?? "",
    async close() {
      for (const s of servers.values()) {
        s.machine?.kill();
        await s.metadata?.close();
      }
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
      s3.destroy();
    },
  };
}
