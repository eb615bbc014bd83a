/**
 * Two local jobs on one machine: the stack file fixes the mirror's and the S3 server's ports, so the second job must
 * stop with an error naming the setting and the port, before it touches the first one's mirror tree. No build, no
 * boot: the job ends before its first step (it needs the fixture, cached per user like every other test's).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLocalJob } from "../../builder/local/local-job";
import { ensurePortFree, PortInUseError } from "../../builder/system/free-port";

const hold = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(port, "127.0.0.1", () => resolve(s));
  });
const release = (s: Server) => new Promise<void>((r) => s.close(() => r()));

let state: string;
const marker = () => join(state, "www", "the-running-job.txt");
const saved = process.env.FACTORY_LOCAL_STATE;

beforeAll(() => {
  state = mkdtempSync(join(tmpdir(), "local-ports-"));
  mkdirSync(join(state, "www"));
  process.env.FACTORY_LOCAL_STATE = state;
});
afterAll(() => {
  if (saved === undefined) delete process.env.FACTORY_LOCAL_STATE;
  else process.env.FACTORY_LOCAL_STATE = saved;
  rmSync(state, { recursive: true, force: true });
});

describe("a second local job on the same machine", () => {
  it.each([
    { setting: "image-factory:mirror", port: 18680 },
    { setting: "image-factory:s3Endpoint", port: 18681 },
  ])("stops on $setting's port, the running job's mirror tree untouched", async ({ setting, port }) => {
    writeFileSync(marker(), "served by the job that holds the ports\n");
    const held = await hold(port);
    try {
      const err = await runLocalJob({ test: false }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PortInUseError);
      expect((err as Error).message).toBe(
        `${setting}: 127.0.0.1:${port} is in use (another local job on this machine?): wait for it to end or stop it`,
      );
      expect(existsSync(marker())).toBe(true);
    } finally {
      await release(held);
    }
    // Nothing of the refused job keeps a port: both are free again.
    await ensurePortFree(18680, "mirror");
    await ensurePortFree(18681, "s3");
  });
});
