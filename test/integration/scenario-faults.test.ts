/**
 * Each scenario of the battery meets a final API fault, in one boot of the test server: debian-12's artifact from the
 * artifact cache (as the local job built it; built there first if missing) is released through the emulated API with, for each scenario, 503s on
 * the first API call it makes that no scenario before it needs, until the client's retries are spent. Every such
 * scenario must fail with a reason naming that call, the in-guest checks must still pass, and the zone must hold
 * nothing the battery made. The power-cycle groups fail before their cycle, and the backup before its Instance: the
 * one boot is the test server's first.
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { accelerator, guestfsEnv } from "../../builder/system/accel";
import { emulatorNetwork } from "../../builder/emulator/tap-network";
import { artifactFileName, type Manifest } from "../../builder/pipeline/build";
import type { Fault } from "../../builder/emulator/api";
import { releaseThroughEmulator } from "../../builder/local/emulated-release";
import { localReleaseSpec, localStack } from "../../builder/local/local-job";
import { startEmulatedZone, zoneContents, type EmulatedZone } from "../../builder/local/release-zone";
import { startS3, type S3Server } from "../../builder/local/s3-server";
import { run } from "../../builder/system/exec";
import { cacheDir } from "../../builder/system/paths";
import { PROVIDER_RETRY } from "../../builder/release/scw-client";
import { plannedBoots, RUN_ORDER } from "../../builder/release/battery";
import { GUEST_CHECKS } from "../../builder/release/guest-checks";
import type { ScenarioName } from "../../builder/release/scenarios/verdicts";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "dist", "builder", "cli.js");

/**
 * Each scenario's first API call that no scenario before it makes (scenarios/*.ts). A group sharing a power cycle
 * fails as a whole on its first such call, made before the cycle: the others of the group report it as not reached.
 */
const FIRST_OWN_CALL: Record<
  ScenarioName,
  { op: string; when?: Record<string, string> } | "shares the group's" | "the metadata API" | "in the guest"
> = {
  // Besides the server read every step makes, its one call is the guest's to the metadata API, faulted as it starts.
  network: "the metadata API",
  // In the guest only: it meets a name that cannot resolve (RFC 6761's .invalid) among the names it must resolve.
  dns: "in the guest",
  "security group": { op: "POST /instance/security_groups" },
  "private networks": { op: "POST /vpc/private-networks" },
  "block volume": { op: "POST /block/volumes" },
  "hot snapshot": { op: "POST /block/snapshots" },
  "stop in place": { op: "POST /instance/servers/{id}/action", when: { action: "stop_in_place" } },
  // The group's first call, before its power-off: switching the boot type to rescue.
  rescue: { op: "PATCH /instance/servers/{id}", when: { boot_type: "rescue" } },
  archive: "shares the group's",
  "cold snapshot": "shares the group's",
  reboot: "shares the group's",
  backup: { op: "POST /instance/servers/{id}/action", when: { action: "backup" } },
};
const UNRESOLVABLE = "factory-fault.invalid";
/** The guest's metadata API answers network's request with a 503, once. */
const METADATA_FAULT: Fault = { kind: "server-error", status: 503, op: "GET /conf", times: 1 };
const OWN = Object.entries(FIRST_OWN_CALL).flatMap(([name, c]) =>
  typeof c === "object" ? [{ name: name as ScenarioName, ...c }] : [],
);
// 503 until the client's retries are spent: final, and the message names the call.
const FAULTS: Fault[] = OWN.map((c) => ({
  kind: "server-error",
  status: 503,
  op: c.op,
  times: PROVIDER_RETRY.retries + 1,
  ...(c.when ? { when: c.when } : {}),
}));

const state = mkdtempSync(join(tmpdir(), "factory-scenario-faults-"));
afterAll(() => rmSync(state, { recursive: true, force: true }));

describe.skipIf(!existsSync(CLI))("every scenario against a final API fault, in one boot", () => {
  let s3: S3Server | undefined;
  let zone: EmulatedZone | undefined;
  const retryMin = process.env.FACTORY_API_RETRY_MIN_MS;
  afterAll(async () => {
    if (retryMin === undefined) delete process.env.FACTORY_API_RETRY_MIN_MS;
    else process.env.FACTORY_API_RETRY_MIN_MS = retryMin;
    await zone?.emulator.close();
    await s3?.stop();
  });

  it("fails each scenario naming the call, passes the in-guest checks, boots once and leaves nothing", async () => {
    const stack = await localStack(ROOT);
    const plan = stack.plans.find((p) => p.release.id === "debian-12")!;
    const spec = localReleaseSpec(plan, stack.settings);
    // The artifact the local job's test builds: this test boots it, and builds nothing of its own.
    const artifact = join(cacheDir("artifacts"), artifactFileName(plan.release, plan.arch, plan.contentHash));
    // On a machine's first run the local job builds it into that cache, as the main job's test would.
    if (!existsSync(artifact))
      await run(process.execPath, [CLI, "local", "--images", "debian-12", "--no-test"], {
        env: { ...process.env, FACTORY_LOCAL_STATE: join(state, "local") },
      });
    expect(existsSync(artifact), artifact).toBe(true);
    process.env.FACTORY_API_RETRY_MIN_MS = "50";
    const started = Date.now();
    s3 = await startS3(join(state, "s3"));
    const creds = {
      endpoint: s3.endpoint,
      region: s3.region,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
    };
    const c = new S3Client({
      ...creds,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await c.send(new CreateBucketCommand({ Bucket: spec.snapshot.import.bucket }));
    await new Upload({
      client: c,
      params: {
        Bucket: spec.snapshot.import.bucket,
        Key: spec.snapshot.import.key,
        Body: createReadStream(artifact),
      },
    }).done();
    c.destroy();
    const accel = await accelerator();
    zone = await startEmulatedZone({
      stateDir: join(state, "zone"),
      zone: spec.zone,
      s3: creds,
      accel,
      publicNet: 77,
    });
    const manifest = JSON.parse(readFileSync(`${artifact}.manifest.json`, "utf8")) as Manifest;
    const lines: string[] = [];
    const r = await releaseThroughEmulator({
      stateDir: join(state, "release"),
      s3: creds,
      spec,
      buildDate: manifest.scs.image_build_date,
      accel,
      cli: CLI,
      dnsNames: ["localhost", UNRESOLVABLE],
      reportFile: join(state, "report.json"),
      log: (l) => {
        lines.push(l);
        // Added as network starts, after boot (when cloud-init and the ecosystem read /conf themselves): its
        // metadata check is the next request to /conf.
        if (/test: network\b/.test(l)) zone!.emulator.faults.add(METADATA_FAULT);
      },
      faults: FAULTS,
      zone,
    });
    const log = `\n--- log tail ---\n${lines.slice(-40).join("\n")}`;
    const byName = new Map(r.results.map((x) => [x.name, x]));
    expect(
      r.results.map((x) => x.name),
      log,
    ).toEqual(["boot: key accepted, host key verified", ...GUEST_CHECKS.map((g) => g.name), ...RUN_ORDER]);
    // The boot and the in-guest checks are untouched by the scenarios' faults.
    const guest = r.results.slice(0, 1 + GUEST_CHECKS.length).filter((x) => x.status !== "pass");
    expect(guest, log).toEqual([]);
    // Every fault hit, each once per attempt.
    expect(zone.emulator.faults.hits.map((h) => h.op).sort()).toEqual(
      [...FAULTS.flatMap((f) => Array<string>(PROVIDER_RETRY.retries + 1).fill(f.op)), METADATA_FAULT.op].sort(),
    );
    for (const c of OWN) {
      const got = byName.get(c.name)!;
      expect(got.status, `${c.name}: ${got.reason}`).toBe("fail");
      expect(got.reason).toContain(`injected 503 on ${c.op}`);
    }
    for (const [name, c] of Object.entries(FIRST_OWN_CALL))
      if (c === "shares the group's") {
        const got = byName.get(name)!;
        expect(got.status).toBe("fail");
        expect(got.reason).toMatch(/^not reached: .*injected 503 on PATCH \/instance\/servers\/\{id\}/);
      }
    expect(byName.get("dns")).toMatchObject({
      status: "fail",
      reason: expect.stringContaining(`${UNRESOLVABLE} does not resolve inside the guest`),
    });
    // network's only call of its own is the guest's to the metadata API.
    expect(byName.get("network")).toMatchObject({
      status: "fail",
      reason: expect.stringMatching(/169\.254\.42\.42\/conf.*503/s),
    });
    // One boot: the test server's first; the power cycles and the backup's Instance never started.
    const boots = zone.emulator.exchanges.filter(
      (e) =>
        e.method === "POST" &&
        e.status < 300 &&
        /server_batch_(poweron|reboot)/.test(JSON.stringify((e.body as { task?: unknown }).task ?? "")),
    );
    expect(boots).toHaveLength(1);
    expect(plannedBoots(RUN_ORDER)).toBeGreaterThan(1);
    // Nothing the battery made is left: only the failed release's snapshot, image and test server (kept by design).
    expect(r.leftovers).toEqual([]);
    expect(r.passed).toBe(false);
    expect((await zoneContents(zone.client, zone.zone)).map((x) => x.replace(/^public IP .*/, "public IP"))).toEqual([
      `server ${spec.server.name}`,
      "public IP",
      `image ${spec.image.name}`,
      `snapshot ${spec.snapshot.name}`,
      expect.stringMatching(/^volume /),
    ]);
    console.log(`scenario faults: ${OWN.length} faults, one boot, ${((Date.now() - started) / 1000).toFixed(0)} s`);

    // cloud-init's Scaleway datasource fetches user data, then vendor data, from source port 1. On the TAP network
    // the metadata API closes first, so the second connect meets no TIME_WAIT of the guest's (errno 99, 5 s lost).
    const z = zone;
    zone = undefined;
    await z.emulator.close();
    // The kill above is a signal: QEMU's lock on the disk goes with its exit.
    await new Promise((r) => setTimeout(r, 2000));
    const volumes = join(state, "zone", "scaleway", "volumes");
    let ciLog = "";
    const tried: string[] = [];
    for (const f of readdirSync(volumes).filter((v) => v.endsWith(".qcow2"))) {
      ciLog = await run("virt-cat", ["-a", join(volumes, f), "/var/log/cloud-init.log"], {
        env: guestfsEnv(accel),
      }).then(
        (x) => x.stdout,
        (e: Error) => (tried.push(`${f}: ${e.message.slice(0, 300)}`), ""),
      );
      if (ciLog) break;
    }
    expect(ciLog, tried.join("\n")).not.toBe("");
    const datasource = ciLog.split("\n").filter((l) => /DataSourceScaleway|169\.254\.42\.42/.test(l));
    console.log(
      `cloud-init (${emulatorNetwork()} network): errno 99 ${(ciLog.match(/Errno 99/g) ?? []).length} times\n${datasource.join("\n")}`,
    );
    expect(datasource.length).toBeGreaterThan(0);
    if (emulatorNetwork() === "tap") expect(ciLog).not.toMatch(/Errno 99/);
  }, 900_000);
});
