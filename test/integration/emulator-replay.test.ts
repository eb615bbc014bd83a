/**
 * Conformance by replay: every recorded request of every cassette in the shared recordings folder (go-vcr cassettes
 * of the Terraform provider's acceptance tests against the real API, read from there, never copied here) is sent to
 * the emulator in order, ids rewritten as the emulator hands them out, and each answer must have the recorded
 * status code and the recorded body's shape (field names and JSON types, recursively; values may differ). A GET
 * whose recorded state the emulator has not reached yet is polled, as the provider polled. A request the emulator
 * does not implement fails the test unless NOT_EMULATED below names it with the reason; a request that needs
 * what such a request created is skipped with it. S3 calls go to the embedded S3 server (bucket and object writes)
 * or are skipped (Terraform's reads of bucket settings). No guest boots: stand-in images are blank disks.
 */
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../../builder/emulator/api";
import {
  addAnswer,
  decodeAwsChunked,
  idsIn,
  learnIds,
  shapeDiff,
  statesOf,
  substituteIds,
  TRANSIENT_STATES,
  UUID,
  unexplained,
  type EndpointFields,
} from "../../builder/emulator/conformance";
import { startS3, type S3Server } from "../../builder/local/s3-server";

const RECORDINGS =
  process.env.FACTORY_API_RECORDINGS ?? join(__dirname, "..", "..", "..", "shared", "scaleway-api-recordings");
const ZONE = "fr-par-1";
const SECRET = "00000000-0000-4000-8000-000000000001";
const PROJECT = "00000000-0000-4000-8000-000000000002";

/** Requests the emulator does not implement, and why the factory does not need them. Matched on `METHOD path body`. */
const NOT_EMULATED: [RegExp, string][] = [
  [
    /^GET \/marketplace\/v2\/local-images/,
    "the factory names images by id, never by marketplace label; the test stands in a blank image for each id the recording resolved",
  ],
  [/^GET \/audit-trail\//, "the Terraform provider reads audit events to describe an action; the factory never does"],
  [
    /^(POST|GET|PATCH|DELETE) \/instance\/v1\/zones\/[^/]+\/volumes($|\/| )/,
    "Instance API volumes are local (l_ssd) volumes: the factory's servers boot sbs_volume roots from the Block API only",
  ],
  [
    /^POST \/instance\/v1\/zones\/[^/]+\/servers (?!.*"image":)/,
    "a server whose root volume comes from a snapshot or a volume, not an image: the factory boots its servers from images",
  ],
  [
    /^PATCH \/instance\/v1\/zones\/[^/]+\/servers\/[^/ ]+ .*"commercial_type":/,
    "changing a server's commercial type: refused with 501 (the emulator's machines do not change size)",
  ],
  [
    /^PATCH \/block\/v1\/zones\/[^/]+\/volumes\/[^/ ]+ .*"(perf_iops|size)":/,
    "changing a volume's IOPS or size: refused with 501 unless it restates the current value (checked in emulator-rules.test.ts)",
  ],
];
/** Of the emulator's answers, `GET /instance/v1/zones/{zone}/volumes/{id}` is the one implemented "not emulated" path: a 404 for every sbs volume, as recorded. */
const EMULATED_ANYWAY = /^GET \/instance\/v1\/zones\/[^/]+\/volumes\/[^/]+ 404$/;

interface Interaction {
  request: { url: string; method: string; body?: string | Uint8Array; headers?: Record<string, string[]> };
  response: { code: number; body?: string; headers?: Record<string, string[]> };
}

const jsonOf = (text: string | undefined): unknown => {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

describe("Scaleway API emulator, replaying every recorded exchange", () => {
  let emulator: Emulator;
  let s3: S3Server | undefined;
  let s3c: S3Client;
  const work = mkdtempSync(join(tmpdir(), "factory-replay-"));
  const files = readdirSync(RECORDINGS)
    .filter((f) => f.endsWith(".cassette.yaml"))
    .sort();
  /** Per `METHOD path-template status`, the fields all recorded answers have and those any has. */
  const endpoints = new Map<string, EndpointFields>();
  const template = (method: string, path: string, status: number) =>
    `${method} ${path.replace(UUID, "{id}").replace(/\/user_data\/[^/]+$/, "/user_data/{key}")} ${status}`;
  for (const file of files)
    for (const { request, response } of (
      parse(readFileSync(join(RECORDINGS, file), "utf8")) as { interactions: Interaction[] }
    ).interactions) {
      const url = new URL(request.url);
      const body = jsonOf(response.body);
      if (url.hostname !== "api.scaleway.com" || typeof body !== "object" || body === null) continue;
      const key = template(request.method, url.pathname, response.code);
      endpoints.set(key, addAnswer(endpoints.get(key), body));
    }

  /** A fresh emulator per recording; the embedded S3 server only for recordings with Object Storage traffic. */
  const setup = async (name: string, needsS3: boolean) => {
    if (needsS3 && !s3) {
      s3 = await startS3(join(work, "s3"));
      s3c = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
    }
    emulator = await startEmulator({
      stateDir: join(work, name),
      secretKey: SECRET,
      projectId: PROJECT,
      zone: ZONE,
      accel: "tcg",
      s3:
        needsS3 && s3
          ? {
              endpoint: s3.endpoint,
              region: s3.region,
              accessKeyId: s3.accessKeyId,
              secretAccessKey: s3.secretAccessKey,
            }
          : { endpoint: "http://127.0.0.1:9", region: "fr-par", accessKeyId: "none", secretAccessKey: "none" },
    });
  };
  afterEach(async () => {
    await emulator?.close();
  });
  afterAll(async () => {
    s3c?.destroy();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, body?: string | Uint8Array, contentType?: string) => {
    const res = await fetch(`${emulator.url}${path}`, {
      method,
      headers: { "x-auth-token": SECRET, ...(contentType ? { "content-type": contentType } : {}) },
      body: body as RequestInit["body"],
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get("content-type") ?? "", body: jsonOf(text) };
  };

  /** A blank bootable-looking image standing in for a marketplace image the recording resolved by label. */
  const standInImage = async (): Promise<string> => {
    const B = `/block/v1/zones/${ZONE}`;
    const vol = (
      await call(
        "POST",
        `${B}/volumes`,
        JSON.stringify({ name: "stand-in", perf_iops: 5000, from_empty: { size: 10_000_000_000 } }),
        "application/json",
      )
    ).body as { id: string };
    for (
      let i = 0;
      i < 100 && ((await call("GET", `${B}/volumes/${vol.id}`)).body as { status: string }).status !== "available";
      i++
    )
      await new Promise((r) => setTimeout(r, 100));
    const snap = (
      await call("POST", `${B}/snapshots`, JSON.stringify({ name: "stand-in", volume_id: vol.id }), "application/json")
    ).body as { id: string };
    for (
      let i = 0;
      i < 100 && ((await call("GET", `${B}/snapshots/${snap.id}`)).body as { status: string }).status !== "available";
      i++
    )
      await new Promise((r) => setTimeout(r, 100));
    const image = (
      await call(
        "POST",
        `/instance/v1/zones/${ZONE}/images`,
        JSON.stringify({ name: "stand-in", root_volume: snap.id, arch: "x86_64" }),
        "application/json",
      )
    ).body as { image: { id: string } };
    return image.image.id;
  };

  /** S3 calls: writes go to the embedded S3 server; Terraform's reads of bucket and object settings are skipped. */
  const replayS3 = async (
    url: URL,
    method: string,
    body: string | Uint8Array | undefined,
  ): Promise<string | undefined> => {
    const bucket = url.hostname.split(".")[0]!;
    const key = decodeURIComponent(url.pathname.slice(1));
    const sub = [...url.searchParams.keys()].filter((k) => k !== "x-id");
    if (sub.length)
      return `S3 ${method} ?${sub.join("&")}: a bucket or object setting Terraform reads or writes; the emulator never sees it`;
    if (method === "PUT" && !key) await s3c.send(new CreateBucketCommand({ Bucket: bucket }));
    else if (method === "PUT") {
      const bytes = typeof body === "string" ? Buffer.from(body, "latin1") : (body ?? new Uint8Array());
      await s3c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: decodeAwsChunked(bytes) }));
    } else if (method === "DELETE" && key) await s3c.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    else if (method === "DELETE") {
      await s3c.send(new DeleteBucketCommand({ Bucket: bucket }));
    } else
      return `S3 ${method} ${key ? "object" : "bucket"} read: Terraform reading back what it wrote; no bearing on the emulator`;
    return undefined;
  };

  for (const file of files) {
    it(`replays ${file}`, async () => {
      const cassette = parse(readFileSync(join(RECORDINGS, file), "utf8")) as { interactions: Interaction[] };
      const objectStorage = (i: Interaction) =>
        new URL(i.request.url).hostname !== "api.scaleway.com" || i.request.url.includes("object-storage");
      await setup(file.replace(/\.cassette\.yaml$/, ""), cassette.interactions.some(objectStorage));
      const ids = new Map<string, string>([]);
      /** Recorded ids created by a skipped request, with the reason. */
      const tainted = new Map<string, string>();
      const failures: string[] = [];
      const skipped = new Map<string, number>();
      let compared = 0;
      for (const [n, { request, response }] of cassette.interactions.entries()) {
        const url = new URL(request.url);
        const where = `#${n} ${request.method} ${url.pathname}${url.search}`;
        /** Skips the request: ids it made (`produced`) and resources it wrote (`used`) are out of the emulated state. */
        const skip = (reason: string, produced = "", used = "") => {
          skipped.set(reason, (skipped.get(reason) ?? 0) + 1);
          for (const id of idsIn(produced)) if (!ids.has(id) && !tainted.has(id)) tainted.set(id, reason);
          const resources = used.replace(/"(project|project_id|organization|organization_id)":\s*"[^"]*"/g, "");
          for (const id of idsIn(resources)) if (!tainted.has(id)) tainted.set(id, reason);
        };
        if (url.hostname !== "api.scaleway.com") {
          const reason = await replayS3(url, request.method, request.body);
          if (reason) skip(reason);
          continue;
        }
        const endpoint = `${request.method} ${url.pathname}`;
        const text =
          typeof request.body === "string"
            ? request.body
            : request.body
              ? Buffer.from(request.body).toString("utf8")
              : "";
        const emulatedAnyway =
          EMULATED_ANYWAY.test(`${endpoint} ${response.code}`) ||
          (/"perf_iops":5000}$/.test(text) && endpoint.startsWith("PATCH /block/"));
        const reason = NOT_EMULATED.find(([re]) => re.test(`${endpoint} ${text}`) && !emulatedAnyway)?.[1];
        if (reason) {
          // A marketplace answer names the images later requests boot: a blank stand-in answers for each.
          const local = (jsonOf(response.body) as { local_images?: { id: string }[]; id?: string } | undefined) ?? {};
          for (const id of [...(local.local_images ?? []).map((i) => i.id), ...(local.id ? [local.id] : [])])
            if (!ids.has(id)) ids.set(id, await standInImage());
          // What it made, and what a write of it used, stand outside the emulated state from here on.
          skip(reason, url.pathname.includes("marketplace") ? "" : response.body, request.method === "GET" ? "" : text);
          continue;
        }
        const needs = idsIn(`${url.pathname} ${text}`).find((id) => tainted.has(id));
        if (needs) {
          skip(
            `needs what a request not emulated made or changed (${tainted.get(needs)!.split(":")[0]})`,
            response.body,
          );
          continue;
        }
        const path = substituteIds(url.pathname + url.search, ids);
        const body = text ? substituteIds(text, ids) : undefined;
        const type = request.headers?.["Content-Type"]?.[0];
        const recorded = jsonOf(response.body);
        const wantStates = statesOf(recorded);
        let got = await call(request.method, path, body, type);
        // Poll a GET while the emulator has not reached what the real API answered (the provider polled too).
        const polled = Date.now();
        for (let i = 0; request.method === "GET" && i < 240; i++) {
          const states = statesOf(got.body);
          const differing = Object.keys(wantStates).filter(
            (p) => states[p] !== undefined && states[p] !== wantStates[p],
          );
          const settled =
            got.status === response.code &&
            differing.every((p) => !TRANSIENT_STATES.has(states[p]!) && TRANSIENT_STATES.has(wantStates[p]!));
          if (settled) break;
          await new Promise((r) => setTimeout(r, 250));
          got = await call(request.method, path, body, type);
        }
        compared++;
        if (Date.now() - polled > 20_000)
          process.stderr.write(
            `${file} ${where}: polled ${Math.round((Date.now() - polled) / 1000)} s for ${JSON.stringify(wantStates)}, got ${got.status} ${JSON.stringify(statesOf(got.body))}\n`,
          );
        if (got.status !== response.code) {
          failures.push(
            `${where}: status ${got.status}, recorded ${response.code}: ${JSON.stringify(got.body).slice(0, 300)}`,
          );
          // What it would have made does not exist: requests needing it are skipped, not polled in vain.
          for (const id of idsIn(response.body ?? "")) if (!ids.has(id)) tainted.set(id, `failed: ${where}`);
          continue;
        }
        const states = statesOf(got.body);
        // A state that differs only because one side is still on its way (the emulator copies disks slower) is timing.
        for (const [p, want] of Object.entries(wantStates))
          if (
            states[p] !== undefined &&
            states[p] !== want &&
            !TRANSIENT_STATES.has(want) &&
            !TRANSIENT_STATES.has(states[p]!)
          )
            failures.push(`${where}: ${p} is ${states[p]}, recorded ${want}`);
        if (typeof recorded === "object" && recorded !== null) {
          for (const d of unexplained(
            shapeDiff(recorded, got.body),
            endpoints.get(template(request.method, url.pathname, response.code)),
          ))
            failures.push(`${where}: ${d}`);
          learnIds(recorded, got.body, ids);
        } else if (recorded !== undefined && typeof got.body !== typeof recorded)
          failures.push(`${where}: body ${typeof got.body}, recorded ${typeof recorded}`);
      }
      const summary = [...skipped].map(([r, c]) => `${c} × ${r}`).join("\n  ");
      process.stderr.write(
        `${file}: ${compared} compared, ${[...skipped.values()].reduce((a, b) => a + b, 0)} skipped\n  ${summary}\n`,
      );
      expect([...new Set(failures)]).toEqual([]);
      expect(compared).toBeGreaterThan(0);
    });
  }
});
