/** The build pipeline's subcommands: resolve, fetch, build, upload, publish, unpublish, ecosystem-repo. */
import { renameSync, writeFileSync } from "node:fs";
import type { OptionSpec, OptionTable } from "./options";
import { ENVIRONMENT, register, UsageError, type Values } from "./registry";
import { buildImage } from "./build";
import { CatalogError, loadCatalog, osBase, withOverrides, type Catalog } from "../images";
import { AppBases, SourceOverrides, UpstreamSignatures } from "./settings";
import type { z } from "zod";
import { scalewayClient } from "./scw-client";
import { Instancev1 } from "@scaleway/sdk-instance";
import { PublishContract, TestInstanceContract, UnpublishContract, type Read } from "./contract";
import { Architecture } from "../images/schema";
import { fetchVerified } from "./fetch";
import { publish, unpublish } from "./publish";
import { resolveSource } from "./resolve";
import { s3Client, uploadArtifact, type S3Target } from "./upload";
import { buildEcosystemRepo } from "./local/ecosystem-repo";
import { runLocalJob } from "./local/local-job";
import { statusTag, withStatus } from "./retention";
import { table } from "./table";
import { testLocal } from "./testing/local-boot";
import { runBattery, SCENARIOS } from "./testing/battery";

const str = (v: Values, k: string) => (typeof v[k] === "string" ? v[k] : undefined);
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
  if (!r.success)
    throw new UsageError(
      `--${k} (${env}): ${r.error.issues.map((i) => `${i.path.map(String).join(".") || "(value)"}: ${i.message}`).join("; ")}`,
    );
  return r.data;
}

/** The catalog as the stack sees it: the Command passes the stack's app bases and download overrides. */
function stackCatalog(v: Values): Catalog {
  const appBases = jsonFlag(v, "app-bases", "FACTORY_APP_BASES", AppBases);
  const sourceOverrides = jsonFlag(v, "source-overrides", "FACTORY_SOURCE_OVERRIDES", SourceOverrides);
  const upstreamSignatures = jsonFlag(v, "upstream-signatures", "FACTORY_UPSTREAM_SIGNATURES", UpstreamSignatures);
  try {
    return withOverrides(loadCatalog(), { appBases, sourceOverrides, upstreamSignatures });
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

/** What names an upstream image and how the stack sees the catalog: shared by resolve, fetch, build and publish. */
const sourceOptions = (arch: OptionSpec["default"]): OptionTable => ({
  release: {
    type: "string",
    value: "ID",
    env: "FACTORY_RELEASE",
    description: "the release id (image-factory catalog lists them); or give it as the first argument",
  },
  arch: {
    type: "string",
    value: "ARCH",
    env: "FACTORY_ARCH",
    ...(arch ? { default: arch } : {}),
    description: "x86_64 or arm64",
  },
  mirror: {
    type: "string",
    value: "URL",
    env: "FACTORY_MIRROR",
    description: "fetch upstream files through <URL>/<host>/<path>",
  },
  "app-bases": {
    type: "string",
    value: "JSON",
    env: "FACTORY_APP_BASES",
    description: "the stack's appBases, as a JSON object app id → OS release id",
  },
  "source-overrides": {
    type: "string",
    value: "JSON",
    env: "FACTORY_SOURCE_OVERRIDES",
    description: "the stack's sourceOverrides (pinned downloads replaced), as JSON",
  },
  "upstream-signatures": {
    type: "string",
    value: "JSON",
    env: "FACTORY_UPSTREAM_SIGNATURES",
    description: "the stack's upstreamSignatures (checksum files verified with another key), as JSON",
  },
});

/** What goes into an image besides its upstream: the stack's dials, each in the content hash. */
const buildOptions = (arch: OptionSpec["default"]): OptionTable => ({
  ...sourceOptions(arch),
  "release-epoch": {
    type: "string",
    value: "QUARTER",
    env: "FACTORY_RELEASE_EPOCH",
    description: "the stack's releaseEpoch (2026Q4)",
  },
  "security-epoch": {
    type: "string",
    value: "N",
    env: "FACTORY_SECURITY_EPOCH",
    default: "0",
    description: "the image's security rebuild counter",
  },
  "ecosystem-version": {
    type: "string",
    value: "VERSION",
    env: "FACTORY_ECOSYSTEM_VERSION",
    description: "the scaleway-ecosystem version to install",
  },
  "ecosystem-repository": {
    type: "string",
    value: "URL",
    env: "FACTORY_ECOSYSTEM_REPOSITORY",
    description: "the package repository serving scaleway-ecosystem",
  },
  "ecosystem-key-fingerprint": {
    type: "string",
    value: "HEX",
    env: "FACTORY_ECOSYSTEM_KEY_FINGERPRINT",
    description: "that repository's signing key fingerprint (40 uppercase hex digits); required off loopback",
  },
  "content-hash": {
    type: "string",
    value: "SHA256",
    env: "FACTORY_CONTENT_HASH",
    description: "the planned content hash: the build fails if its own differs",
  },
});

const JSON_OUTPUT: OptionTable = { json: { type: "boolean", description: "print JSON" } };

/** What a build needs, whether from flags (`build`) or the artifact Command's environment (`publish`). */
type BuildValues = Pick<
  Read<typeof PublishContract>,
  | "release"
  | "arch"
  | "releaseEpoch"
  | "securityEpoch"
  | "ecosystemVersion"
  | "ecosystemRepository"
  | "mirror"
  | "appBases"
  | "sourceOverrides"
  | "upstreamSignatures"
  | "ecosystemKeyFingerprint"
  | "contentHash"
>;

function buildInputs(v: Values, positionals: string[]) {
  const { release, arch } = releaseAndArch(v, positionals);
  const security = Number(str(v, "security-epoch") ?? "0");
  if (!Number.isInteger(security) || security < 0) throw new UsageError("--security-epoch: expected a whole number");
  return inputsFrom({
    release: release.id,
    arch,
    releaseEpoch: need(v, "release-epoch", "FACTORY_RELEASE_EPOCH"),
    securityEpoch: security,
    ecosystemVersion: need(v, "ecosystem-version", "FACTORY_ECOSYSTEM_VERSION"),
    ecosystemRepository: need(v, "ecosystem-repository", "FACTORY_ECOSYSTEM_REPOSITORY"),
    mirror: str(v, "mirror"),
    appBases: jsonFlag(v, "app-bases", "FACTORY_APP_BASES", AppBases),
    sourceOverrides: jsonFlag(v, "source-overrides", "FACTORY_SOURCE_OVERRIDES", SourceOverrides),
    upstreamSignatures: jsonFlag(v, "upstream-signatures", "FACTORY_UPSTREAM_SIGNATURES", UpstreamSignatures),
    ecosystemKeyFingerprint: fingerprintFlag(v),
    contentHash: str(v, "content-hash") ?? "",
  });
}

function fingerprintFlag(v: Values): string | undefined {
  const fingerprint = str(v, "ecosystem-key-fingerprint");
  if (fingerprint !== undefined && !/^[0-9A-F]{40}$/.test(fingerprint))
    throw new UsageError(
      "--ecosystem-key-fingerprint (FACTORY_ECOSYSTEM_KEY_FINGERPRINT): expected 40 uppercase hex digits",
    );
  return fingerprint;
}

function inputsFrom(b: BuildValues) {
  let catalog: Catalog;
  try {
    catalog = withOverrides(loadCatalog(), {
      appBases: b.appBases,
      sourceOverrides: b.sourceOverrides,
      upstreamSignatures: b.upstreamSignatures,
    });
  } catch (err) {
    if (err instanceof CatalogError) throw new UsageError(err.problems.join("; "));
    throw err;
  }
  const release = catalog.byId.get(b.release);
  if (!release) throw new UsageError(`no release "${b.release}" in the catalog (image-factory catalog lists them)`);
  if (!release.architectures.includes(b.arch)) throw new UsageError(`${b.release} is not built for ${b.arch}`);
  return {
    catalog,
    releaseId: release.id,
    arch: b.arch,
    dials: {
      releaseEpoch: b.releaseEpoch,
      ecosystemVersion: b.ecosystemVersion,
      securityEpoch: b.securityEpoch,
      ...(b.ecosystemKeyFingerprint ? { ecosystemKeyFingerprint: b.ecosystemKeyFingerprint } : {}),
    },
    ecosystem: { repository: b.ecosystemRepository, version: b.ecosystemVersion },
    ...(b.mirror ? { mirror: b.mirror } : {}),
    ...(b.contentHash ? { expectedContentHash: b.contentHash } : {}),
  };
}

/** Where the artifact goes. */
const s3Options: OptionTable = {
  endpoint: {
    type: "string",
    value: "URL",
    env: "FACTORY_S3_ENDPOINT",
    description: "the S3 endpoint; https://s3.<region>.scw.cloud by default",
  },
  region: { type: "string", value: "REGION", env: "FACTORY_S3_REGION", description: "the bucket's region (fr-par)" },
  bucket: { type: "string", value: "BUCKET", env: "FACTORY_BUCKET", description: "the bucket holding the artifacts" },
  key: {
    type: "string",
    value: "KEY",
    env: "FACTORY_KEY",
    description: "the artifact's object key, images/<id>/<arch>/<sha256>.qcow2",
  },
};
const S3_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: ENVIRONMENT.AWS_ACCESS_KEY_ID!,
  AWS_SECRET_ACCESS_KEY: ENVIRONMENT.AWS_SECRET_ACCESS_KEY!,
  SCW_ACCESS_KEY: ENVIRONMENT.SCW_ACCESS_KEY!,
  SCW_SECRET_KEY: ENVIRONMENT.SCW_SECRET_KEY!,
};
const CACHE = { FACTORY_CACHE: ENVIRONMENT.FACTORY_CACHE! };
/** The customisation's libguestfs appliance size (builder/accel.ts). */
const APPLIANCE = {
  FACTORY_APPLIANCE_SMP: ENVIRONMENT.FACTORY_APPLIANCE_SMP!,
  FACTORY_APPLIANCE_MEMSIZE: ENVIRONMENT.FACTORY_APPLIANCE_MEMSIZE!,
};

function credentials(c: { accessKeyId?: string; secretAccessKey?: string } = {}) {
  const accessKeyId = c.accessKeyId ?? process.env.SCW_ACCESS_KEY;
  const secretAccessKey = c.secretAccessKey ?? process.env.SCW_SECRET_KEY;
  if (!accessKeyId || !secretAccessKey)
    throw new UsageError(
      "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or SCW_ACCESS_KEY and SCW_SECRET_KEY): the key pair of a Scaleway API key (Scaleway console, IAM, API keys)",
    );
  return { accessKeyId, secretAccessKey };
}

function s3Target(v: Values): S3Target {
  const region = need(v, "region", "FACTORY_S3_REGION");
  return {
    endpoint: str(v, "endpoint") ?? `https://s3.${region}.scw.cloud`,
    region,
    bucket: need(v, "bucket", "FACTORY_BUCKET"),
    ...credentials({ accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY }),
  };
}

/** The bucket from the artifact Command's environment (builder/contract.ts). */
function s3From(e: Read<typeof UnpublishContract>): S3Target {
  return {
    endpoint: e.s3Endpoint ?? `https://s3.${e.s3Region}.scw.cloud`,
    region: e.s3Region,
    bucket: e.bucket,
    ...credentials(e),
  };
}

const out = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

async function resolveFor(v: Values, positionals: string[]) {
  const { catalog, release, arch } = releaseAndArch(v, positionals);
  return { release, arch, source: await resolveSource(osBase(catalog, release), arch, str(v, "mirror")) };
}

register("resolve", {
  summary: "read the upstream checksum file (verifying its signature) for a release's pinned build",
  usage: "image-factory resolve <id> [--arch x86_64] [--mirror URL]",
  options: { ...sourceOptions("x86_64"), ...JSON_OUTPUT },
  async run(v, p) {
    out((await resolveFor(v, p)).source);
  },
});

register("fetch", {
  summary: "download and verify a release's upstream image into the cache; prints its path",
  usage: "image-factory fetch <id> [--arch x86_64] [--mirror URL]",
  options: { ...sourceOptions("x86_64"), ...JSON_OUTPUT },
  environment: CACHE,
  async run(v, p) {
    const { release, arch, source } = await resolveFor(v, p);
    out({
      path: await fetchVerified(source.fetchUrl, source.checksum, `${release.id} ${arch}`),
      checksum: source.checksum,
    });
  },
});

register("build", {
  summary: "resolve, fetch, customise and finalise an image into DIR (qcow2 + manifest.json)",
  usage:
    "image-factory build <id> --out DIR --release-epoch 2026Q4 --ecosystem-version V --ecosystem-repository URL [--arch] [--mirror] [--security-epoch N]",
  options: {
    ...buildOptions("x86_64"),
    out: { type: "string", value: "DIR", description: "where to write the qcow2 and manifest.json" },
    ...JSON_OUTPUT,
  },
  environment: { ...CACHE, ...APPLIANCE },
  async run(v, p) {
    const result = await buildImage({ ...buildInputs(v, p), outDir: need(v, "out") });
    out({
      artifact: result.artifact,
      manifest: result.manifestFile,
      contentHash: result.manifest.contentHash,
      sha256: result.manifest.output.sha256,
    });
  },
});

register("upload", {
  summary: "upload a built artifact to Object Storage (multipart, resumable, skipped when present)",
  usage: "image-factory upload --file F --bucket B --key K --region R [--endpoint URL] --content-hash H",
  options: {
    ...s3Options,
    file: { type: "string", value: "FILE", description: "the built qcow2" },
    "content-hash": {
      type: "string",
      value: "SHA256",
      env: "FACTORY_CONTENT_HASH",
      description: "the artifact's content hash, recorded on the object",
    },
  },
  environment: S3_CREDENTIALS,
  async run(v) {
    const target = s3Target(v);
    out(
      await uploadArtifact(s3Client(target), target.bucket, need(v, "key"), need(v, "file"), need(v, "content-hash")),
    );
  },
});

register("publish", {
  summary: "build and upload unless the bucket already holds this content hash (the ZonalImage Command)",
  usage: "image-factory publish   (FACTORY_* environment, as the ZonalImage Command sets it)",
  options: {
    ...buildOptions(undefined),
    ...s3Options,
    ref: { type: "string", value: "STACK/NAME", description: "the stack's reference to the artifact" },
    "stale-upload-hours": {
      type: "string",
      value: "HOURS",
      description: "abort multipart uploads under images/ older than this (24 when unset)",
    },
  },
  environment: { ...CACHE, ...APPLIANCE, ...S3_CREDENTIALS },
  contract: PublishContract,
  async run(_v, _p, e) {
    // Multipart uploads under images/ older than this are aborted (default 24 h): younger ones may be in progress.
    const staleUploadMs = e.staleUploadHours === undefined ? undefined : e.staleUploadHours * 3600_000;
    out(
      await publish({
        ...inputsFrom({ ...e, contentHash: e.contentHash }),
        s3: s3From(e),
        key: e.key,
        ref: e.ref,
        staleUploadMs,
        releaseKey: e.releaseKey,
      }),
    );
  },
});

register("unpublish", {
  summary: "drop a stack's reference to an artifact; delete the artifact with the last reference",
  usage: "image-factory unpublish   (FACTORY_BUCKET, FACTORY_KEY, FACTORY_REF, FACTORY_S3_*)",
  options: { ...s3Options, ref: { type: "string", value: "STACK/NAME", description: "the stack's reference to drop" } },
  environment: S3_CREDENTIALS,
  contract: UnpublishContract,
  async run(_v, _p, e) {
    out(await unpublish(s3From(e), e.key, e.ref));
  },
});

register("ecosystem-repo", {
  summary:
    "build the factory's scaleway-ecosystem package into a flat APT repository, signed by the committed THROWAWAY test key (builder/local/test-keys/)",
  usage: "image-factory ecosystem-repo --out DIR --version V",
  options: {
    out: { type: "string", value: "DIR", description: "where to write the repository" },
    version: { type: "string", value: "VERSION", description: "the scaleway-ecosystem version to package" },
  },
  async run(v) {
    out({ repository: await buildEcosystemRepo(need(v, "out"), need(v, "version")) });
  },
});

register("local", {
  summary:
    "the local stack's main job: fixture upstream, embedded S3, build and publish every planned image, then release it through the emulated API; independent images at the same time, as cores and memory allow",
  usage: "image-factory local [--no-test] [--images id,...] [--only scenario,...] [--jobs N] [--json]",
  options: {
    json: { type: "boolean", description: "print the results as JSON" },
    "no-test": { type: "boolean", description: "build and publish only: no test Instance, no battery" },
    images: { type: "string", value: "ID,...", description: "only these planned images (release ids); all by default" },
    only: {
      type: "string",
      value: "SCENARIO,...",
      description: `only these battery scenarios (${SCENARIOS.join(", ")})`,
    },
    jobs: {
      type: "string",
      value: "N",
      env: "FACTORY_LOCAL_JOBS",
      description: "at most N steps at once (1: one after another); by default as the cores and memory allow",
    },
  },
  environment: {
    ...CACHE,
    ...APPLIANCE,
    FACTORY_ACCEL: ENVIRONMENT.FACTORY_ACCEL!,
    FACTORY_LOCAL_STATE: ENVIRONMENT.FACTORY_LOCAL_STATE!,
  },
  async run(v) {
    const list = (k: string) =>
      (str(v, k) ?? "")
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean);
    const only = list("only");
    const unknown = only.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
    if (unknown.length)
      throw new UsageError(`--only: unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.join(", ")}`);
    const jobs = str(v, "jobs");
    if (jobs !== undefined && !/^[1-9]\d*$/.test(jobs))
      throw new UsageError(`--jobs: a whole number of at least 1, not "${jobs}"`);
    const results = await runLocalJob({
      test: !v["no-test"],
      only,
      images: list("images"),
      ...(jobs ? { jobs: Number(jobs) } : {}),
    });
    if (v.json) out(results);
    else {
      process.stdout.write(
        `${table(
          ["image", "built", "uploaded MiB", "tests", "build s", "test s", "artifact"],
          results.map((r) => [
            r.image,
            r.error?.startsWith("build skipped")
              ? "skipped"
              : r.error?.startsWith("build:")
                ? "FAILED"
                : r.built
                  ? "yes"
                  : r.uploadedBytes > 0
                    ? "no (cached artifact)"
                    : "no (already in bucket)",
            (r.uploadedBytes / 2 ** 20).toFixed(1),
            r.tests,
            r.buildSeconds.toFixed(0),
            r.testSeconds.toFixed(0),
            r.key,
          ]),
        )}\n`,
      );
      for (const r of results) if (r.error) process.stdout.write(`${r.image}: ${r.error}\n`);
    }
    return results.some((r) => r.tests === "failed" || r.error) ? 1 : 0;
  },
});

register("test-local", {
  summary: "boot a built qcow2 in QEMU (KVM or TCG) and run the in-guest checks over SSH",
  usage: "image-factory test-local <image.qcow2> --release ID [--user debian] [--uefi] [--json] [--console FILE]",
  options: {
    release: { type: "string", value: "ID", description: "the release the image is of: which checks apply" },
    user: {
      type: "string",
      value: "USER",
      description: "the user to log in as; the release's image_original_user by default",
    },
    uefi: { type: "boolean", description: "boot with UEFI firmware instead of BIOS" },
    json: { type: "boolean", description: "print the results as JSON" },
    console: { type: "string", value: "FILE", description: "write the serial console's output to FILE" },
  },
  environment: { ...CACHE, FACTORY_ACCEL: ENVIRONMENT.FACTORY_ACCEL! },
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
    else
      process.stdout.write(
        `${table(
          ["check", "result", "seconds", "reason"],
          results.map((r) => [r.name, r.status, r.seconds.toFixed(1), r.reason]),
        )}\n`,
      );
    return results.some((r) => r.status === "fail") ? 1 : 0;
  },
});

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
