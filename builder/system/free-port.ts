import { createServer, type AddressInfo } from "node:net";

/** A TCP port free on loopback right now: the kernel picks it, the probe closes before anyone binds it. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Thrown when a port a stack file names is taken: the message says which setting and what probably holds it. */
export class PortInUseError extends Error {}

/**
 * Rethrows a listen failure on a port the stack names as a PortInUseError naming the setting; other errors as they
 * are.
 */
export function portTaken(err: unknown, setting: string, port: number): Error {
  return (err as NodeJS.ErrnoException)?.code === "EADDRINUSE"
    ? new PortInUseError(
        `${setting}: 127.0.0.1:${port} is in use (another local job on this machine?): wait for it to end or stop it`,
      )
    : (err as Error);
}

/** Fails with a PortInUseError when `port` cannot be bound on loopback now. */
export async function ensurePortFree(port: number, setting: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = createServer();
    s.once("error", (err) => reject(portTaken(err, setting, port)));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve()));
  });
}
