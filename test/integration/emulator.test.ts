/**
 * The Scaleway API emulator against the real API's recorded traffic (go-vcr cassettes of the Terraform provider's
 * acceptance tests, read from the shared folder, never copied here): for every endpoint and status the emulator
 * answers that the recordings also hold, each field path the real API returned is present; state names come from
 * the recorded sets; errors have the recorded shape. Runs flows that need no boot (volumes, snapshots, images,
 * servers, user data, errors); booted behaviour is covered by the battery test.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../../builder/emulator/api";
import { liveImages } from "../../builder/cli/release-commands";
import { checkImageMetadata } from "../../builder/core/scs-check";
import { scsMetadata, scsTags } from "../../builder/core/scs";
import { loadCatalog } from "../../images";

const RECORDINGS =
  process.env.FACTORY_API_RECORDINGS ?? join(__dirname, "..", "..", "..", "shared", "scaleway-api-recordings");
const ZONE = "fr-par-1";
const SECRET = "00000000-0000-4000-8000-000000000001";
const PROJECT = "00000000-0000-4000-8000-000000000002";

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
/** `GET /instance/v1/zones/fr-par-1/servers/{id}/user_data/{key}` */
function template(method: string, path: string): string {
  return `${method} ${path.replace(UUID, "{id}").replace(/\/user_data\/[^/]+$/, "/user_data/{key}")}`;
}

/** Field paths of a JSON value, maps of numbered or id-keyed entries and arrays collapsed to `*`. */
function fieldPaths(value: unknown, prefix = "", depth = 4): Set<string> {
  const out = new Set<string>();
  if (depth === 0 || value === null || typeof value !== "object") return out;
  const entries = Array.isArray(value) ? value.map((v) => ["*", v] as const) : Object.entries(value);
  for (const [k, v] of entries) {
    const key = /^\d+$|^[0-9a-f]{8}-|^[A-Z0-9]+-[A-Z0-9-]+$/.test(k) ? "*" : k;
    const path = prefix ? `${prefix}.${key}` : key;
    out.add(path);
    for (const p of fieldPaths(v, path, depth - 1)) out.add(p);
  }
  return out;
}

interface Recorded {
  paths: Set<string>;
  states: Set<string>;
}

function loadRecordings(): Map<string, Recorded> {
  if (!existsSync(RECORDINGS))
    throw new Error(`API recordings not found at ${RECORDINGS} (set FACTORY_API_RECORDINGS)`);
  const byEndpoint = new Map<string, Recorded>();
  for (const file of readdirSync(RECORDINGS).filter((f) => f.endsWith(".cassette.yaml"))) {
    const cassette = parse(readFileSync(join(RECORDINGS, file), "utf8")) as {
      interactions: {
        request: { url: string; method: string };
        response: { code: number; body: string; headers?: Record<string, string[]> };
      }[];
    };
    for (const { request, response } of cassette.interactions) {
      const url = new URL(request.url);
      if (url.hostname !== "api.scaleway.com") continue;
      const key = `${template(request.method, url.pathname)} ${response.code}`;
      const entry = byEndpoint.get(key) ?? { paths: new Set<string>(), states: new Set<string>() };
      byEndpoint.set(key, entry);
      const type = (response.headers?.["Content-Type"] ?? [])[0] ?? "";
      if (!response.body || !type.includes("json")) continue;
      const body = JSON.parse(response.body) as Record<string, unknown>;
      // A field the real API returned on any answer to this endpoint must be in the emulator's answer.
      if (entry.paths.size === 0) for (const p of fieldPaths(body)) entry.paths.add(p);
      else {
        const these = fieldPaths(body);
        for (const p of [...entry.paths]) if (!these.has(p)) entry.paths.delete(p);
      }
      const server = (body as { server?: { state?: string } }).server;
      if (server?.state) entry.states.add(server.state);
      if (typeof body.status === "string") entry.states.add(body.status);
    }
  }
  return byEndpoint;
}

describe("Scaleway API emulator, compared with recorded real traffic", () => {
  let emulator: Emulator;
  const state = mkdtempSync(join(tmpdir(), "factory-emulator-"));
  const recorded = loadRecordings();
  const api = async (method: string, path: string, body?: unknown, token = SECRET) => {
    const res = await fetch(`${emulator.url}${path}`, {
      method,
      headers: {
        "x-auth-token": token,
        ...(body === undefined
          ? {}
          : typeof body === "string"
            ? { "content-type": "text/plain" }
            : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      body:
        (res.headers.get("content-type") ?? "").includes("json") && text
          ? (JSON.parse(text) as Record<string, any>)
          : text,
    };
  };
  const until = async (path: string, field: (b: Record<string, any>) => string, want: string) => {
    for (let i = 0; i < 200; i++) {
      const r = await api("GET", path);
      if (field(r.body as Record<string, any>) === want) return r;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${path} never became ${want}`);
  };
  const I = `/instance/v1/zones/${ZONE}`;
  const B = `/block/v1/zones/${ZONE}`;

  beforeAll(async () => {
    emulator = await startEmulator({
      stateDir: state,
      secretKey: SECRET,
      projectId: PROJECT,
      zone: ZONE,
      accel: "tcg",
      s3: { endpoint: "http://127.0.0.1:9", region: "fr-par", accessKeyId: "x", secretAccessKey: "x" },
    });
  });
  afterAll(async () => {
    await emulator?.close();
    rmSync(state, { recursive: true, force: true });
  });

  it("answers a volume → snapshot → image → server → user data → teardown flow with the recorded shapes", async () => {
    expect((await api("GET", `${I}/products/servers`)).status).toBe(200);
    const vol = await api("POST", `${B}/volumes`, {
      name: "conformance",
      perf_iops: 5000,
      project_id: PROJECT,
      from_empty: { size: 10_000_000_000 },
      tags: [],
    });
    expect(vol.status).toBe(200);
    const volumeId = (vol.body as { id: string }).id;
    await until(`${B}/volumes/${volumeId}`, (b) => b.status, "available");
    const snap = await api("POST", `${B}/snapshots`, {
      volume_id: volumeId,
      name: "conformance",
      project_id: PROJECT,
      tags: [],
      public: false,
    });
    const snapshotId = (snap.body as { id: string }).id;
    await until(`${B}/snapshots/${snapshotId}`, (b) => b.status, "available");
    const image = await api("POST", `${I}/images`, {
      name: "conformance",
      root_volume: snapshotId,
      arch: "x86_64",
      project: PROJECT,
      public: false,
    });
    expect(image.status).toBe(201);
    const imageId = (image.body as { image: { id: string } }).image.id;
    expect((await api("GET", `${I}/images/${imageId}`)).status).toBe(200);
    expect((await api("PATCH", `${I}/images/${imageId}`, { name: "conformance-2" })).status).toBe(200);
    const server = await api("POST", `${I}/servers`, {
      name: "conformance",
      dynamic_ip_required: false,
      commercial_type: "DEV1-S",
      image: imageId,
      volumes: { "0": { boot: false, size: 10_000_000_000, volume_type: "sbs_volume" } },
      boot_type: "local",
      project: PROJECT,
      tags: ["a"],
    });
    expect(server.status).toBe(201);
    const s = (server.body as { server: { id: string; state: string; volumes: Record<string, { id: string }> } })
      .server;
    expect(s.state).toBe("stopped");
    const rootId = s.volumes["0"]!.id;
    await until(`${B}/volumes/${rootId}`, (b) => b.status, "in_use");
    expect((await api("GET", `${I}/servers/${s.id}`)).status).toBe(200);
    expect((await api("GET", `${I}/servers/${s.id}/private_nics`)).body).toEqual({ private_nics: [] });
    expect((await api("GET", `${I}/servers/${s.id}/user_data`)).body).toEqual({ user_data: [] });
    expect((await api("PATCH", `${I}/servers/${s.id}/user_data/foo`, "bar")).status).toBe(204);
    expect(await api("GET", `${I}/servers/${s.id}/user_data/foo`)).toEqual({ status: 200, body: "bar" });
    expect((await api("DELETE", `${I}/servers/${s.id}/user_data/foo`)).status).toBe(204);
    expect((await api("PATCH", `${I}/servers/${s.id}`, { tags: ["a", "b"] })).status).toBe(200);
    expect((await api("GET", `${I}/volumes/${rootId}`)).status).toBe(404);
    expect((await api("DELETE", `${I}/servers/${s.id}`)).status).toBe(204);
    expect((await api("GET", `${I}/servers/${s.id}`)).status).toBe(404);
    expect((await api("DELETE", `${B}/snapshots/${snapshotId}`)).status).toBe(412);
    expect((await api("DELETE", `${I}/images/${imageId}`)).status).toBe(204);
    expect((await api("GET", `${I}/images/${imageId}`)).status).toBe(404);
    expect((await api("DELETE", `${B}/snapshots/${snapshotId}`)).status).toBe(204);
    expect((await api("GET", `${B}/snapshots/${snapshotId}`)).status).toBe(404);
    expect((await api("DELETE", `${B}/snapshots/${snapshotId}`)).status).toBe(404);
    for (const id of [volumeId, rootId]) expect((await api("DELETE", `${B}/volumes/${id}`)).status).toBe(204);
    expect((await api("GET", `${B}/volumes/${volumeId}`)).status).toBe(404);

    // Every exchange the recordings also hold: same status family, every recorded field present.
    const compared: string[] = [];
    const missing: string[] = [];
    for (const x of emulator.exchanges) {
      const key = `${template(x.method, x.path)} ${x.status}`;
      const real = recorded.get(key);
      if (!real) continue;
      compared.push(key);
      const ours = fieldPaths(x.body);
      for (const p of real.paths) if (!ours.has(p)) missing.push(`${key}: ${p}`);
      const server = (x.body as { server?: { state?: string } } | undefined)?.server;
      if (server?.state && real.states.size) expect(real.states, key).toContain(server.state);
    }
    expect([...new Set(missing)]).toEqual([]);
    // The comparison really covered the flow: these endpoints are all in the recordings.
    expect(new Set(compared)).toEqual(
      new Set([
        `GET ${I}/products/servers 200`,
        `POST ${B}/volumes 200`,
        `GET ${B}/volumes/{id} 200`,
        `POST ${B}/snapshots 200`,
        `GET ${B}/snapshots/{id} 200`,
        `POST ${I}/images 201`,
        `GET ${I}/images/{id} 200`,
        `PATCH ${I}/images/{id} 200`,
        `POST ${I}/servers 201`,
        `GET ${I}/servers/{id} 200`,
        `GET ${I}/servers/{id}/private_nics 200`,
        `GET ${I}/servers/{id}/user_data 200`,
        `PATCH ${I}/servers/{id}/user_data/{key} 204`,
        `GET ${I}/servers/{id}/user_data/{key} 200`,
        `DELETE ${I}/servers/{id}/user_data/{key} 204`,
        `PATCH ${I}/servers/{id} 200`,
        `GET ${I}/volumes/{id} 404`,
        `GET ${I}/servers/{id} 404`,
        `DELETE ${I}/images/{id} 204`,
        `GET ${I}/images/{id} 404`,
        `DELETE ${B}/snapshots/{id} 204`,
        `GET ${B}/snapshots/{id} 404`,
        `DELETE ${B}/snapshots/{id} 404`,
        `DELETE ${B}/volumes/{id} 204`,
        `GET ${B}/volumes/{id} 404`,
      ]),
    );
  });

  it("lets scs-check --live read the factory's images back from their tags, and judge them", async () => {
    const catalog = loadCatalog();
    const tags = [
      ...scsTags(scsMetadata(catalog, catalog.byId.get("debian-12")!, "x86_64")),
      "factory:release=debian-12",
      "scs:image_build_date=2026-11-20",
    ];
    const vol = await api("POST", `${B}/volumes`, {
      name: "scs",
      perf_iops: 5000,
      project_id: PROJECT,
      from_empty: { size: 10_000_000_000 },
      tags: [],
    });
    const volumeId = (vol.body as { id: string }).id;
    await until(`${B}/volumes/${volumeId}`, (b) => b.status, "available");
    const snap = await api("POST", `${B}/snapshots`, {
      volume_id: volumeId,
      name: "scs",
      project_id: PROJECT,
      tags: [],
      public: false,
    });
    const snapshotId = (snap.body as { id: string }).id;
    await until(`${B}/snapshots/${snapshotId}`, (b) => b.status, "available");
    const image = await api("POST", `${I}/images`, {
      name: "Debian 12 Bookworm (x86_64)",
      root_volume: snapshotId,
      arch: "x86_64",
      project: PROJECT,
      public: false,
      tags,
    });
    const imageId = (image.body as { image: { id: string } }).image.id;
    // An image that is not the factory's is not judged.
    await api("POST", `${I}/images`, {
      name: "someone else's",
      root_volume: snapshotId,
      arch: "x86_64",
      project: PROJECT,
      public: false,
      tags: ["other"],
    });
    const env = {
      SCW_ACCESS_KEY: "SCWXXXXXXXXXXXXXXXXX",
      SCW_SECRET_KEY: SECRET,
      SCW_DEFAULT_PROJECT_ID: PROJECT,
      SCW_API_URL: emulator.url,
    };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const live = await liveImages(ZONE);
      expect(live.map((i) => i.subject)).toEqual([`Debian 12 Bookworm (x86_64) (${imageId})`]);
      expect(live[0]!.meta).toMatchObject({ os_distro: "debian", min_ram: 512, image_build_date: "2026-11-20" });
      expect(live.flatMap((i) => checkImageMetadata(i.subject, i.meta, { at: "2026-11-23", built: true }))).toEqual([]);
      await api("PATCH", `${I}/images/${imageId}`, {
        tags: [
          ...tags.filter((t) => !t.startsWith("scs:os_distro=") && !t.startsWith("scs:image_build_date=")),
          "scs:image_build_date=2026-06-01",
        ],
      });
      const stale = (await liveImages(ZONE)).flatMap((i) =>
        checkImageMetadata(i.subject, i.meta, { at: "2026-11-23", built: true }),
      );
      expect(stale.map((f) => f.message)).toEqual([
        "os_distro is missing",
        "built 2026-06-01, 175 days before 2026-11-23: older than replace_frequency quarterly allows (106 days)",
      ]);
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it("refuses a request without the secret key, and names the bad field of a bad request", async () => {
    const denied = await api("GET", `${I}/servers`, undefined, "wrong");
    expect(denied.status).toBe(401);
    expect((denied.body as { type: string }).type).toBe("denied_authentication");
    const bad = await api("POST", `${I}/servers`, {
      name: "x",
      commercial_type: "NOPE-1",
      image: "00000000-0000-4000-8000-000000000009",
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({
      message: `commercial_type NOPE-1 is not available in ${ZONE}`,
      fields: { commercial_type: ["invalid"] },
    });
    const unknownImage = await api("POST", `${I}/servers`, {
      name: "x",
      commercial_type: "DEV1-S",
      image: "00000000-0000-4000-8000-000000000009",
    });
    expect(unknownImage).toMatchObject({ status: 404, body: { type: "not_found", resource: "instance_image" } });
    const notJson = await fetch(`${emulator.url}${I}/servers`, {
      method: "POST",
      headers: { "x-auth-token": SECRET, "content-type": "application/json" },
      body: "{",
    });
    expect(notJson.status).toBe(400);
  });
});
