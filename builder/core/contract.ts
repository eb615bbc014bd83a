/**
 * The contract between the Pulumi program's Commands and the image-factory CLI they run: each Command's
 * environment, defined once. The component and the local job write it (`writeEnvironment`), the CLI reads it back
 * (`readEnvironment`), so the two cannot disagree on a name, a format or which variables are secret.
 * Pure: no Pulumi, no fs. The writer is generic over the value wrapper, so the component can pass Outputs.
 */
import { z } from "zod";
import { AppBases, Duration, SourceOverrides, UpstreamSignatures } from "./settings";
import { ZONES } from "./zones";

/** One environment variable: its name, how its string form parses, whether it is a secret or optional. */
export interface Variable<T, O extends boolean = boolean> {
  name: string;
  /** `text`: the value is the string itself (a wrapped value passes through the writer); `encoded`: written by `encode`. */
  kind: "text" | "encoded";
  parse: z.ZodType<T, string>;
  encode(value: T): string;
  secret: boolean;
  optional: O;
  /** The CLI flag the variable stands in for, when the subcommand has one. */
  flag?: string;
}

interface Opts<O extends boolean> {
  secret?: boolean;
  optional?: O;
  flag?: string;
}

/** A variable whose value is the string itself: a writer may pass it wrapped (an Output). */
export type TextVariable<O extends boolean = boolean> = Variable<string, O> & { kind: "text" };

function text<O extends boolean = false>(
  name: string,
  schema: z.ZodType<string, string> = z.string().min(1),
  o: Opts<O> = {},
): TextVariable<O> {
  return {
    name,
    kind: "text",
    parse: schema,
    encode: (v) => v,
    secret: o.secret ?? false,
    optional: (o.optional ?? false) as O,
    ...(o.flag ? { flag: o.flag } : {}),
  };
}

function encoded<T, O extends boolean = false>(
  name: string,
  parse: z.ZodType<T, string>,
  encode: (v: T) => string,
  o: Opts<O> = {},
): Variable<T, O> {
  return {
    name,
    kind: "encoded",
    parse,
    encode,
    secret: o.secret ?? false,
    optional: (o.optional ?? false) as O,
    ...(o.flag ? { flag: o.flag } : {}),
  };
}

function json<T, O extends boolean = false>(name: string, schema: z.ZodType<T>, o: Opts<O> = {}): Variable<T, O> {
  const parse = z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "not JSON" });
        return z.NEVER;
      }
    })
    .pipe(schema) as unknown as z.ZodType<T, string>;
  return encoded(name, parse, (v) => JSON.stringify(v), o);
}

const positiveNumber = z
  .string()
  .regex(/^(\d+\.?\d*|\.\d+)$/, "expected a positive number of hours")
  .transform(Number)
  .refine((n) => n > 0, "expected a positive number of hours");
const wholeNumber = z.string().regex(/^\d+$/, "expected a whole number").transform(Number);
const commaList = z.string().transform((s) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean),
);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits (sha256)");
const zone = z.enum(ZONES, { error: () => `expected a Scaleway Availability Zone (${ZONES.join(", ")})` });

/** Milliseconds in a `Duration`. */
export function durationMs(d: string): number {
  const n = Number(d.slice(0, -1));
  return n * { s: 1_000, m: 60_000, h: 3_600_000 }[d.slice(-1) as "s" | "m" | "h"];
}

// `any`: a contract mixes variables of every value type; `unknown` would not accept them (parse is invariant).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Contract = Record<string, Variable<any, boolean>>;

/** The CLI bounds its own run by this (Commands have no timeout of their own). */
const timeout = encoded("FACTORY_TIMEOUT", Duration, (v) => v, { optional: true });

/** Where the artifact lives and the stack's reference to it: what publish and unpublish share. */
export const UnpublishContract = {
  accessKeyId: text("AWS_ACCESS_KEY_ID", undefined, { optional: true }),
  secretAccessKey: text("AWS_SECRET_ACCESS_KEY", undefined, { secret: true, optional: true }),
  s3Endpoint: text("FACTORY_S3_ENDPOINT", z.url(), { optional: true, flag: "endpoint" }),
  s3Region: text("FACTORY_S3_REGION", z.string().regex(/^[a-z]{2}-[a-z]{3}$/, "expected a region such as fr-par"), {
    flag: "region",
  }),
  bucket: text("FACTORY_BUCKET", undefined, { flag: "bucket" }),
  key: text(
    "FACTORY_KEY",
    z.string().regex(/^images\/[^/]+\/[^/]+\/[0-9a-f]{64}\.qcow2$/, "expected images/<id>/<arch>/<sha256>.qcow2"),
    { flag: "key" },
  ),
  ref: text("FACTORY_REF", z.string().regex(/^[^/\s]+\/[^/\s]+$/, "expected <stack>/<name>"), { flag: "ref" }),
  timeout,
};

/** `image-factory publish`: the artifact Command's create. */
export const PublishContract = {
  ...UnpublishContract,
  release: text("FACTORY_RELEASE", undefined, { flag: "release" }),
  arch: encoded("FACTORY_ARCH", z.enum(["x86_64", "arm64"]), (v) => v, { flag: "arch" }),
  contentHash: text("FACTORY_CONTENT_HASH", sha256, { flag: "content-hash" }),
  releaseEpoch: text("FACTORY_RELEASE_EPOCH", z.string().regex(/^\d{4}Q[1-4]$/, "expected a quarter such as 2026Q4"), {
    flag: "release-epoch",
  }),
  securityEpoch: encoded("FACTORY_SECURITY_EPOCH", wholeNumber, String, { flag: "security-epoch" }),
  ecosystemVersion: text("FACTORY_ECOSYSTEM_VERSION", undefined, { flag: "ecosystem-version" }),
  ecosystemRepository: text("FACTORY_ECOSYSTEM_REPOSITORY", z.url(), { flag: "ecosystem-repository" }),
  /** The scaleway-ecosystem repository's signing key fingerprint, when the stack pins one. */
  ecosystemKeyFingerprint: text(
    "FACTORY_ECOSYSTEM_KEY_FINGERPRINT",
    z.string().regex(/^[0-9A-F]{40}$/, "expected 40 uppercase hex digits (an OpenPGP fingerprint)"),
    { optional: true, flag: "ecosystem-key-fingerprint" },
  ),
  mirror: text("FACTORY_MIRROR", z.url(), { optional: true, flag: "mirror" }),
  appBases: json("FACTORY_APP_BASES", AppBases, { optional: true, flag: "app-bases" }),
  sourceOverrides: json("FACTORY_SOURCE_OVERRIDES", SourceOverrides, { optional: true, flag: "source-overrides" }),
  upstreamSignatures: json("FACTORY_UPSTREAM_SIGNATURES", UpstreamSignatures, {
    optional: true,
    flag: "upstream-signatures",
  }),
  /** `releaseKey`: the Ed25519 PKCS#8 PEM signing the provenance (builder/core/signing.ts); unset, nothing is signed. */
  releaseKey: text(
    "FACTORY_RELEASE_KEY",
    z
      .string()
      .regex(
        /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n?$/,
        "expected a PKCS#8 PEM private key",
      ),
    { secret: true, optional: true },
  ),
  /** Multipart uploads under images/ older than this many hours are a dead publisher's: publish aborts them. */
  staleUploadHours: encoded("FACTORY_STALE_UPLOAD_HOURS", positiveNumber, String, {
    optional: true,
    flag: "stale-upload-hours",
  }),
};

/** The Scaleway API credentials, as the SDK and the provider read them. */
const scw = {
  accessKey: text("SCW_ACCESS_KEY"),
  secretKey: text("SCW_SECRET_KEY", undefined, { secret: true }),
  projectId: text("SCW_DEFAULT_PROJECT_ID", z.uuid(), { optional: true }),
  apiUrl: text("SCW_API_URL", z.url(), { optional: true }),
};

/** `image-factory test-instance`: the tests Command's create. */
export const TestInstanceContract = {
  serverId: text("FACTORY_SERVER_ID", undefined, { flag: "server" }),
  zone: encoded("FACTORY_ZONE", zone, (v) => v, { flag: "zone" }),
  release: text("FACTORY_RELEASE", undefined, { flag: "release" }),
  only: encoded("FACTORY_TESTS", commaList, (v) => v.join(","), { optional: true, flag: "only" }),
  dnsNames: encoded("FACTORY_DNS_NAMES", commaList, (v) => v.join(","), { optional: true, flag: "dns" }),
  report: text("FACTORY_TEST_REPORT", undefined, { optional: true, flag: "report" }),
  ...scw,
  timeout,
};

/** `image-factory retention --apply`: the stack's retention Command. */
export const RetentionContract = {
  zone: encoded("FACTORY_ZONE", zone, (v) => v, { flag: "zone" }),
  current: text("FACTORY_CURRENT", undefined, { flag: "current" }),
  ...scw,
  timeout,
};

type Value<V> = V extends Variable<infer T, boolean> ? T : never;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- matches a variable of any value type
type OptionalKeys<C> = { [K in keyof C]: C[K] extends Variable<any, true> ? K : never }[keyof C];
type RequiredKeys<C> = Exclude<keyof C, OptionalKeys<C>>;

/** What the CLI reads: each variable's parsed value (optional ones may be absent). */
export type Read<C> = { [K in RequiredKeys<C>]: Value<C[K]> } & { [K in OptionalKeys<C>]?: Value<C[K]> };

/** What a writer passes: plain values, or for `text` variables any wrapped value `W` (a Pulumi Input). */
type In<V, W> = V extends { kind: "text" } ? string | W : Value<V>;
export type Write<C, W> = { [K in RequiredKeys<C>]: In<C[K], W> } & {
  [K in OptionalKeys<C>]?: In<C[K], W> | undefined;
};

export class ContractError extends Error {
  constructor(public readonly problems: string[]) {
    super(problems.join("; "));
    this.name = "ContractError";
  }
}

const issues = (e: z.ZodError) =>
  e.issues.map((i) => `${i.path.length ? `${i.path.map(String).join(".")}: ` : ""}${i.message}`).join(", ");

/**
 * A Command's environment from its values: each variable in its string form, `secret` applied to the secret
 * ones (the component passes `pulumi.secret`). Plain values are checked here, so a bad one fails at preview, not
 * in the CLI; wrapped ones pass through untouched.
 */
export function writeEnvironment<C extends Contract, W = never>(
  contract: C,
  values: Write<C, W>,
  secret: (v: string | W) => string | W = (v) => v,
): Record<string, string | W> {
  const env: Record<string, string | W> = {};
  const problems: string[] = [];
  for (const [field, variable] of Object.entries(contract)) {
    const value = (values as Record<string, unknown>)[field];
    if (value === undefined || value === "") {
      if (!variable.optional) problems.push(`${variable.name} (${field}) is required`);
      continue;
    }
    let out: string | W;
    if (variable.kind === "text" && typeof value !== "string") out = value as W;
    else {
      out = variable.encode(value);
      const r = variable.parse.safeParse(out);
      if (!r.success) problems.push(`${variable.name}: ${issues(r.error)}`);
    }
    env[variable.name] = variable.secret ? secret(out) : out;
  }
  if (problems.length) throw new ContractError(problems);
  return env;
}

/**
 * The values back from an environment. `flags` (the CLI's parsed flags, by flag name) win over the environment;
 * an error names the variable (and the flag) and what is wrong with it.
 */
export function readEnvironment<C extends Contract>(
  contract: C,
  env: Record<string, string | undefined>,
  flags: Record<string, unknown> = {},
): Read<C> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [field, variable] of Object.entries(contract)) {
    const flag = variable.flag ? flags[variable.flag] : undefined;
    const raw = typeof flag === "string" ? flag : env[variable.name];
    const where = variable.flag ? `--${variable.flag} (${variable.name})` : variable.name;
    if (raw === undefined || raw === "") {
      if (!variable.optional)
        problems.push(
          variable.flag ? `missing --${variable.flag} (or ${variable.name})` : `${variable.name} is not set`,
        );
      continue;
    }
    const r = variable.parse.safeParse(raw);
    if (r.success) out[field] = r.data;
    else problems.push(`${where}: ${issues(r.error)}${variable.secret ? "" : ` (got "${raw}")`}`);
  }
  if (problems.length) throw new ContractError(problems);
  return out as Read<C>;
}

/** The names of a contract's secret variables. */
export const secretVariables = (contract: Contract): string[] =>
  Object.values(contract)
    .filter((v) => v.secret)
    .map((v) => v.name);

/** Flag → variable, for the CLI's fallback from flags to the environment. */
export const flagVariables = (contract: Contract): Record<string, string> =>
  Object.fromEntries(Object.values(contract).flatMap((v) => (v.flag ? [[v.flag, v.name]] : [])));
