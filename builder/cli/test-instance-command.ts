/** `test-instance`: the tests Command — the battery against a test Instance, then the image marked released. */
import { renameSync, writeFileSync } from "node:fs";
import { register, UsageError } from "./registry";
import { loadCatalog } from "../../images";
import { scalewayClient } from "../release/scw-client";
import { Instancev1 } from "@scaleway/sdk-instance";
import { TestInstanceContract, type Read } from "../core/contract";
import { statusTag, withStatus } from "../core/retention";
import { table } from "../core/table";
import { runBattery, SCENARIOS } from "../release/battery";
import { out } from "./command-inputs";

/** Powers the test Instance off (waiting until it is stopped) unless it already is. */
async function powerOff(e: Read<typeof TestInstanceContract>): Promise<void> {
  const client = scalewayClient({
    accessKey: e.accessKey,
    secretKey: e.secretKey,
    defaultProjectId: e.projectId,
    defaultZone: e.zone,
    ...(e.apiUrl ? { apiURL: e.apiUrl } : {}),
  });
  const instance = new Instancev1.API(client);
  const { server } = await instance.getServer({ zone: e.zone, serverId: e.serverId });
  if (!server || server.state === "stopped") return;
  if (server.state === "running")
    await instance.serverAction({ zone: e.zone, serverId: e.serverId, action: "poweroff" });
  const s = await instance.waitForServer(
    { zone: e.zone, serverId: e.serverId },
    { timeout: 600, minDelay: 2, maxDelay: 5 },
  );
  if (s.state !== "stopped") throw new Error(`server ${e.serverId} is ${s.state}, expected stopped`);
}

/**
 * The battery passed: the test Instance's image goes from `factory:status=candidate` to `released`, which is what
 * retention and lookups by tag trust. Failing to say so fails the run: a passed image left a candidate would never
 * replace the last released one.
 */
async function markReleased(e: Read<typeof TestInstanceContract>): Promise<void> {
  const where = `server ${e.serverId} in ${e.zone}`;
  try {
    const client = scalewayClient({
      accessKey: e.accessKey,
      secretKey: e.secretKey,
      defaultProjectId: e.projectId,
      defaultZone: e.zone,
      ...(e.apiUrl ? { apiURL: e.apiUrl } : {}),
    });
    const instance = new Instancev1.API(client);
    const image = (await instance.getServer({ zone: e.zone, serverId: e.serverId })).server?.image;
    if (!image) throw new Error("the server has no image");
    await instance.updateImage({ zone: e.zone, imageId: image.id, tags: withStatus(image.tags, "released") });
    process.stderr.write(`test-instance: image ${image.id} in ${e.zone} released (${statusTag("released")})\n`);
  } catch (err) {
    throw new Error(
      `test-instance: the battery passed but the image of ${where} could not be marked released: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

register("test-instance", {
  summary: "run the release test battery (in-guest checks + the 12 API scenarios) against a test Instance",
  usage:
    "image-factory test-instance --server ID --zone ZONE --release ID [--only a,b] [--dns name,...] [--report FILE] [--json]",
  options: {
    server: { type: "string", value: "ID", description: "the test Instance" },
    zone: { type: "string", value: "ZONE", description: "its Availability Zone" },
    release: { type: "string", value: "ID", description: "the release it boots: which checks apply" },
    only: {
      type: "string",
      value: "SCENARIO,...",
      description: `only these scenarios (${SCENARIOS.join(", ")}); all by default`,
    },
    dns: {
      type: "string",
      value: "NAME,...",
      description: "names the dns scenario resolves; api.scaleway.com by default",
    },
    report: { type: "string", value: "FILE", description: "write the JSON report to FILE (whole or not at all)" },
    json: { type: "boolean", description: "print the report as JSON" },
  },
  contract: TestInstanceContract,
  async run(v, _p, e) {
    if (!loadCatalog().byId.has(e.release)) throw new UsageError(`no release "${e.release}" in the catalog`);
    if (!e.projectId)
      throw new UsageError(
        "SCW_DEFAULT_PROJECT_ID is not set: the test runner creates what the scenarios need in that Project",
      );
    const only = e.only ?? [];
    const unknown = only.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
    if (unknown.length)
      throw new UsageError(
        `--only (FACTORY_TESTS): unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.join(", ")}`,
      );
    const report = await runBattery({
      apiUrl: e.apiUrl,
      accessKey: e.accessKey,
      secretKey: e.secretKey,
      projectId: e.projectId,
      zone: e.zone,
      serverId: e.serverId,
      releaseId: e.release,
      dnsNames: e.dnsNames?.length ? e.dnsNames : ["api.scaleway.com"],
      only,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    // Leave it as declared (`state: stopped`), so the next `up`, which removes it, sees no drift.
    await powerOff(e).catch((err: Error) =>
      process.stderr.write(`test-instance: could not power the test Instance off: ${err.message}\n`),
    );
    const text = table(
      ["test", "result", "seconds", "reason"],
      report.results.map((r) => [r.name, r.status, r.seconds.toFixed(1), r.reason]),
    );
    process.stderr.write(`${text}\n`);
    const reportFile = e.report;
    if (reportFile) {
      // Whole or not at all: a reader never sees half a report.
      writeFileSync(`${reportFile}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
      renameSync(`${reportFile}.tmp`, reportFile);
    }
    if (v.json) out(report);
    else process.stdout.write(`${text}\n`);
    if (report.results.some((r) => r.status === "fail")) return 1;
    // Only the whole battery releases an image: a run of some scenarios (--only) proves less.
    if (!only.length) await markReleased(e);
    return 0;
  },
});
