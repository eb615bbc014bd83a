/**
 * The metadata API's source port rule: user data only to privileged source ports (below 1024), conf to anyone.
 * Binding a port below 1024 needs root, as in the guest; the privileged half is skipped for other users.
 */
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { startMetadataServer } from "../../builder/release/metadata-server";

const isRoot = process.getuid?.() === 0;

/** A GET from a chosen local port (0: any ephemeral one); an in-use port is retried on the next, as clients do. */
function get(port: number, path: string, localPort: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, localPort: localPort || undefined, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function fromPrivilegedPort(port: number, path: string) {
  for (let local = 600; local < 700; local++) {
    try {
      return await get(port, path, local);
    } catch (err) {
      if (
        (err as NodeJS.ErrnoException).code !== "EADDRINUSE" &&
        (err as NodeJS.ErrnoException).code !== "EADDRNOTAVAIL"
      )
        throw err;
    }
  }
  throw new Error("no free privileged port between 600 and 699");
}

describe("metadata server source port rule", () => {
  const table = [
    { path: "/user_data", unprivileged: 403 },
    { path: "/user_data/cloud-init", unprivileged: 403 },
    { path: "/conf?format=json", unprivileged: 200 },
  ];

  it.each(table)("answers $path from an unprivileged port with $unprivileged", async ({ path, unprivileged }) => {
    const md = await startMetadataServer(
      { id: "i-1" },
      { privilegedUserData: true, userData: new Map([["cloud-init", "#cloud-config\n"]]) },
    );
    try {
      const r = await get(md.port, path, 0);
      expect(r.status).toBe(unprivileged);
      if (unprivileged === 403) expect(JSON.parse(r.body)).toMatchObject({ type: "permission_denied" });
    } finally {
      await md.close();
    }
  });

  it.skipIf(!isRoot)("serves and accepts user data from a privileged port", async () => {
    const md = await startMetadataServer(
      { id: "i-1" },
      { privilegedUserData: true, userData: new Map([["cloud-init", "#cloud-config\n"]]) },
    );
    try {
      expect(await fromPrivilegedPort(md.port, "/user_data/cloud-init")).toEqual({
        status: 200,
        body: "#cloud-config\n",
      });
      expect(JSON.parse((await fromPrivilegedPort(md.port, "/user_data")).body)).toEqual({ user_data: ["cloud-init"] });
    } finally {
      await md.close();
    }
  });

  it("serves any port when the rule is off (a forwarder in between hides the guest's port)", async () => {
    const md = await startMetadataServer({ id: "i-1" }, { userData: new Map([["cloud-init", "x"]]) });
    try {
      expect(await get(md.port, "/user_data/cloud-init", 0)).toEqual({ status: 200, body: "x" });
    } finally {
      await md.close();
    }
  });
});

describe("metadata server faults (tests only)", () => {
  it("answers what the injector decides for the request it names, and serves the rest", async () => {
    const seen: string[] = [];
    let armed = true;
    const s = await startMetadataServer(
      { id: "server" },
      {
        inject: (op, query) => {
          seen.push(`${op} ${JSON.stringify(query)}`);
          if (op !== "GET /conf" || !armed) return undefined;
          armed = false;
          return { status: 503, body: { type: "internal_error", message: `injected 503 on ${op}` } };
        },
      },
    );
    try {
      expect(await get(s.port, "/conf", 0)).toEqual({
        status: 503,
        body: JSON.stringify({ type: "internal_error", message: "injected 503 on GET /conf" }),
      });
      expect((await get(s.port, "/conf?format=json", 0)).status).toBe(200);
      expect(seen).toEqual(["GET /conf {}", 'GET /conf {"format":"json"}']);
    } finally {
      await s.close();
    }
  });
});
