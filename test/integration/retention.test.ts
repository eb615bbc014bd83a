/**
 * `image-factory retention` (the built CLI) against the emulated Scaleway API: five versions of debian-12 in a zone,
 * a server on the oldest, more than a page of someone else's images and a snapshot an interrupted run stranded.
 * A dry run changes nothing; --apply hides and renames what uuid_validity keeps, deletes what it no longer covers
 * with its snapshot, spares what a server boots from; a second run has nothing left to do; scs-check --live sees
 * one debian-12 instead of five.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../../builder/emulator/api";
import { run, ToolError } from "../../builder/system/exec";
import { HIDDEN_TAG, RETIRED_SNAPSHOT_TAG } from "../../builder/core/retention";
import { scsMetadata, scsTags } from "../../builder/core/scs";
import { loadCatalog } from "../../images";

const ROOT = join(__dirname, "..", "..");
const ZONE = "fr-par-1";
const SECRET = "00000000-0000-4000-8000-000000000001";
const PROJECT = "00000000-0000-4000-8000-000000000002";
const NAME = "Debian 12 Bookworm (x86_64)";
const I = `/instance/v1/zones/${ZONE}`;
const B = `/block/v1/zones/${ZONE}`;
const hash = (c: string) => c.repeat(64);

describe("image-factory retention, against the emulated API", () => {
  let emulator: Emulator;
  const state = mkdtempSync(join(tmpdir(), "factory-retention-"));
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${emulator.url}${path}`, {
      method,
      headers: { "x-auth-token": SECRET, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
  };
  const cli = async (...args: string[]) => {
    const env = {
      ...process.env,
      SCW_ACCESS_KEY: "SCWXXXXXXXXXXXXXXXXX",
      SCW_SECRET_KEY: SECRET,
      SCW_DEFAULT_PROJECT_ID: PROJECT,
      SCW_API_URL: emulator.url,
    };
    try {
      const r = await run(process.execPath, [join(ROOT, "dist", "builder", "cli.js"), ...args], { env });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      if (!(err instanceof ToolError)) throw err;
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  };
  const snapshotOf = async (name: string, tags: string[]) => {
    const vol = await api("POST", `${B}/volumes`, {
      name,
      perf_iops: 5000,
      project_id: PROJECT,
      from_empty: { size: 10_000_000_000 },
      tags: [],
    });
    for (let i = 0; i < 100 && (await api("GET", `${B}/volumes/${vol.body.id}`)).body.status !== "available"; i++)
      await new Promise((r) => setTimeout(r, 100));
    const snap = await api("POST", `${B}/snapshots`, {
      volume_id: vol.body.id,
      name,
      project_id: PROJECT,
      tags,
      public: false,
    });
    for (let i = 0; i < 100 && (await api("GET", `${B}/snapshots/${snap.body.id}`)).body.status !== "available"; i++)
      await new Promise((r) => setTimeout(r, 100));
    await api("DELETE", `${B}/volumes/${vol.body.id}`);
    return snap.body.id as string;
  };

  const versions = [
    { v: "v5", h: "e", built: "2026-11-20" },
    { v: "v4", h: "d", built: "2026-08-20" },
    { v: "v3", h: "c", built: "2026-05-20" },
    { v: "v2", h: "b", built: "2026-02-20" },
    { v: "v1", h: "a", built: "2025-11-20" },
  ];
  const ids: Record<string, { image: string; snapshot: string }> = {};
  let stranded = "";
  let serverId = "";
  const current = `debian-12/x86_64=${hash("e")}`;

  beforeAll(async () => {
    emulator = await startEmulator({
      stateDir: state,
      secretKey: SECRET,
      projectId: PROJECT,
      zone: ZONE,
      accel: "tcg",
      s3: { endpoint: "http://127.0.0.1:9", region: "fr-par", accessKeyId: "x", secretAccessKey: "x" },
    });
    // Someone else's images, over a page of them and listed first: the factory's are on the second page.
    const other = await snapshotOf("other", []);
    for (let i = 0; i < 105; i++)
      await api("POST", `${I}/images`, {
        name: `other-${i}`,
        root_volume: other,
        arch: "x86_64",
        project: PROJECT,
        public: false,
        tags: ["other"],
      });
    const catalog = loadCatalog();
    // The catalog promises uuid_validity last-3 for debian-12.
    const scs = scsTags(scsMetadata(catalog, catalog.byId.get("debian-12")!, "x86_64"));
    expect(scs).toContain("scs:uuid_validity=last-3");
    for (const { v, h, built } of versions) {
      const tags = [
        "factory:release=debian-12",
        `factory:content-hash=${hash(h)}`,
        ...scs,
        `scs:image_build_date=${built}`,
      ];
      const snapshot = await snapshotOf(`debian-12-x86_64-${v}`, tags);
      const image = await api("POST", `${I}/images`, {
        name: NAME,
        root_volume: snapshot,
        arch: "x86_64",
        project: PROJECT,
        public: false,
        tags,
      });
      ids[v] = { image: image.body.image.id, snapshot };
    }
    // A server still boots from the oldest version.
    const server = await api("POST", `${I}/servers`, {
      name: "customer-web-1",
      commercial_type: "DEV1-S",
      image: ids.v1!.image,
      project: PROJECT,
      volumes: { "0": { boot: false, size: 10_000_000_000, volume_type: "sbs_volume" } },
      boot_type: "local",
      dynamic_ip_required: false,
    });
    serverId = server.body.server.id;
    // What an interrupted run left: a snapshot marked retired whose image is already gone.
    stranded = await snapshotOf("debian-12-x86_64-v0", ["factory:release=debian-12", RETIRED_SNAPSHOT_TAG]);
  }, 120_000);
  afterAll(async () => {
    await emulator?.close();
    rmSync(state, { recursive: true, force: true });
  });

  const image = async (v: string) =>
    (await api("GET", `${I}/images/${ids[v]!.image}`)).body.image as
      { name: string; tags: string[]; public: boolean } | undefined;
  const uniqueness = async () => {
    const r = await cli("scs-check", "--live", "--zone", ZONE, "--at", "2026-11-23", "--json");
    return (JSON.parse(r.stdout) as { rule: string; subject: string }[]).filter(
      (f) => f.rule === "SCS-0102 generic uniqueness",
    ).length;
  };

  it("plans without touching anything on a dry run", async () => {
    expect(await uniqueness()).toBe(4);
    const r = await cli("retention", "--zone", ZONE, "--current", current, "--at", "2026-11-23", "--json");
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as {
      applied: boolean;
      steps: { action: string; image: string; rename?: string; reason: string }[];
      outcomes: unknown[];
    };
    expect(plan.applied).toBe(false);
    expect(plan.outcomes).toEqual([]);
    const byVersion = Object.fromEntries(
      versions.map(({ v }) => [v, plan.steps.find((s) => s.image === ids[v]!.image)]),
    );
    expect(Object.fromEntries(Object.entries(byVersion).map(([v, s]) => [v, s?.action]))).toEqual({
      v5: "current",
      v4: "mark",
      v3: "mark",
      v2: "mark",
      v1: "mark",
    });
    expect(byVersion.v4!.rename).toBe(`${NAME} 20260820`);
    expect(byVersion.v1!.reason).toBe(
      `uuid_validity last-3: previous version 4, beyond the last 3, but servers still use it: customer-web-1 (${serverId})`,
    );
    expect(plan.steps).toHaveLength(5);
    for (const { v } of versions) expect((await image(v))!.name).toBe(NAME);
  });

  it("hides and renames the kept versions, spares the one in use, and deletes what is expired and free", async () => {
    const applied = await cli(
      "retention",
      "--zone",
      ZONE,
      "--current",
      current,
      "--at",
      "2026-11-23",
      "--apply",
      "--json",
    );
    expect(applied.code, applied.stderr).toBe(0);
    const outcomes = (JSON.parse(applied.stdout) as { outcomes: { action: string; subject: string; error?: string }[] })
      .outcomes;
    expect(outcomes.filter((o) => o.error)).toEqual([]);
    expect(outcomes.map((o) => o.action).sort()).toEqual(["delete stranded snapshot", "hide", "hide", "hide", "hide"]);

    expect(await image("v5")).toMatchObject({ name: NAME });
    expect((await image("v5"))!.tags).not.toContain(HIDDEN_TAG);
    for (const [v, day] of [
      ["v4", "20260820"],
      ["v3", "20260520"],
      ["v2", "20260220"],
      ["v1", "20251120"],
    ] as const) {
      const img = (await image(v))!;
      expect(img.name, v).toBe(`${NAME} ${day}`);
      expect(img.tags, v).toContain(HIDDEN_TAG);
      expect(img.public, v).toBe(false);
    }
    expect((await api("GET", `${B}/snapshots/${stranded}`)).status).toBe(404);
    expect(await uniqueness()).toBe(0);

    // The customer's server goes: the oldest version is expired and free, and the next run deletes it with its snapshot.
    expect((await api("DELETE", `${I}/servers/${serverId}`)).status).toBe(204);
    const again = await cli(
      "retention",
      "--zone",
      ZONE,
      "--current",
      current,
      "--at",
      "2026-11-23",
      "--apply",
      "--json",
    );
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { outcomes: { action: string }[] }).outcomes.map((o) => o.action)).toEqual([
      "delete",
    ]);
    expect((await api("GET", `${I}/images/${ids.v1!.image}`)).status).toBe(404);
    expect((await api("GET", `${B}/snapshots/${ids.v1!.snapshot}`)).status).toBe(404);
    for (const v of ["v5", "v4", "v3", "v2"])
      expect((await api("GET", `${B}/snapshots/${ids[v]!.snapshot}`)).status, v).toBe(200);
    // Someone else's images were never touched.
    const r = await fetch(`${emulator.url}${I}/images?per_page=100&page=2`, { headers: { "x-auth-token": SECRET } });
    expect(r.headers.get("x-total-count")).toBe(String(105 + 4));
  });

  it("has nothing left to do on a third run", async () => {
    const r = await cli("retention", "--zone", ZONE, "--current", current, "--at", "2026-11-23", "--apply");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/current build eeeeeeeeeeee/);
    expect(r.stdout.match(/ keep /g)).toHaveLength(3);
    expect(r.stdout).not.toMatch(/dry run/);
    expect(r.stderr).not.toMatch(/retention fr-par-1: (hide|delete)/);
  });

  it.each([
    { args: ["--zone", ZONE], error: "--current: give the stack's current builds (REL/ARCH=HASH,...), or --stack" },
    {
      args: ["--zone", ZONE, "--current", "debian-12=eee"],
      error: '--current: current build 1 "debian-12=eee": expected <release>/<x86_64|arm64>=<sha256 content hash>',
    },
    { args: ["--zone", "mars-1", "--current", current], error: "--zone: give a Scaleway Availability Zone" },
  ])("refuses $args with a clear error", async ({ args, error }) => {
    const r = await cli("retention", ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(error);
  });
});
