/**
 * The fault matrix of the emulated release, without booting a guest: each pre-battery step (import, image, server
 * create) and the first power-on meet each fault (429 with Retry-After, a 503 once, 503 always, a 409 conflict, an
 * import that never ends). A retried fault lets the run go on; a final one fails it with an error naming the step and
 * the zone, after which the zone holds nothing the run made. Every run ends at the first power-on, which a `fail`
 * fault stops before QEMU starts: the battery then fails its boot check and the test server stays stopped, as the
 * stack keeps a failed release's test Instance; nothing else is left. Each case then reruns the release in the same
 * zone without its fault, which must get exactly as far as a clean run and leave the zone as a clean run leaves it.
 * The release's own cleanup meets final faults on the DELETE calls it makes: the run fails naming the cleanup and
 * what it left, and a rerun without the fault converges.
 */
import {
  CreateBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Fault } from "../../builder/emulator/api";
import { run } from "../../builder/system/exec";
import { releaseThroughEmulator, type EmulatedReleaseResult } from "../../builder/local/emulated-release";
import {
  ReleaseStepError,
  removeTestServer,
  startEmulatedZone,
  zoneContents,
  type EmulatedZone,
} from "../../builder/local/release-zone";
import { localReleaseSpec } from "../../builder/local/local-job";
import { startS3, type S3Server } from "../../builder/local/s3-server";
import { planStack } from "../../builder/core/plan";
import { loadCatalog } from "../../images";
import { settingsFor } from "../unit/helpers";

const CLI = join(__dirname, "..", "..", "dist", "builder", "cli.js");
const OPS = {
  import: "POST /block/snapshots/import-from-object-storage",
  image: "POST /instance/images",
  "server create": "POST /instance/servers",
  "power on": "POST /instance/servers/{id}/action",
} as const;
type Step = keyof typeof OPS;
const POWER_ON_FAILS: Fault = { kind: "fail", op: OPS["power on"], when: { action: "poweron" } };
/** The DELETE calls the release's cleanup makes: a failed step's snapshot and image, the test server and its volume. */
const DELETES = {
  snapshot: "DELETE /block/snapshots/{id}",
  image: "DELETE /instance/images/{id}",
  server: "DELETE /instance/servers/{id}",
  volume: "DELETE /block/volumes/{id}",
} as const;
const final503 = (op: string): Fault => ({ kind: "server-error", op, status: 503 });

/** Each fault: how it is injected on a step, and whether the run gets past that step. */
const FAULTS: { name: string; fault: (op: string) => Fault; retried: boolean }[] = [
  {
    name: "429 with Retry-After",
    fault: (op) => ({ kind: "throttle", op, retryAfterSeconds: 1, times: 1 }),
    retried: true,
  },
  { name: "503 once", fault: (op) => ({ kind: "server-error", op, status: 503, times: 1 }), retried: true },
  { name: "503 always", fault: (op) => ({ kind: "server-error", op, status: 503 }), retried: false },
  { name: "409 conflict", fault: (op) => ({ kind: "conflict", op, times: 1 }), retried: false },
];
const when = (step: Step) => (step === "power on" ? { when: { action: "poweron" } } : {});

describe.skipIf(!existsSync(CLI))("fault matrix of the emulated release (no guest boots)", () => {
  const work = mkdtempSync(join(tmpdir(), "factory-fault-matrix-"));
  const settings = settingsFor({ images: ["debian-12"], zone: "fr-par-1" });
  const plan = planStack(loadCatalog(), settings)[0]!;
  const spec = localReleaseSpec(plan, settings);
  let s3: S3Server;
  const retryMin = process.env.FACTORY_API_RETRY_MIN_MS;

  beforeAll(async () => {
    // Retries in tens of milliseconds, here and in the test runner the release spawns (Retry-After still honoured).
    process.env.FACTORY_API_RETRY_MIN_MS = "50";
    s3 = await startS3(join(work, "s3"));
    const c = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await c.send(new CreateBucketCommand({ Bucket: spec.snapshot.import.bucket }));
    const disk = join(work, "disk.qcow2");
    await run("qemu-img", ["create", "-q", "-f", "qcow2", disk, "2G"]);
    await c.send(
      new PutObjectCommand({
        Bucket: spec.snapshot.import.bucket,
        Key: spec.snapshot.import.key,
        Body: readFileSync(disk),
      }),
    );
    c.destroy();
  }, 120_000);
  afterAll(async () => {
    if (retryMin === undefined) delete process.env.FACTORY_API_RETRY_MIN_MS;
    else process.env.FACTORY_API_RETRY_MIN_MS = retryMin;
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  let n = 0;
  const zones: EmulatedZone[] = [];
  afterAll(async () => {
    for (const z of zones) await z.emulator.close();
  });
  const newZone = async () => {
    const z = await startEmulatedZone({
      stateDir: join(work, `zone-${zones.length + 1}`),
      zone: spec.zone,
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
      },
      accel: "tcg",
    });
    zones.push(z);
    return z;
  };
  /** One release in `z` with these faults (and the power-on failing, as in every run here); they are gone after it. */
  const release = async (z: EmulatedZone, faults: Fault[], extra: { importTimeoutS?: number } = {}) => {
    z.emulator.faults.clear();
    const from = z.emulator.faults.hits.length;
    const outcome = await releaseThroughEmulator({
      stateDir: join(work, `run-${++n}`),
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
      },
      spec,
      buildDate: "2026-11-20",
      accel: "tcg",
      cli: CLI,
      dnsNames: ["localhost"],
      reportFile: join(work, `report-${n}.json`),
      log: () => undefined,
      faults: [...faults, POWER_ON_FAILS],
      zone: z,
      ...extra,
    }).then(
      (r) => r,
      (err: unknown) => err,
    );
    z.emulator.faults.clear();
    const hits = z.emulator.faults.hits.slice(from).map((h) => `${h.kind} ${h.op}`);
    return { outcome: outcome as EmulatedReleaseResult | Error, hits };
  };
  // Public IPs differ between servers; that one is there is what counts.
  const contents = async (z: EmulatedZone) =>
    (await zoneContents(z.client, z.zone)).map((x) => x.replace(/^public IP .*/, "public IP")).sort();
  const reachedPowerOn = (outcome: EmulatedReleaseResult | Error) => {
    expect(outcome instanceof Error ? outcome.message : "").toBe("");
    const r = outcome as EmulatedReleaseResult;
    expect(r.passed).toBe(false);
    expect(r.results[0]).toMatchObject({ name: "boot: key accepted, host key verified", status: "fail" });
    expect(r.leftovers).toEqual([]);
    return r;
  };

  /** What a clean run leaves in its zone: the failed release's snapshot, image and stopped test server. */
  let clean: string[] = [];
  /** Reruns `z`'s release with no fault: exactly as far as a clean run, the zone as a clean run leaves it. */
  const rerunConverges = async (z: EmulatedZone) => {
    const { outcome, hits } = await release(z, []);
    const r = reachedPowerOn(outcome);
    expect(hits).toEqual([`fail ${OPS["power on"]}`]);
    expect(r.results[0]!.reason).toMatch(/injected failure of poweron/);
    expect(await contents(z)).toEqual(clean);
    return r;
  };

  it("a clean run gets to the power-on and leaves one snapshot, image and stopped test server", async () => {
    const z = await newZone();
    const { outcome } = await release(z, []);
    expect((reachedPowerOn(outcome) as EmulatedReleaseResult).results[0]!.reason).toMatch(
      /injected failure of poweron/,
    );
    clean = await contents(z);
    expect(clean).toEqual([
      `image ${spec.image.name}`,
      "public IP",
      `server ${spec.server.name}`,
      `snapshot ${spec.snapshot.name}`,
      expect.stringMatching(/^volume /),
    ]);
    // A rerun of a clean run adopts all of it: same image, same server.
    const again = await rerunConverges(z);
    expect(again.imageId).toBe((outcome as EmulatedReleaseResult).imageId);
    expect(again.serverId).toBe((outcome as EmulatedReleaseResult).serverId);
  });

  const cases = (Object.keys(OPS) as Step[]).flatMap((step) => FAULTS.map((f) => ({ step, ...f })));
  it.each(cases)("$step × $name, then a rerun", async ({ step, name, fault, retried }) => {
    const z = await newZone();
    const { outcome, hits } = await release(z, [{ ...fault(OPS[step]), ...when(step) }]);
    expect(hits[0], `${name} on ${step} never hit`).toBe(`${fault(OPS[step]).kind} ${OPS[step]}`);
    if (step === "power on" || retried) {
      // The run reached the power-on, which fails on purpose (after the fault's retries when there were).
      const r = reachedPowerOn(outcome);
      expect(r.results[0]!.reason).toMatch(
        retried || step !== "power on" ? /injected failure of poweron/ : /injected|503|transient state/,
      );
    } else {
      expect(outcome).toBeInstanceOf(ReleaseStepError);
      const err = outcome as ReleaseStepError;
      expect(err.message).toMatch(new RegExp(`^fr-par-1: ${step}: `));
      expect(err.leftovers).toEqual([]);
      expect(err.cleanupFailures).toEqual([]);
      expect(await contents(z)).toEqual([]);
    }
    await rerunConverges(z);
  });

  it("import × an import that never ends: stopped at its deadline, named, nothing left; a rerun converges", async () => {
    const z = await newZone();
    const { outcome, hits } = await release(z, [{ kind: "slow", op: OPS.import, holdMs: 60_000, times: 1 }], {
      importTimeoutS: 3,
    });
    expect(hits).toEqual([`slow ${OPS.import}`]);
    expect(outcome).toBeInstanceOf(ReleaseStepError);
    expect((outcome as ReleaseStepError).message).toMatch(/^fr-par-1: import: snapshot \S+ not available after 3 s/);
    expect((outcome as ReleaseStepError).leftovers).toEqual([]);
    await rerunConverges(z);
  });

  it("import × an import that ends in error: named, nothing left; a rerun converges", async () => {
    const z = await newZone();
    const { outcome } = await release(z, [{ kind: "fail", op: OPS.import, times: 1 }]);
    expect((outcome as ReleaseStepError).message).toMatch(/^fr-par-1: import: snapshot import ended error/);
    expect((outcome as ReleaseStepError).leftovers).toEqual([]);
    await rerunConverges(z);
  });

  // The cleanup meets final faults: the run fails naming the step, the cleanup and what is left; a rerun converges.
  it.each([
    {
      name: "import ends in error, its snapshot's deletion fails",
      faults: [{ kind: "fail", op: OPS.import, times: 1 } as Fault, final503(DELETES.snapshot)],
      step: "import",
      failures: [/^removing the snapshot \S+: .*503/],
      left: [`snapshot ${spec.snapshot.name}`],
    },
    {
      name: "image fails, the snapshot's deletion fails",
      faults: [final503(OPS.image), final503(DELETES.snapshot)],
      step: "image",
      failures: [/^removing the snapshot \S+: .*503/],
      left: [`snapshot ${spec.snapshot.name}`],
    },
    {
      // The snapshot then cannot go either: the image left on it still uses it.
      name: "server create fails, the image's deletion fails",
      faults: [final503(OPS["server create"]), final503(DELETES.image)],
      step: "server create",
      failures: [/^removing the image \S+: .*503/, /^removing the snapshot \S+: .*in use by/],
      left: [`image ${spec.image.name}`, `snapshot ${spec.snapshot.name}`],
    },
  ])("cleanup × $name: the run fails naming both, a rerun converges", async ({ faults, step, failures, left }) => {
    const z = await newZone();
    const { outcome, hits } = await release(z, faults);
    expect(hits).toContain(`server-error ${faults[1]!.op}`);
    expect(outcome).toBeInstanceOf(ReleaseStepError);
    const err = outcome as ReleaseStepError;
    expect(err.step).toBe(step);
    expect(err.message).toMatch(
      new RegExp(`^fr-par-1: ${step}: .*; cleanup failed too: removing the .*; left behind: `),
    );
    expect(err.cleanupFailures).toHaveLength(failures.length);
    failures.forEach((f, i) => expect(err.cleanupFailures[i]).toMatch(f));
    expect(err.leftovers.sort()).toEqual(left.sort());
    expect(await contents(z)).toEqual(left.sort());
    // The rerun adopts what the cleanup left (or removes it when unfit): no second snapshot or image.
    await rerunConverges(z);
  });

  // The test server's removal, as the stack's next `up` after a pass makes it, meets a final fault on each DELETE.
  it.each([
    { what: "test server", op: DELETES.server, named: /removing the test server \S+ \(\S+\): .*503/ },
    { what: "root volume", op: DELETES.volume, named: /removing the test server's root volume \S+: .*503/ },
  ])("cleanup × the $what's deletion fails: named, and done by the next try", async ({ op, named }) => {
    const z = await newZone();
    reachedPowerOn((await release(z, [])).outcome);
    const serverId = z.state.server!;
    z.emulator.faults.add(final503(op));
    const err = await removeTestServer(z.client, z.zone, serverId, z.state).then(
      () => undefined,
      (e: unknown) => e,
    );
    z.emulator.faults.clear();
    expect(err).toBeInstanceOf(ReleaseStepError);
    expect((err as ReleaseStepError).step).toBe("cleanup");
    expect((err as ReleaseStepError).message).toMatch(/^fr-par-1: cleanup: /);
    expect((err as ReleaseStepError).message).toMatch(named);
    expect((err as ReleaseStepError).leftovers).toEqual(
      expect.arrayContaining([expect.stringMatching(/^volume /), `snapshot ${spec.snapshot.name}`]),
    );
    // The next try finishes the removal (the server may be gone already): the release's snapshot and image stay.
    expect(await removeTestServer(z.client, z.zone, z.state.server, z.state)).toEqual([]);
    expect(await contents(z)).toEqual([`image ${spec.image.name}`, `snapshot ${spec.snapshot.name}`]);
    // And a rerun of the release gets as far as a clean one, with a new test server of its own.
    const r = await rerunConverges(z);
    expect(r.serverId).not.toBe(serverId);
  });

  it("the bucket holds only the artifact: no partial object, no multipart upload", async () => {
    const c = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const Bucket = spec.snapshot.import.bucket;
    const objects = (await c.send(new ListObjectsV2Command({ Bucket }))).Contents ?? [];
    expect(objects.map((o) => o.Key)).toEqual([spec.snapshot.import.key]);
    expect((await c.send(new ListMultipartUploadsCommand({ Bucket }))).Uploads ?? []).toEqual([]);
    c.destroy();
  });
});
