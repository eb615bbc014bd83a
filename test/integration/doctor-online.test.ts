/**
 * doctor --online's read-only calls against real servers on loopback: the emulated Scaleway API and versitygw
 * (an S3 gateway) run with one Scaleway-shaped key pair. A bucket that is there, one that is not, one in another
 * region, a test type the zone does not offer and a wrong secret each give the finding they should.
 */
import { CreateBucketCommand, GetBucketLocationCommand } from "@aws-sdk/client-s3";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bucketLocationFinding, onlineFindings, type OnlineTarget } from "../../builder/cli/doctor-online";
import { startEmulator, type Emulator } from "../../builder/emulator/api";
import { freePort } from "../../builder/system/free-port";
import { ensureVersitygw } from "../../builder/local/s3-server";
import { s3Client } from "../../builder/pipeline/upload";

const ACCESS = "SCWDOCTOR00000000001";
const SECRET = "00000000-0000-4000-8000-00000000d0c7";
const ZONE = "fr-par-1";

/** versitygw on loopback, serving `region`, with the Scaleway key pair above. */
async function gateway(root: string, region: string): Promise<{ endpoint: string; child: ChildProcess }> {
  const port = await freePort();
  mkdirSync(root, { recursive: true });
  const child = spawn(
    await ensureVersitygw(),
    ["--access", ACCESS, "--secret", SECRET, "--region", region, "--port", `127.0.0.1:${port}`, "posix", root],
    { stdio: "ignore" },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(endpoint).then(
        () => true,
        () => false,
      )
    )
      return { endpoint, child };
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill();
  throw new Error(`versitygw did not listen on ${endpoint}`);
}

describe("doctor --online against loopback servers", () => {
  const state = mkdtempSync(join(tmpdir(), "factory-doctor-"));
  let par: { endpoint: string; child: ChildProcess };
  let ams: { endpoint: string; child: ChildProcess };
  let emulator: Emulator;
  let target: OnlineTarget;

  beforeAll(async () => {
    par = await gateway(join(state, "par"), "fr-par");
    ams = await gateway(join(state, "ams"), "nl-ams");
    for (const [gw, region] of [
      [par, "fr-par"],
      [ams, "nl-ams"],
    ] as const)
      await s3Client({ endpoint: gw.endpoint, region, bucket: "b", accessKeyId: ACCESS, secretAccessKey: SECRET }).send(
        new CreateBucketCommand({ Bucket: "factory-artifacts" }),
      );
    emulator = await startEmulator({
      stateDir: join(state, "api"),
      secretKey: SECRET,
      projectId: "00000000-0000-4000-8000-000000000002",
      zone: ZONE,
      s3: { endpoint: par.endpoint, region: "fr-par", accessKeyId: ACCESS, secretAccessKey: SECRET },
      accel: "tcg",
    });
    target = {
      zone: ZONE,
      region: "fr-par",
      bucket: "factory-artifacts",
      s3Endpoint: par.endpoint,
      apiUrl: emulator.url,
      accessKey: ACCESS,
      secretKey: SECRET,
      testTypes: { x86_64: { key: "testCommercialType", type: "DEV1-S" } },
    };
  }, 120_000);

  afterAll(async () => {
    await emulator?.close();
    for (const gw of [par, ams]) gw?.child.kill();
    rmSync(state, { recursive: true, force: true });
  });

  it("finds nothing when the key works, the bucket is in the zone's region and the test type is offered", async () => {
    expect(await onlineFindings(target)).toEqual([]);
    // Read-only: nothing but GETs reached the API.
    expect(emulator.exchanges.map((e) => e.method)).not.toContain("POST");
    expect(emulator.exchanges.map((e) => e.path)).toEqual(
      expect.arrayContaining([`/instance/v1/zones/${ZONE}/images`, `/instance/v1/zones/${ZONE}/products/servers`]),
    );
  });

  it("names a test type the zone does not offer", async () => {
    const f = await onlineFindings({
      ...target,
      testTypes: { ...target.testTypes, arm64: { key: "testCommercialTypeArm64", type: "COPARM1-2C-8G" } },
    });
    expect(f.map((x) => x.problem)).toEqual([
      "image-factory:testCommercialTypeArm64 COPARM1-2C-8G is not offered in fr-par-1",
    ]);
  });

  it("names a missing bucket", async () => {
    const f = await onlineFindings({ ...target, bucket: "no-such-bucket" });
    expect(f.map((x) => x.problem)).toEqual([`bucket no-such-bucket at ${par.endpoint} does not exist`]);
  });

  // versitygw checks the signing region, as S3 does: the request signed for fr-par is refused before
  // GetBucketLocation could answer nl-ams (that answer's reading is unit-tested).
  it("names a bucket that a server of another region holds", async () => {
    const f = await onlineFindings({ ...target, s3Endpoint: ams.endpoint });
    expect(f.map((x) => x.problem)).toEqual([
      `bucket factory-artifacts at ${ams.endpoint}: HeadBucket answered 400, as S3 answers a request signed for fr-par that reaches another region`,
    ]);
  });

  it("reads the bucket's region as the server answers GetBucketLocation", async () => {
    const answer = await s3Client({
      endpoint: ams.endpoint,
      region: "nl-ams",
      bucket: "b",
      accessKeyId: ACCESS,
      secretAccessKey: SECRET,
    }).send(new GetBucketLocationCommand({ Bucket: "factory-artifacts" }));
    expect(answer.LocationConstraint).toBe("nl-ams");
    expect(
      bucketLocationFinding("factory-artifacts", "fr-par", answer.LocationConstraint).map((x) => x.problem),
    ).toEqual(["bucket factory-artifacts is in nl-ams, not in fr-par where the zone imports from"]);
    expect(await onlineFindings({ ...target, region: "nl-ams", s3Endpoint: ams.endpoint })).toEqual([]);
  });

  it("names a key the API and the bucket refuse", async () => {
    const f = await onlineFindings({ ...target, secretKey: "00000000-0000-4000-8000-0000000000ff" });
    expect(f.map((x) => x.check)).toEqual(["online", "online"]);
    expect(f[0]!.problem).toMatch(
      new RegExp(`^${emulator.url.replace(/[.:/]/g, "\\$&")} refused a read-only call in fr-par-1 \\(`),
    );
    expect(f[1]!.problem).toMatch(
      new RegExp(`^bucket factory-artifacts at ${par.endpoint.replace(/[.:/]/g, "\\$&")}: `),
    );
  });
});
