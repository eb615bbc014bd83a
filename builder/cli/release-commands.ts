/** Release and lifecycle subcommands: SCS conformance, image lifecycle, the upstream watcher, rollout in waves. */
import { join } from "node:path";
import { ContractError, readEnvironment, RetentionContract, type Read } from "../core/contract";
import type { OptionSpec } from "./options";
import { Duration } from "../core/settings";

const FACTORY_TIMEOUT = Duration.optional();
import { loadCatalog } from "../../images";
import { onPath } from "../system/exec";
import { checkUpstream } from "../pipeline/check-upstream";
import { lifecycle } from "../core/lifecycle";
import { projectRoot } from "../system/paths";
import { bounded, ENVIRONMENT, register, UsageError, withContract, withHowTo, type Values } from "./registry";
import { parseWaves, rollout, rolloutMarkdown } from "../core/rollout";
import { checkLiveImages, lifecycleImages, releaseViews, scsImage } from "../core/release-status";
import { checkCatalog, type CatalogImage, type Finding } from "../core/scs-check";
import { parseCurrentBuilds, planRetention, formatCurrentBuilds, type RetentionStep } from "../core/retention";
import { applyRetention, liveFactoryImages, zoneClient } from "../release/retention-api";
import { planStack } from "../core/plan";
import { readStackSettings, stackNames } from "../system/stack-files";
import { table } from "../core/table";
import { ZONES } from "../core/zones";

const str = (v: Values, k: string) => (typeof v[k] === "string" ? v[k] : undefined);
const today = () => new Date().toISOString().slice(0, 10);

/** `--at YYYY-MM-DD`, today by default. */
export function dayOption(v: Values): string {
  const at = str(v, "at") ?? today();
  if (!/^\d{4}-\d{2}-\d{2}$/.test(at) || Number.isNaN(Date.parse(at)))
    throw new UsageError(`--at: expected a date as YYYY-MM-DD, got "${at}"`);
  return at;
}

export const missingCredential = (name: string) =>
  new UsageError(`${withHowTo(`${name} is not set`)}: this reads the zone's images through the Scaleway API`);

const AT: OptionSpec = { type: "string", value: "YYYY-MM-DD", description: "the day to judge on; today by default" };
const JSON_FINDINGS: OptionSpec = { type: "boolean", description: "print the findings as JSON" };
export const API_CREDENTIALS = Object.fromEntries(
  ["SCW_ACCESS_KEY", "SCW_SECRET_KEY", "SCW_API_URL"].map((k) => [k, ENVIRONMENT[k]!]),
);

/** The factory's images in a zone (tagged `factory:release=…`), as SCS sees them: their tags read back. */
export async function liveImages(zone: string): Promise<CatalogImage[]> {
  const catalog = loadCatalog();
  return (await liveFactoryImages(zoneClient(zone, missingCredential), zone)).map((i) => scsImage(i, catalog));
}

function report(findings: Finding[], json: boolean): number {
  if (json) process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
  else if (findings.length === 0) process.stdout.write("no findings\n");
  else
    process.stdout.write(
      `${table(
        ["severity", "subject", "rule", "message"],
        findings.map((f) => [f.severity, f.subject, f.rule, f.message]),
      )}\n`,
    );
  return findings.some((f) => f.severity === "error") ? 1 : 0;
}

register("scs-check", {
  summary: "check SCS-0102/SCS-0104 conformance of the catalog, or with --live of a zone's images; non-zero on errors",
  usage:
    "image-factory scs-check [--at YYYY-MM-DD] [--json]\n" +
    "image-factory scs-check --live --zone ZONE [--at YYYY-MM-DD] [--json]",
  options: {
    at: AT,
    live: {
      type: "boolean",
      description: "check the factory's images in a zone through the Scaleway API, not the catalog",
    },
    zone: { type: "string", value: "ZONE", description: "with --live: the Availability Zone" },
    json: JSON_FINDINGS,
  },
  environment: API_CREDENTIALS,
  async run(v) {
    const at = dayOption(v);
    if (!v.live) return report(checkCatalog(loadCatalog(), at), v.json === true);
    const zone = str(v, "zone");
    if (!zone || !(ZONES as readonly string[]).includes(zone))
      throw new UsageError(`--live needs --zone with a Scaleway Availability Zone (${ZONES.join(", ")})`);
    const images = await liveFactoryImages(zoneClient(zone, missingCredential), zone);
    return report(checkLiveImages(images, loadCatalog(), at), v.json === true);
  },
});

register("lifecycle", {
  summary: "report each image's lifecycle on a day: supported, notice (with the customer notice) or deprecated",
  usage:
    "image-factory lifecycle [--at YYYY-MM-DD] [--grace-days 90 | --stack NAME] [--notice-days 60] [--zone ZONE] [--json]",
  options: {
    zone: {
      type: "string",
      value: "ZONE",
      description:
        "also name each release's released image in the zone (what the state applies to), and its candidates",
    },
    at: AT,
    "grace-days": {
      type: "string",
      value: "DAYS",
      default: "90",
      description: "days after upstream end of life before an image is deprecated",
    },
    "notice-days": {
      type: "string",
      value: "DAYS",
      default: "60",
      description: "days before deprecation from which customers get a notice",
    },
    stack: {
      type: "string",
      value: "NAME",
      description: "take the grace period from this stack's deprecationGraceDays",
    },
    json: { type: "boolean", description: "print JSON" },
  },
  environment: API_CREDENTIALS,
  async run(v) {
    const at = dayOption(v);
    const catalog = loadCatalog();
    const zone = str(v, "zone");
    if (zone !== undefined && !(ZONES as readonly string[]).includes(zone))
      throw new UsageError(`--zone: give a Scaleway Availability Zone (${ZONES.join(", ")})`);
    const views = zone ? releaseViews(await liveFactoryImages(zoneClient(zone, missingCredential), zone)) : undefined;
    const whole = (k: string) => {
      const n = Number(str(v, k));
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${k}: expected a whole number of days`);
      return n;
    };
    const stack = str(v, "stack");
    const grace = stack ? readStackSettings(projectRoot(), stack, catalog).deprecationGraceDays : whole("grace-days");
    const entries = lifecycle(catalog, at, grace, whole("notice-days")).map((e) =>
      views ? { ...e, zone: { [zone!]: lifecycleImages(e.id, views) } } : e,
    );
    if (v.json) {
      process.stdout.write(`${JSON.stringify({ at, graceDays: grace, images: entries }, null, 2)}\n`);
      return;
    }
    const inZone = (id: string) =>
      lifecycleImages(id, views!)
        .map(
          (z) =>
            `${z.arch}: ${z.released?.id ?? "none released"}${z.candidates.length ? ` (candidates: ${z.candidates.join(", ")})` : ""}`,
        )
        .join("; ") || "-";
    process.stdout.write(
      `${table(
        [
          "image",
          "label",
          "state",
          "eol",
          "deprecated from",
          "days left",
          "successor",
          ...(views ? [`in ${zone}`] : []),
        ],
        entries.map((e) => [
          e.id,
          e.label,
          e.state,
          e.eol ?? "rolling",
          e.deprecates ?? "-",
          e.daysLeft === null ? "-" : String(e.daysLeft),
          e.successor ?? "-",
          ...(views ? [inZone(e.id)] : []),
        ]),
      )}\n`,
    );
    for (const e of entries.filter((x) => x.notice)) process.stdout.write(`\n${e.id}: ${e.notice}\n`);
  },
});

register("check-upstream", {
  summary: "find each release's newest upstream build from upstream's listings; --write records it in images/pins.json",
  usage:
    "image-factory check-upstream [--release ID,...] [--mirror URL] [--write [--pins FILE]] [--at YYYY-MM-DD] [--json]",
  options: {
    release: { type: "string", value: "ID,...", description: "only these OS releases; all by default" },
    mirror: {
      type: "string",
      value: "URL",
      env: "FACTORY_MIRROR",
      description: "read upstream listings through <URL>/<host>/<path>",
    },
    write: { type: "boolean", description: "record the newest builds in the pins file" },
    pins: { type: "string", value: "FILE", description: "with --write: the pins file; images/pins.json by default" },
    at: AT,
    json: { type: "boolean", description: "print JSON" },
  },
  async run(v) {
    const catalog = loadCatalog();
    const releases = (str(v, "release") ?? "")
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean);
    const unknown = releases.filter((id) => catalog.byId.get(id)?.kind !== "os");
    if (unknown.length) throw new UsageError(`--release: no OS release ${unknown.join(", ")} in the catalog`);
    const report = await checkUpstream({
      catalog,
      releases,
      mirror: str(v, "mirror"),
      at: dayOption(v),
      ...(v.write ? { writePins: str(v, "pins") ?? join(projectRoot(), "images", "pins.json") } : {}),
    });
    if (v.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      process.stdout.write(
        `${table(
          ["release", "arch", "pinned", "newest", "status"],
          report.rows.map((r) => [
            r.release,
            r.arch,
            r.pinned,
            r.newest ?? "-",
            r.reason ? `${r.status}: ${r.reason}` : r.status,
          ]),
        )}\n`,
      );
      for (const f of report.flags) process.stdout.write(`flag: ${f}\n`);
      if (report.wrote)
        process.stdout.write(`wrote the new pins to ${report.wrote}: review the diff, then plan the stacks\n`);
    }
    return report.rows.some((r) => r.status === "unreadable") ? 1 : 0;
  },
});

register("rollout", {
  summary:
    "pulumi up (or --preview) an environment's zone stacks in waves, canary zones first; stops after a failed wave",
  usage: "image-factory rollout --env prod [--waves fr-par-1:nl-ams-1:pl-waw-1,fr-par-2:...] [--preview] [--markdown]",
  options: {
    env: { type: "string", value: "ENV", description: "the environment whose zone stacks to roll out (prod)" },
    waves: {
      type: "string",
      value: "Z:Z,Z:...",
      description: "the waves, zones joined by ':' within one and ',' between them; canary zones first by default",
    },
    preview: { type: "boolean", description: "pulumi preview instead of up" },
    markdown: { type: "boolean", description: "print the report in Markdown instead of JSON" },
  },
  environment: {
    PULUMI_BACKEND_URL: "the Pulumi backend; the logged-in one when unset",
    PULUMI_CONFIG_PASSPHRASE: "the passphrase of a self-managed backend's secrets (or PULUMI_CONFIG_PASSPHRASE_FILE)",
    SCW_ACCESS_KEY: ENVIRONMENT.SCW_ACCESS_KEY!,
    SCW_SECRET_KEY: ENVIRONMENT.SCW_SECRET_KEY!,
  },
  async run(v) {
    const env = str(v, "env");
    if (!env) throw new UsageError("--env: give the environment whose stacks to roll out (e.g. prod)");
    let waves: string[][];
    try {
      waves = parseWaves(env, stackNames(projectRoot()), str(v, "waves"));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    // The Automation API runs the pulumi CLI: without it every stack would fail with only "code: -2" (ENOENT).
    if (!onPath("pulumi"))
      throw new Error(
        "the pulumi CLI is not installed (not found on PATH): rollout drives it through the Automation API; install it (https://www.pulumi.com/docs/install/), then pulumi login",
      );
    // The engine is only loaded here: the rest of this CLI (what the Commands run) never imports Pulumi.
    const { automationRunner } = await import("../../components/automation.js");
    const op = v.preview ? "preview" : "up";
    const report = await rollout(
      waves,
      automationRunner(projectRoot(), (line) => process.stderr.write(line)),
      op,
      (line) => process.stderr.write(`${line}\n`),
    );
    process.stdout.write(
      v.markdown ? rolloutMarkdown(report, waves.flat().length) : `${JSON.stringify(report, null, 2)}\n`,
    );
    return report.stoppedAfter === undefined ? 0 : 1;
  },
});

register("retention", {
  summary: "keep, hide (renamed with the build date) or delete previous image versions per their uuid_validity",
  usage:
    "image-factory retention --stack NAME [--apply] [--at YYYY-MM-DD] [--json]\n" +
    "image-factory retention --zone ZONE --current REL/ARCH=HASH,... [--apply] [--at YYYY-MM-DD] [--json]",
  // Not registered with the contract: --stack reads the zone and builds from the stack file instead.
  ...withContract(
    "retention",
    {
      stack: {
        type: "string",
        value: "NAME",
        description: "take the zone and the current builds from this stack's plan",
      },
      zone: { type: "string", value: "ZONE", description: "the Availability Zone (without --stack)" },
      current: {
        type: "string",
        value: "REL/ARCH=HASH,...",
        description: "the stack's current builds (without --stack)",
      },
      apply: { type: "boolean", description: "carry the plan out; without it, print what it would do" },
      at: AT,
      json: { type: "boolean", description: "print JSON" },
    },
    {},
    RetentionContract,
  ),
  async run(v) {
    // The Command's FACTORY_TIMEOUT bounds this run as it bounds the contract-registered subcommands.
    const timeout = FACTORY_TIMEOUT.safeParse(process.env.FACTORY_TIMEOUT || undefined);
    if (!timeout.success)
      throw new UsageError(
        `FACTORY_TIMEOUT: ${timeout.error.issues[0]!.message} (got "${process.env.FACTORY_TIMEOUT}")`,
      );
    return bounded(retentionRun(v), timeout.data, "image-factory retention");
  },
});

async function retentionRun(v: Values): Promise<number> {
  const at = dayOption(v);
  const stack = str(v, "stack");
  let zone = str(v, "zone");
  let current: Map<string, string>;
  if (stack) {
    const catalog = loadCatalog();
    const settings = readStackSettings(projectRoot(), stack, catalog);
    zone = settings.zone;
    current = parseCurrentBuilds(formatCurrentBuilds(planStack(catalog, settings)));
  } else {
    // What the stack's retention Command passes (builder/core/contract.ts); without --stack, zone and builds are needed.
    if (!zone || !(ZONES as readonly string[]).includes(zone))
      throw new UsageError(`--zone: give a Scaleway Availability Zone (${ZONES.join(", ")}), or --stack`);
    // An empty list would make every image a previous version: refuse rather than hide a whole zone.
    if (!str(v, "current"))
      throw new UsageError("--current: give the stack's current builds (REL/ARCH=HASH,...), or --stack");
    let env: Read<typeof RetentionContract>;
    try {
      env = readEnvironment(RetentionContract, process.env, v);
    } catch (err) {
      if (err instanceof ContractError) throw new UsageError(err.message);
      throw err;
    }
    zone = env.zone;
    try {
      current = parseCurrentBuilds(env.current);
    } catch (err) {
      throw new UsageError(`--current: ${(err as Error).message}`);
    }
  }
  const client = zoneClient(zone, missingCredential);
  const steps = planRetention(await liveFactoryImages(client, zone), current, at);
  const outcomes = v.apply
    ? await applyRetention(client, zone, steps, (l) => process.stderr.write(`retention ${zone}: ${l}\n`))
    : [];
  const row = (s: RetentionStep) => [
    s.key,
    `${s.image.name} (${s.image.id})`,
    s.action === "mark" ? `mark as "${s.rename}"` : s.action,
    s.reason,
  ];
  if (v.json)
    process.stdout.write(
      `${JSON.stringify({ zone, at, applied: v.apply === true, steps: steps.map((s) => ({ action: s.action, key: s.key, image: s.image.id, name: s.image.name, rename: s.rename, reason: s.reason })), outcomes }, null, 2)}\n`,
    );
  else {
    process.stdout.write(
      steps.length
        ? `${table(["release", "image", "action", "why"], steps.map(row))}\n`
        : "no factory images in this zone\n",
    );
    if (!v.apply && steps.some((s) => s.action === "mark" || s.action === "delete"))
      process.stdout.write("dry run: --apply carries it out\n");
  }
  return outcomes.some((o) => o.error) ? 1 : 0;
}
