/** What the pipeline subcommands share: their option tables, reading flags and FACTORY_* variables, S3 targets. */
import type { OptionSpec, OptionTable } from "./options";
import { ENVIRONMENT, UsageError, type Values } from "./registry";
import { CatalogError, loadCatalog, osBase, withOverrides, type Catalog } from "../../images";
import { AppBases, SourceOverrides, UpstreamSignatures } from "../core/settings";
import type { z } from "zod";
import { PublishContract, UnpublishContract, type Read } from "../core/contract";
import { Architecture } from "../../images/schema";
import { resolveSource } from "../pipeline/resolve";
import type { S3Target } from "../pipeline/upload";

export const str = (v: Values, k: string) => (typeof v[k] === "string" ? v[k] : undefined);
export function need(v: Values, k: string, env?: string): string {
  const value = str(v, k);
  if (!value) throw new UsageError(`missing --${k}${env ? ` (or ${env})` : ""}`);
  return value;
}

/** A JSON-valued flag or variable, validated: a usage error names it and says what is wrong. */
export function jsonFlag<T>(v: Values, k: string, env: string, schema: z.ZodType<T>): T | undefined {
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
export function stackCatalog(v: Values): Catalog {
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

export function releaseAndArch(v: Values, positionals: string[]) {
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
export const sourceOptions = (arch: OptionSpec["default"]): OptionTable => ({
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
export const buildOptions = (arch: OptionSpec["default"]): OptionTable => ({
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

export const JSON_OUTPUT: OptionTable = { json: { type: "boolean", description: "print JSON" } };

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

export function buildInputs(v: Values, positionals: string[]) {
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

export function fingerprintFlag(v: Values): string | undefined {
  const fingerprint = str(v, "ecosystem-key-fingerprint");
  if (fingerprint !== undefined && !/^[0-9A-F]{40}$/.test(fingerprint))
    throw new UsageError(
      "--ecosystem-key-fingerprint (FACTORY_ECOSYSTEM_KEY_FINGERPRINT): expected 40 uppercase hex digits",
    );
  return fingerprint;
}

export function inputsFrom(b: BuildValues) {
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
export const s3Options: OptionTable = {
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
export const S3_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: ENVIRONMENT.AWS_ACCESS_KEY_ID!,
  AWS_SECRET_ACCESS_KEY: ENVIRONMENT.AWS_SECRET_ACCESS_KEY!,
  SCW_ACCESS_KEY: ENVIRONMENT.SCW_ACCESS_KEY!,
  SCW_SECRET_KEY: ENVIRONMENT.SCW_SECRET_KEY!,
};
export const CACHE = { FACTORY_CACHE: ENVIRONMENT.FACTORY_CACHE! };
/** The customisation's libguestfs appliance size (builder/system/accel.ts). */
export const APPLIANCE = {
  FACTORY_APPLIANCE_SMP: ENVIRONMENT.FACTORY_APPLIANCE_SMP!,
  FACTORY_APPLIANCE_MEMSIZE: ENVIRONMENT.FACTORY_APPLIANCE_MEMSIZE!,
};

export function credentials(c: { accessKeyId?: string; secretAccessKey?: string } = {}) {
  const accessKeyId = c.accessKeyId ?? process.env.SCW_ACCESS_KEY;
  const secretAccessKey = c.secretAccessKey ?? process.env.SCW_SECRET_KEY;
  if (!accessKeyId || !secretAccessKey)
    throw new UsageError(
      "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or SCW_ACCESS_KEY and SCW_SECRET_KEY): the key pair of a Scaleway API key (Scaleway console, IAM, API keys)",
    );
  return { accessKeyId, secretAccessKey };
}

export function s3Target(v: Values): S3Target {
  const region = need(v, "region", "FACTORY_S3_REGION");
  return {
    endpoint: str(v, "endpoint") ?? `https://s3.${region}.scw.cloud`,
    region,
    bucket: need(v, "bucket", "FACTORY_BUCKET"),
    ...credentials({ accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY }),
  };
}

/** The bucket from the artifact Command's environment (builder/core/contract.ts). */
export function s3From(e: Read<typeof UnpublishContract>): S3Target {
  return {
    endpoint: e.s3Endpoint ?? `https://s3.${e.s3Region}.scw.cloud`,
    region: e.s3Region,
    bucket: e.bucket,
    ...credentials(e),
  };
}

export const out = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

export async function resolveFor(v: Values, positionals: string[]) {
  const { catalog, release, arch } = releaseAndArch(v, positionals);
  return { release, arch, source: await resolveSource(osBase(catalog, release), arch, str(v, "mirror")) };
}
