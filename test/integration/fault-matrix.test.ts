/**
 * The fault matrix of the emulated release, without booting a guest: each pre-battery step (import, image, server
 * create) and the first power-on meet each fault (429 with Retry-After, a 503 once, 503 always, a 409 conflict, an
 * import that never ends). A retried fault lets the run go on; a final one fails it with an error naming the step and
 * the zone, after which the zone holds nothing the run made. Every run ends at the first power-on, which a `fail`
 * fault stops before QEMU starts: the battery then fails its boot check and the test server stays stopped, as the
 * stack keeps a failed release's test Instance; nothing else is left.
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator, Fault } from "../../builder/emulator/api";
import { run } from "../../builder/system/exec";
import {
  releaseThroughEmulator,
  ReleaseStepError,
  type EmulatedReleaseResult,
} from "../../builder/local/emulated-release";
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
  const release = async (faults: Fault[], extra: { importTimeoutS?: number } = {}) => {
    let emulator: Emulator | undefined;
    const hits = () => emulator?.faults.hits.map((h) => `${h.kind} ${h.op}`) ?? [];
    const dir = join(work, `run-${++n}`);
    const outcome = await releaseThroughEmulator({
      stateDir: dir,
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
      onEmulator: (e) => (emulator = e),
      ...extra,
    }).then(
      (r) => r,
      (err: unknown) => err,
    );
    return { outcome: outcome as EmulatedReleaseResult | Error, hits: hits() };
  };

  const cases = (Object.keys(OPS) as Step[]).flatMap((step) => FAULTS.map((f) => ({ step, ...f })));
  it.each(cases)("$step × $name", async ({ step, name, fault, retried }) => {
    const { outcome, hits } = await release([{ ...fault(OPS[step]), ...when(step) }]);
    expect(hits[0], `${name} on ${step} never hit`).toBe(`${fault(OPS[step]).kind} ${OPS[step]}`);
    if (step === "power on" || retried) {
      // The run reached the power-on, which fails on purpose (after the fault's retries when there were).
      expect(outcome).not.toBeInstanceOf(Error);
      const r = outcome as EmulatedReleaseResult;
      expect(r.passed).toBe(false);
      expect(r.results[0]).toMatchObject({ name: "boot: key accepted, host key verified", status: "fail" });
      expect(r.results[0]!.reason).toMatch(
        retried || step !== "power on" ? /injected failure of poweron/ : /injected|503|transient state/,
      );
      expect(r.leftovers).toEqual([]);
    } else {
      expect(outcome).toBeInstanceOf(ReleaseStepError);
      const err = outcome as ReleaseStepError;
      expect(err.message).toMatch(new RegExp(`^fr-par-1: ${step}: `));
      expect(err.leftovers).toEqual([]);
    }
  });

  it("import × an import that never ends: stopped at its deadline, named, nothing left", async () => {
    const { outcome, hits } = await release([{ kind: "slow", op: OPS.import, holdMs: 60_000, times: 1 }], {
      importTimeoutS: 3,
    });
    expect(hits).toEqual([`slow ${OPS.import}`]);
    expect(outcome).toBeInstanceOf(ReleaseStepError);
    expect((outcome as ReleaseStepError).message).toMatch(/^fr-par-1: import: snapshot \S+ not available after 3 s/);
    expect((outcome as ReleaseStepError).leftovers).toEqual([]);
  });

  it("import × an import that ends in error: named, nothing left", async () => {
    const { outcome } = await release([{ kind: "fail", op: OPS.import, times: 1 }]);
    expect((outcome as ReleaseStepError).message).toMatch(/^fr-par-1: import: snapshot import ended error/);
    expect((outcome as ReleaseStepError).leftovers).toEqual([]);
  });
});
