/**
 * `image-factory doctor --stack NAME`: everything a real `pulumi up` of the stack needs, checked without creating
 * anything; one line per problem with its fix, exit 1 when there is one. `--online` adds read-only calls.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { loadCatalog, type Catalog } from "../../images";
import {
  backendFindings,
  releaseKeyFindings,
  credentialFindings,
  endpointFindings,
  formatFinding,
  zoneFindings,
  type Env,
  type Finding,
  type PulumiCredentials,
  type StackFile,
} from "./doctor-checks";
import { onlineFindings, type OnlineTarget } from "./doctor-online";
import { upstreamFindings } from "./doctor-pins";
import { doctorHost, privateKeyFindings } from "./doctor-host";
import { BuildHostList, hostLabel } from "../core/build-hosts";
import { sourceDigest } from "../build-stamp";
import { LOCAL_STACK } from "../local/local-job";
import { projectRoot } from "../system/paths";
import { accelerator } from "../system/accel";
import { ENVIRONMENT, register, UsageError } from "./registry";
import { StackConfigError, type StackSettings } from "../core/settings";
import { readStackSettings } from "../system/stack-files";
import { regionOf, ZONE_CAPABILITIES } from "../core/zones";

export interface DoctorFacts {
  stack: string;
  file: StackFile;
  env: Env;
  pulumiCredentials?: PulumiCredentials;
  /** Parsed settings, or the problems that stopped them parsing. */
  settings?: StackSettings;
  settingsProblems: string[];
}

export interface DoctorReport {
  stack: string;
  findings: Finding[];
  /** Checks skipped and facts not verified, with why: not problems. */
  notes: string[];
}

/**
 * Why the local stack passes: the local job (`npm run local`) starts its mirror, S3 server and emulated API on
 * loopback, makes their credentials itself and drives the emulated API without the Pulumi engine.
 */
export const LOCAL_NOTES = [
  "credentials: not checked: the local job makes the S3 server's keys and the emulated API's key pair at each run",
  "backend: not checked: the local job runs no Pulumi engine, so it needs no backend or passphrase",
  "pins: not checked: the local mirror serves the fixture under the pinned serial with a checksum file made with it",
  "online: not checked: the local services run only while the local job does",
];

/** Every offline check, over gathered facts. `fileExists` looks at this machine's files. */
export function offlineReport(facts: DoctorFacts, catalog: Catalog, fileExists: (p: string) => boolean): DoctorReport {
  const local = facts.stack === LOCAL_STACK;
  const s = facts.settings;
  const findings: Finding[] = facts.settingsProblems.map((problem) => ({
    check: "settings",
    problem,
    fix: `edit stacks/Pulumi.${facts.stack}.yaml`,
  }));
  const notes: string[] = local ? [...LOCAL_NOTES] : [];
  if (!local)
    findings.push(
      ...credentialFindings(facts.file, facts.env, s),
      ...backendFindings(facts.file, facts.env, facts.pulumiCredentials, fileExists),
      ...releaseKeyFindings(facts.file.config),
    );
  findings.push(...privateKeyFindings(facts.file.config));
  if (s) {
    findings.push(...endpointFindings(s), ...zoneFindings(s));
    const upstream = upstreamFindings(catalog, s);
    findings.push(...(local ? upstream.filter((f) => f.check !== "pins") : upstream));
    const zone = ZONE_CAPABILITIES[s.zone];
    if (!zone.verified) notes.push(`zone: ${s.zone}'s capabilities are not verified (${zone.source})`);
    if (!zone.commercialTypes)
      notes.push(`zone: no stored list of ${s.zone}'s Instance types: --online checks the test commercial types`);
  } else notes.push("endpoints, zone, pins and keys: not checked until the settings parse");
  return { stack: facts.stack, findings, notes };
}

const Credentials = z.looseObject({
  current: z.string().optional(),
  accessTokens: z.record(z.string(), z.string()).optional(),
});

/** The logged-in backend, as the Pulumi CLI records it; undefined when nobody logged in. */
export function readPulumiCredentials(env: Env): PulumiCredentials | undefined {
  const file = join(env.PULUMI_HOME ?? join(homedir(), ".pulumi"), "credentials.json");
  if (!existsSync(file)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new UsageError(`${file}: not JSON (${(err as Error).message}): run pulumi login again`);
  }
  const parsed = Credentials.safeParse(json);
  if (!parsed.success)
    throw new UsageError(`${file}: not a Pulumi credentials file: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export function readStackFile(projectDir: string, stack: string): StackFile {
  const file = join(projectDir, "stacks", `Pulumi.${stack}.yaml`);
  if (!existsSync(file))
    throw new UsageError(`no stack ${stack}: ${join("stacks", `Pulumi.${stack}.yaml`)} does not exist`);
  const doc = (parse(readFileSync(file, "utf8")) ?? {}) as {
    config?: Record<string, unknown>;
    secretsprovider?: string;
    encryptionsalt?: string;
  };
  return { config: doc.config ?? {}, secretsprovider: doc.secretsprovider, encryptionsalt: doc.encryptionsalt };
}

export function gatherFacts(projectDir: string, stack: string, env: Env, catalog: Catalog): DoctorFacts {
  const file = readStackFile(projectDir, stack);
  let settings: StackSettings | undefined;
  let settingsProblems: string[] = [];
  try {
    settings = readStackSettings(projectDir, stack, catalog);
  } catch (err) {
    if (!(err instanceof StackConfigError)) throw err;
    settingsProblems = err.problems;
  }
  return { stack, file, env, pulumiCredentials: readPulumiCredentials(env), settings, settingsProblems };
}

/** The online target, when the stack's key pair is readable here (a `secure:` secret needs SCW_SECRET_KEY set). */
export function onlineTarget(facts: DoctorFacts): OnlineTarget | string {
  const s = facts.settings;
  if (!s) return "online: not checked: the settings do not parse";
  const config = facts.file.config;
  const accessKey =
    typeof config["scaleway:accessKey"] === "string" ? config["scaleway:accessKey"] : facts.env.SCW_ACCESS_KEY;
  const secretKey =
    typeof config["scaleway:secretKey"] === "string" ? config["scaleway:secretKey"] : facts.env.SCW_SECRET_KEY;
  if (!accessKey || !secretKey)
    return "online: not checked: needs the access key and secret key in SCW_ACCESS_KEY and SCW_SECRET_KEY";
  const region = regionOf(s.zone);
  const testTypes: OnlineTarget["testTypes"] = {};
  if (s.runTests)
    for (const arch of s.architectures)
      testTypes[arch] =
        arch === "arm64"
          ? { key: "testCommercialTypeArm64", type: s.testCommercialTypeArm64 }
          : { key: "testCommercialType", type: s.testCommercialType };
  return {
    zone: s.zone,
    region,
    bucket: s.bucket,
    s3Endpoint: s.s3Endpoint ?? `https://s3.${region}.scw.cloud`,
    apiUrl: s.apiUrl ?? facts.env.SCW_API_URL,
    accessKey,
    secretKey,
    testTypes,
  };
}

export async function doctor(stack: string, env: Env, online: boolean): Promise<DoctorReport> {
  const catalog = loadCatalog();
  const facts = gatherFacts(projectRoot(), stack, env, catalog);
  const report = offlineReport(facts, catalog, existsSync);
  if (!online || stack === LOCAL_STACK) return report;
  const target = onlineTarget(facts);
  if (typeof target === "string") report.notes.push(target);
  else report.findings.push(...(await onlineFindings(target)));
  return report;
}

/** `--host user@address[:port] --host-key KEY --arch ARCH --key FILE`: the host as a stack line would list it. */
async function doctorHostCommand(v: Record<string, unknown>): Promise<number> {
  const arch = v.arch === "arm64" ? "arm64" : v.arch === "x86_64" ? "x86_64" : undefined;
  if (!arch || typeof v["host-key"] !== "string" || typeof v.key !== "string")
    throw new UsageError(
      "doctor --host: give --host-key '<host public key>', --arch x86_64|arm64 and --key <private key file>",
    );
  const parsed = BuildHostList.safeParse([`${arch} ${String(v.host)} ${v["host-key"]}`]);
  if (!parsed.success) throw new UsageError(`doctor --host: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  const host = (parsed.data[arch] as Exclude<(typeof parsed.data)[typeof arch], "local" | undefined>)[0]!;
  const where = hostLabel(host);
  const findings = await doctorHost({ ...host, privateKeyFile: v.key }, arch, sourceDigest(projectRoot()), where);
  if (v.json) process.stdout.write(`${JSON.stringify({ host: where, arch, findings }, null, 2)}\n`);
  else
    process.stdout.write(
      `${findings.length ? findings.map(formatFinding).join("\n") : `build host ${where}: ready for ${arch} builds`}\n`,
    );
  return findings.length ? 1 : 0;
}

register("doctor", {
  summary: "check, without creating anything, what a real `pulumi up` of a stack needs; non-zero on a problem",
  usage:
    "image-factory doctor --stack NAME [--online] [--json]\n" +
    "image-factory doctor --host USER@ADDRESS[:PORT] --host-key 'ssh-ed25519 AAAA…' --arch x86_64|arm64 --key FILE [--json]\n" +
    "image-factory doctor --accel",
  options: {
    stack: { type: "string", value: "NAME", description: "the stack to check (stacks/Pulumi.NAME.yaml)" },
    online: {
      type: "boolean",
      description: "add read-only calls: images and Instance types in the zone, HeadBucket, GetBucketLocation",
    },
    json: { type: "boolean", description: "print the report as JSON" },
    host: {
      type: "string",
      value: "USER@ADDRESS[:PORT]",
      description:
        "check a build host over SSH instead of a stack: architecture, /dev/kvm, free disk, the CLI's version, sshd AcceptEnv",
    },
    "host-key": {
      type: "string",
      value: "KEY",
      description: "with --host: the host's public key as pinned in buildHosts ('ssh-ed25519 AAAA…')",
    },
    arch: { type: "string", value: "ARCH", description: "with --host: the architecture it builds (x86_64 or arm64)" },
    key: { type: "string", value: "FILE", description: "with --host: the SSH private key file for the user" },
    accel: {
      type: "boolean",
      description:
        "print the accelerator this machine's builds use, kvm or tcg, found by booting its kernel under KVM (what --host asks a build host)",
    },
  },
  environment: {
    ...Object.fromEntries(
      ["SCW_ACCESS_KEY", "SCW_SECRET_KEY", "SCW_DEFAULT_PROJECT_ID", "SCW_API_URL"].map((k) => [k, ENVIRONMENT[k]!]),
    ),
    PULUMI_BACKEND_URL: "the Pulumi backend; the logged-in one (PULUMI_HOME/credentials.json) when unset",
    PULUMI_CONFIG_PASSPHRASE: "the passphrase of a self-managed backend's secrets (or PULUMI_CONFIG_PASSPHRASE_FILE)",
  },
  async run(v) {
    if (v.accel) {
      process.stdout.write(`${await accelerator()}\n`);
      return 0;
    }
    if (typeof v.host === "string") return doctorHostCommand(v);
    if (typeof v.stack !== "string" || !v.stack) throw new UsageError("doctor: give --stack NAME");
    const report = await doctor(v.stack, process.env, v.online === true);
    if (v.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const lines = report.findings.map(formatFinding);
      process.stdout.write(`${lines.length ? lines.join("\n") : `stack ${report.stack}: no problem found`}\n`);
      for (const note of report.notes) process.stderr.write(`note: ${note}\n`);
    }
    return report.findings.length ? 1 : 0;
  },
});
