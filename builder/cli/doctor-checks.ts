/**
 * `image-factory doctor`'s offline checks: plain functions over facts gathered beforehand (doctor-facts.ts), so
 * each is tested on crafted facts. A finding is one problem and how to fix it.
 */
import { PROJECT, type StackSettings } from "../core/settings";
import { ZONE_CAPABILITIES } from "../core/zones";

export interface Finding {
  /** credentials, backend, release, endpoint, zone, settings, pins, keys, ecosystem, online */
  check: string;
  problem: string;
  fix: string;
}

/** What a stack file holds besides its settings: Pulumi's own keys and every config value as written. */
export interface StackFile {
  /** Config values as parsed from YAML: a secret is `{ secure: "v1:…" }`. */
  config: Record<string, unknown>;
  secretsprovider?: string;
  encryptionsalt?: string;
}

/** `~/.pulumi/credentials.json` (or `$PULUMI_HOME/credentials.json`), the parts doctor reads. */
export interface PulumiCredentials {
  current?: string;
  accessTokens?: Record<string, string>;
}

export type Env = Readonly<Record<string, string | undefined>>;

export const ACCESS_KEY = /^SCW[A-Z0-9]{17}$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const isSecure = (v: unknown): boolean =>
  typeof v === "object" && v !== null && typeof (v as { secure?: unknown }).secure === "string";

/**
 * The Scaleway key pair and Project the program and its Commands need (index.ts: `scaleway:accessKey` /
 * `scaleway:secretKey` config first, then SCW_ACCESS_KEY / SCW_SECRET_KEY; the test battery needs a Project id from
 * `image-factory:projectId` or SCW_DEFAULT_PROJECT_ID). A secret in the stack file must be `secure:`.
 */
export function credentialFindings(file: StackFile, env: Env, settings?: Pick<StackSettings, "projectId">): Finding[] {
  const out: Finding[] = [];
  const f = (problem: string, fix: string) => out.push({ check: "credentials", problem, fix });
  const configAccess = file.config["scaleway:accessKey"];
  const access =
    typeof configAccess === "string"
      ? { value: configAccess, from: "scaleway:accessKey" }
      : env.SCW_ACCESS_KEY
        ? { value: env.SCW_ACCESS_KEY, from: "SCW_ACCESS_KEY" }
        : undefined;
  if (!access && !isSecure(configAccess))
    f("no Scaleway access key", "export SCW_ACCESS_KEY=SCW… (or pulumi config set scaleway:accessKey SCW…)");
  else if (access && !ACCESS_KEY.test(access.value))
    f(
      `${access.from} is not an access key (expected SCW followed by 17 letters or digits)`,
      `set ${access.from} to the API key's access key`,
    );

  const configSecret = file.config["scaleway:secretKey"];
  if (configSecret !== undefined && !isSecure(configSecret))
    f(
      "scaleway:secretKey is in clear text in the stack file",
      "pulumi config set --secret scaleway:secretKey (it is written as secure:), then revoke the exposed key",
    );
  else if (configSecret === undefined && !env.SCW_SECRET_KEY)
    f("no Scaleway secret key", "export SCW_SECRET_KEY=… (or pulumi config set --secret scaleway:secretKey)");
  else if (configSecret === undefined && !UUID.test(env.SCW_SECRET_KEY!))
    f("SCW_SECRET_KEY is not a secret key (expected a UUID)", "set SCW_SECRET_KEY to the API key's secret key");

  const project = settings?.projectId ? undefined : env.SCW_DEFAULT_PROJECT_ID;
  if (!settings?.projectId && !project)
    f(
      "no Scaleway Project id (the test battery creates its resources in it)",
      `export SCW_DEFAULT_PROJECT_ID=… (or pulumi config set ${PROJECT}:projectId …)`,
    );
  else if (project && !UUID.test(project))
    f("SCW_DEFAULT_PROJECT_ID is not a Project id (expected a UUID)", "set SCW_DEFAULT_PROJECT_ID to the Project's id");
  return out;
}

/**
 * The release signing key (docs/supply-chain.md): without it a real stack publishes artifacts that nobody can
 * verify (publish only warns, so this is where it is said before `pulumi up`); in clear text it is exposed.
 */
export function releaseKeyFindings(config: Record<string, unknown>): Finding[] {
  const key = config[`${PROJECT}:releaseKey`];
  const f = (problem: string, fix: string): Finding[] => [{ check: "release", problem, fix }];
  if (key === undefined)
    return f(
      `${PROJECT}:releaseKey is not set: artifacts would be published unsigned, their provenance unverifiable`,
      `openssl genpkey -algorithm ed25519 | pulumi config set --secret ${PROJECT}:releaseKey, and its public part (openssl pkey -pubout) as ${PROJECT}:releasePublicKey`,
    );
  if (!isSecure(key))
    return f(
      `${PROJECT}:releaseKey is in clear text in the stack file`,
      `pulumi config set --secret ${PROJECT}:releaseKey with a new key (the exposed one signs for anybody), and update ${PROJECT}:releasePublicKey`,
    );
  if (config[`${PROJECT}:releasePublicKey`] === undefined)
    return f(
      `${PROJECT}:releasePublicKey is not set: operators cannot verify what the stack signs`,
      `pulumi config get ${PROJECT}:releaseKey | openssl pkey -pubout | pulumi config set ${PROJECT}:releasePublicKey`,
    );
  return [];
}

/** loopback hosts: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  } catch {
    return false;
  }
}

/** Endpoints that carry credentials or artifacts must be https, unless they stay on this machine. */
export function endpointFindings(settings: Pick<StackSettings, "apiUrl" | "s3Endpoint" | "mirror">): Finding[] {
  return (["apiUrl", "s3Endpoint", "mirror"] as const).flatMap((key) => {
    const url = settings[key];
    if (!url || url.startsWith("https://") || isLoopback(url)) return [];
    return [
      {
        check: "endpoint",
        problem: `${PROJECT}:${key} ${url} is not https and not loopback`,
        fix: `use an https:// URL for ${PROJECT}:${key}`,
      },
    ];
  });
}

/**
 * The test Instances: each architecture built must be offered in the zone, and each test commercial type must be
 * of that architecture and offered there, as far as the zone table knows (unknown facts are left to --online).
 */
export function zoneFindings(
  settings: Pick<
    StackSettings,
    "zone" | "architectures" | "runTests" | "testCommercialType" | "testCommercialTypeArm64"
  >,
): Finding[] {
  const zone = ZONE_CAPABILITIES[settings.zone];
  const out: Finding[] = [];
  for (const arch of settings.architectures) {
    if (zone.architectures && !zone.architectures.includes(arch))
      out.push({
        check: "zone",
        problem: `${settings.zone} offers no ${arch} Instances (${zone.source})`,
        fix: `remove ${arch} from ${PROJECT}:architectures`,
      });
    if (!settings.runTests) continue;
    const [key, type] =
      arch === "arm64"
        ? ["testCommercialTypeArm64", settings.testCommercialTypeArm64]
        : ["testCommercialType", settings.testCommercialType];
    const known = zone.commercialTypes?.[type];
    if (known && known !== arch)
      out.push({
        check: "zone",
        problem: `${PROJECT}:${key} ${type} is an ${known} type, not ${arch}`,
        fix: `set ${PROJECT}:${key} to an ${arch} type offered in ${settings.zone}`,
      });
    else if (zone.notOffered?.includes(type))
      out.push({
        check: "zone",
        problem: `${PROJECT}:${key} ${type} is not offered in ${settings.zone} (${zone.source})`,
        fix: `set ${PROJECT}:${key} to an ${arch} type offered there${suggest(zone.commercialTypes, arch)}`,
      });
  }
  return out;
}

const suggest = (types: Readonly<Record<string, string>> | undefined, arch: string) => {
  const names = Object.entries(types ?? {})
    .filter(([, a]) => a === arch)
    .map(([n]) => n);
  return names.length ? ` (such as ${names.slice(0, 2).join(" or ")})` : "";
};

/** Where Pulumi keeps this stack's state, as the CLI decides it: PULUMI_BACKEND_URL, else the logged-in backend. */
export function backendUrl(env: Env, credentials: PulumiCredentials | undefined): string | undefined {
  return (
    env.PULUMI_BACKEND_URL || credentials?.current || (env.PULUMI_ACCESS_TOKEN ? "https://api.pulumi.com" : undefined)
  );
}

/**
 * The Pulumi backend and the secrets provider's key. A passphrase provider (named in the stack file, implied by an
 * encryption salt, or the default of a self-managed backend) needs PULUMI_CONFIG_PASSPHRASE or
 * PULUMI_CONFIG_PASSPHRASE_FILE; a Pulumi Cloud backend needs an access token.
 */
export function backendFindings(
  file: StackFile,
  env: Env,
  credentials: PulumiCredentials | undefined,
  fileExists: (path: string) => boolean,
): Finding[] {
  const out: Finding[] = [];
  const backend = backendUrl(env, credentials);
  if (!backend)
    out.push({
      check: "backend",
      problem: "no Pulumi backend: PULUMI_BACKEND_URL is not set and no `pulumi login` is recorded",
      fix: "pulumi login (Pulumi Cloud), pulumi login s3://BUCKET… or pulumi login --local; or export PULUMI_BACKEND_URL",
    });
  const cloud = backend !== undefined && /^https?:\/\//.test(backend);
  if (cloud && !env.PULUMI_ACCESS_TOKEN && !credentials?.accessTokens?.[backend])
    out.push({
      check: "backend",
      problem: `no access token for ${backend}`,
      fix: `pulumi login ${backend}, or export PULUMI_ACCESS_TOKEN`,
    });
  const provider = file.secretsprovider;
  const passphrase =
    provider === "passphrase" ||
    (provider === undefined && (file.encryptionsalt !== undefined || (backend !== undefined && !cloud)));
  if (!passphrase) return out;
  const pfile = env.PULUMI_CONFIG_PASSPHRASE_FILE;
  if (env.PULUMI_CONFIG_PASSPHRASE === undefined && !pfile)
    out.push({
      check: "backend",
      problem:
        "the stack's secrets are encrypted with a passphrase, and neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set",
      fix: "export PULUMI_CONFIG_PASSPHRASE_FILE=<file holding the passphrase> (or PULUMI_CONFIG_PASSPHRASE)",
    });
  else if (env.PULUMI_CONFIG_PASSPHRASE === undefined && pfile && !fileExists(pfile))
    out.push({
      check: "backend",
      problem: `PULUMI_CONFIG_PASSPHRASE_FILE names ${pfile}, which does not exist`,
      fix: "point PULUMI_CONFIG_PASSPHRASE_FILE at the file holding the stack's passphrase",
    });
  return out;
}

/** One line per finding: what, then how to fix it. */
export function formatFinding(f: Finding): string {
  return `${f.check}: ${f.problem} — fix: ${f.fix}`;
}
