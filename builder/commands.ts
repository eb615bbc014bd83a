/** The build pipeline's subcommands: resolve, fetch, build, upload, publish, unpublish, ecosystem-repo. */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { register, UsageError, type Values } from "./registry";
import { buildImage } from "./build";
import { CatalogError, loadCatalog, osBase, withOverrides, type Catalog } from "../images";
import { AppBases, SourceOverrides } from "./settings";
import type { z } from "zod";
import { Architecture } from "../images/schema";
import { fetchVerified } from "./fetch";
import { publish, unpublish } from "./publish";
import { resolveSource } from "./resolve";
import { s3Client, uploadArtifact, type S3Target } from "./upload";
import { buildEcosystemRepo } from "./local/ecosystem-repo";
import { runLocalJob } from "./local/local-job";
import { table } from "./table";
import { testLocal } from "./testing/local-boot";
import { runBattery, SCENARIOS } from "./testing/battery";
import { ZONES } from "./zones";

const str = (v: Values, k: string) => (typeof v[k] === "string" ? (v[k] as string) : undefined);
function need(v: Values, k: string, env?: string): string {
  const value = str(v, k);
  if (!value) throw new UsageError(`missing --${k}${env ? ` (or ${env})` : ""}`);
  return value;
}

/** A JSON-valued flag or variable, validated: a usage error names it and says what is wrong. */
function jsonFlag<T>(v: Values, k: string, env: string, schema: z.ZodType<T>): T | undefined {
  const raw = str(v, k);
  if (raw === undefined || raw === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new UsageError(`--${k} (${env}): not JSON`);
  }
  const r = schema.safeParse(parsed);
  if (!r.success) throw new UsageError(`--${k} (${env}): ${r.error.issues.map((i) => `${i.path.map(String).join(".") || "(value)"}: ${i.message}`).join("; ")}`);
  return r.data;
}

/** The catalog as the stack sees it: the Command passes the stack's app bases and download overrides. */
function stackCatalog(v: Values): Catalog {
  const appBases = jsonFlag(v, "app-bases", "FACTORY_APP_BASES", AppBases);
  const sourceOverrides = jsonFlag(v, "source-overrides", "FACTORY_SOURCE_OVERRIDES", SourceOverrides);
  try {
    return withOverrides(loadCatalog(), { appBases, sourceOverrides });
  } catch (err) {
    if (err instanceof CatalogError) throw new UsageError(err.problems.join("; "));
    throw err;
  }
}

function releaseAndArch(v: Values, positionals: string[]) {
  const id = positionals[0] ?? str(v, "release");
  if (!id) throw new UsageError("give a release id, e.g. debian-12");
  const catalog = stackCatalog(v);
  const release = catalog.byId.get(id);
  if (!release) throw new UsageError(`no release "${id}" in the catalog (image-factory catalog lists them)`);
  const arch = Architecture.safeParse(str(v, "arch") ?? "x86_64");
  if (!arch.success) throw new UsageError(`--arch: expected one of ${Architecture.options.join(", ")}`);
  if (!release.architectures.includes(arch.data)) throw new UsageError(`${id} is not built for ${arch.data}`);
  return { catalog, release, arch: arch.data };
}

const sourceOptions = {
  release: { type: "string" },
  arch: { type: "string" },
  mirror: { type: "string" },
  "app-bases": { type: "string" },
  "source-overrides": { type: "string" },
  json: { type: "boolean", default: false },
} as const;
const sourceEnv = {
  release: "FACTORY_RELEASE", arch: "FACTORY_ARCH", mirror: "FACTORY_MIRROR",
  "app-bases": "FACTORY_APP_BASES", "source-overrides": "FACTORY_SOURCE_OVERRIDES",
};

const buildOptions = {
  ...sourceOptions,
  "release-epoch": { type: "string" },
  "security-epoch": { type: "string" },
  "ecosystem-version": { type: "string" },
  "ecosystem-repository": { type: "string" },
  "content-hash": { type: "string" },
} as const;
const buildEnv = {
  ...sourceEnv,
  "release-epoch": "FACTORY_RELEASE_EPOCH",
  "security-epoch": "FACTORY_SECURITY_EPOCH",
  "ecosystem-version": "FACTORY_ECOSYSTEM_VERSION",
  "ecosystem-repository": "FACTORY_ECOSYSTEM_REPOSITORY",
  "content-hash": "FACTORY_CONTENT_HASH",
};

function buildInputs(v: Values, positionals: string[]) {
  const { catalog, release, arch } = releaseAndArch(v, positionals);
  const security = Number(str(v, "security-epoch") ?? "0");
  if (!Number.isInteger(security) || security < 0) throw new UsageError("--security-epoch: expected a whole number");
  const signingKeyFile = process.env.FACTORY_ECOSYSTEM_KEY_FILE;
  return {
    catalog,
    releaseId: release.id,
    arch,
    dials: {
      releaseEpoch: need(v, "release-epoch", "FACTORY_RELEASE_EPOCH"),
      ecosystemVersion: need(v, "ecosystem-version", "FACTORY_ECOSYSTEM_VERSION"),
      securityEpoch: security,
    },
    ecosystem: {
      repository: need(v, "ecosystem-repository", "FACTORY_ECOSYSTEM_REPOSITORY"),
      version: need(v, "ecosystem-version", "FACTORY_ECOSYSTEM_VERSION"),
      ...(signingKeyFile ? { signingKey: readFileSync(signingKeyFile, "utf8") } : {}),
    },
    ...(str(v, "mirror") ? { mirror: str(v, "mirror") } : {}),
    ...(str(v, "content-hash") ? { expectedContentHash: str(v, "content-hash") } : {}),
  };
}

const s3Options = {
  endpoint: { type: "string" },
  region: { type: "string" },
  bucket: { type: "string" },
  key: { type: "string" },
} as const;
const s3Env = { endpoint: "FACTORY_S3_ENDPOINT", region: "FACTORY_S3_REGION", bucket: "FACTORY_BUCKET", key: "FACTORY_KEY" };

function s3Target(v: Values): S3Target {
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID ?? process.env.SCW_ACCESS_KEY;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY ?? process.env.SCW_SECRET_KEY;
  if (!accessKeyId || !secretAccessKey) throw new UsageError("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or SCW_ACCESS_KEY and SCW_SECRET_KEY)");
  const region = need(v, "region", "FACTORY_S3_REGION");
  return { endpoint: str(v, "endpoint") ?? `https://s3.${region}.scw.cloud`, region, bucket: need(v, "bucket", "FACTORY_BUCKET"), accessKeyId, secretAccessKey };
}

const out = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

async function resolveFor(v: Values, positionals: string[]) {
  const { catalog, release, arch } = releaseAndArch(v, positionals);
  return { release, arch, source: await resolveSource(osBase(catalog, release), arch, str(v, "mirror")) };
}

register("resolve", {
  summary: "read the upstream checksum file (verifying its signature) for a release's pinned build",
  usage: "image-factory resolve <id> [--arch x86_64] [--mirror URL]",
  options: sourceOptions,
  env: sourceEnv,
  async run(v, p) {
    out((await resolveFor(v, p)).source);
  },
});

register("fetch", {
  summary: "download and verify a release's upstream image into the cache; prints its path",
  usage: "image-factory fetch <id> [--arch x86_64] [--mirror URL]",
  options: sourceOptions,
  env: sourceEnv,
  async run(v, p) {
    const { release, arch, source } = await resolveFor(v, p);
    out({ path: await fetchVerified(source.fetchUrl, source.checksum, `${release.id} ${arch}`), checksum: source.checksum });
  },
});

register("build", {
  summary: "resolve, fetch, customise and finalise an image into DIR (qcow2 + manifest.json)",
  usage:
    "image-factory build <id> --out DIR --release-epoch 2026Q4 --ecosystem-version V --ecosystem-repository URL [--arch] [--mirror] [--security-epoch N]",
  options: { ...buildOptions, out: { type: "string" } },
  env: buildEnv,
  async run(v, p) {
    const result = await buildImage({ ...buildInputs(v, p), outDir: need(v, "out") });
    out({ artifact: result.artifact, manifest: result.manifestFile, contentHash: result.manifest.contentHash, sha256: result.manifest.output.sha256 });
  },
});

register("upload", {
  summary: "upload a built artifact to Object Storage (multipart, resumable, skipped when present)",
  usage: "image-factory upload --file F --bucket B --key K --region R [--endpoint URL] --content-hash H",
  options: { ...s3Options, file: { type: "string" }, "content-hash": { type: "string" } },
  env: { ...s3Env, "content-hash": "FACTORY_CONTENT_HASH" },
  async run(v) {
    const target = s3Target(v);
    out(await uploadArtifact(s3Client(target), target.bucket, need(v, "key"), need(v, "file"), need(v, "content-hash")));
  },
});

register("publish", {
  summary: "build and upload unless the bucket already holds this content hash (the ZonalImage Command)",
  usage: "image-factory publish   (FACTORY_* environment, as the ZonalImage Command sets it)",
  options: { ...buildOptions, ...s3Options, ref: { type: "string" }, "stale-upload-hours": { type: "string" } },
  env: { ...buildEnv, ...s3Env, ref: "FACTORY_REF", "stale-upload-hours": "FACTORY_STALE_UPLOAD_HOURS" },
  async run(v, p) {
    const hours = str(v, "stale-upload-hours") || undefined;
    // Multipart uploads under images/ older than this are aborted (default 24 h): younger ones may be in progress.
    if (hours !== undefined && !(Number(hours) > 0)) throw new UsageError(`--stale-upload-hours (FACTORY_STALE_UPLOAD_HOURS): "${hours}" is not a positive number of hours`);
    const staleUploadMs = hours === undefined ? undefined : Number(hours) * 3600_000;
    const inputs = buildInputs(v, p);
    out(await publish({ ...inputs, s3: s3Target(v), key: need(v, "key", "FACTORY_KEY"), ref: need(v, "ref", "FACTORY_REF"), staleUploadMs }));
  },
});

register("unpublish", {
  summary: "drop a stack's reference to an artifact; delete the artifact with the last reference",
  usage: "image-factory unpublish   (FACTORY_BUCKET, FACTORY_KEY, FACTORY_REF, FACTORY_S3_*)",
  options: { ...s3Options, ref: { type: "string" } },
  env: { ...s3Env, ref: "FACTORY_REF" },
  async run(v) {
    out(await unpublish(s3Target(v), need(v, "key", "FACTORY_KEY"), need(v, "ref", "FACTORY_REF")));
  },
});

register("ecosystem-repo", {
  summary: "build the factory's scaleway-ecosystem package into a flat APT repository",
  usage: "image-factory ecosystem-repo --out DIR --version V",
  options: { out: { type: "string" }, version: { type: "string" } },
  async run(v) {
    out({ repository: await buildEcosystemRepo(need(v, "out"), need(v, "version")) });
  },
});

register("local", {
  summary: "the local stack's main job: fixture upstream, embedded S3, build and publish every planned image, then release it through the emulated API",
  usage: "image-factory local [--no-test] [--images id,...] [--only scenario,...] [--json]",
  options: {
    json: { type: "boolean", default: false },
    "no-test": { type: "boolean", default: false },
    images: { type: "string" },
    only: { type: "string" },
  },
  async run(v) {
    const list = (k: string) => (str(v, k) ?? "").split(",").map((x) => x.trim()).filter(Boolean);
    const only = list("only");
    const unknown = only.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
    if (unknown.length) throw new UsageError(`--only: unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.join(", ")}`);
    const results = await runLocalJob({ test: !v["no-test"], only, images: list("images") });
    if (v.json) out(results);
    else
      process.stdout.write(
        `${table(["image", "built", "uploaded MiB", "tests", "seconds", "artifact"], results.map((r) => [r.image, r.built ? "yes" : "no (already in bucket)", (r.uploadedBytes / 2 ** 20).toFixed(1), r.tests, r.seconds.toFixed(0), r.key]))}\n`,
      );
    return results.some((r) => r.tests === "failed") ? 1 : 0;
  },
});

register("test-local", {
  summary: "boot a built qcow2 in QEMU (KVM or TCG) and run the in-guest checks over SSH",
  usage: "image-factory test-local <image.qcow2> --release ID [--user debian] [--uefi] [--json] [--console FILE]",
  options: {
    release: { type: "string" },
    user: { type: "string" },
    uefi: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    console: { type: "string" },
  },
  async run(v, p) {
    const image = p[0];
    if (!image) throw new UsageError("give the qcow2 to boot");
    const releaseId = need(v, "release");
    const release = loadCatalog().byId.get(releaseId);
    if (!release) throw new UsageError(`no release "${releaseId}" in the catalog`);
    const { results, console: consoleText } = await testLocal({
      image,
      releaseId,
      user: str(v, "user") ?? release.scs.image_original_user,
      firmware: v.uefi ? "uefi" : "bios",
    });
    if (str(v, "console")) writeFileSync(str(v, "console")!, consoleText);
    if (v.json) out(results);
    else process.stdout.write(`${table(["check", "result", "seconds", "reason"], results.map((r) => [r.name, r.status, r.seconds.toFixed(1), r.reason]))}\n`);
    return results.some((r) => r.status === "fail") ? 1 : 0;
  },
});

register("test-instance", {
  summary: "run the release test battery (in-guest checks + the 12 API scenarios) against a test Instance",
  usage:
    "image-factory test-instance --server ID --zone ZONE --release ID [--only a,b] [--dns name,...] [--report FILE] [--json]\n" +
    "  credentials: SCW_ACCESS_KEY, SCW_SECRET_KEY, SCW_DEFAULT_PROJECT_ID (SCW_API_URL for another endpoint)\n" +
    `  scenarios: ${SCENARIOS.join(", ")}`,
  options: {
    server: { type: "string" },
    zone: { type: "string" },
    release: { type: "string" },
    only: { type: "string" },
    dns: { type: "string" },
    report: { type: "string" },
    json: { type: "boolean", default: false },
  },
  env: { server: "FACTORY_SERVER_ID", zone: "FACTORY_ZONE", release: "FACTORY_RELEASE", only: "FACTORY_TESTS", dns: "FACTORY_DNS_NAMES", report: "FACTORY_TEST_REPORT" },
  async run(v) {
    const serverId = need(v, "server", "FACTORY_SERVER_ID");
    const zone = need(v, "zone", "FACTORY_ZONE");
    if (!(ZONES as readonly string[]).includes(zone)) throw new UsageError(`--zone: ${zone} is not a Scaleway Availability Zone`);
    const releaseId = need(v, "release", "FACTORY_RELEASE");
    if (!loadCatalog().byId.has(releaseId)) throw new UsageError(`no release "${releaseId}" in the catalog`);
    const env = (name: string) => {
      const value = process.env[name];
      if (!value) throw new UsageError(`${name} is not set: the test runner calls the Scaleway API with it`);
      return value;
    };
    const list = (k: string) => (str(v, k) ?? "").split(",").map((x) => x.trim()).filter(Boolean);
    const only = list("only");
    const unknown = only.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
    if (unknown.length) throw new UsageError(`--only: unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.join(", ")}`);
    const report = await runBattery({
      apiUrl: process.env.SCW_API_URL,
      accessKey: env("SCW_ACCESS_KEY"),
      secretKey: env("SCW_SECRET_KEY"),
      projectId: env("SCW_DEFAULT_PROJECT_ID"),
      zone,
      serverId,
      releaseId,
      dnsNames: list("dns").length ? list("dns") : ["api.scaleway.com"],
      only,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const text = table(["test", "result", "seconds", "reason"], report.results.map((r) => [r.name, r.status, r.seconds.toFixed(1), r.reason]));
    process.stderr.write(`${text}\n`);
    const reportFile = str(v, "report");
    if (reportFile) {
      // Whole or not at all: a reader never sees half a report.
      writeFileSync(`${reportFile}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
      renameSync(`${reportFile}.tmp`, reportFile);
    }
    if (v.json) out(report);
    else process.stdout.write(`${text}\n`);
    return report.results.some((r) => r.status === "fail") ? 1 : 0;
  },
});
