/**
 * A stack's dial settings, parsed once at the program's boundary. Stack files hold only these: zone, images,
 * bucket, test commercial types, release epoch and the other triggers.
 */
import { z } from "zod";
import { overrideProblems, type Catalog } from "../../images";
import { retiredBy } from "./end-of-life";
import { Architecture, Fingerprint, Signature } from "../../images/schema";
import { keyId, publicKeyPem, releasePrivateKey, releasePublicKey } from "./signing";
import { missingCapabilities, regionOf, REGIONS, ZONES, type Zone } from "./zones";
import { BuildHostList, BuildHostPrivateKey } from "./build-hosts";

/** The Pulumi project name: every config key is `image-factory:<key>`. */
export const PROJECT = "image-factory";

/** InstantApps layered on another OS release in this stack: `{ app-wordpress: debian-12 }` (the CLI's form). */
export const AppBases = z.record(z.string().min(1), z.string().min(1));
/** Pinned downloads replaced in this stack: official URL → `{ url?, sha256 }` of the file to use instead. */
export const SourceOverrides = z.record(
  z.url(),
  z.strictObject({
    url: z.url().optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits (sha256)"),
  }),
);

/** Pulumi types config as strings, numbers, booleans and arrays, so the stack files write the maps as lists. */
const AppBaseList = z
  .array(z.string().regex(/^[a-z][a-z0-9.-]*=[a-z][a-z0-9.-]*$/, "expected <app-id>=<os-release-id>"))
  .default([])
  .transform((entries) => Object.fromEntries(entries.map((e) => e.split("=", 2) as [string, string])));
const SourceOverrideList = z
  .array(
    z
      .string()
      .regex(
        /^https?:\/\/\S+ sha256:[0-9a-f]{64}( https?:\/\/\S+)?$/,
        "expected <official url> sha256:<64 hex digits> [<replacement url>]",
      ),
  )
  .default([])
  .transform((entries) =>
    Object.fromEntries(
      entries.map((e) => {
        const [url, digest, replacement] = e.split(" ") as [string, string, string | undefined];
        return [url, { sha256: digest.slice("sha256:".length), ...(replacement ? { url: replacement } : {}) }];
      }),
    ),
  );

/** A duration as Pulumi's customTimeouts write it (`90m`, `2h`, `45s`); the CLI reads FACTORY_TIMEOUT likewise. */
export const Duration = z.string().regex(/^\d+(s|m|h)$/, "expected a duration such as 90m, 2h or 45s");
/** Upstream signatures replaced in this stack: release id → the signature spec (the CLI's form). */
export const UpstreamSignatures = z.record(z.string().min(1), Signature);
const UpstreamSignatureList = z
  .array(
    z
      .string()
      .regex(
        /^[a-z][a-z0-9.-]* (detached|clearsigned) https:\/\/\S+ https:\/\/\S+ [0-9A-F]{40}$/,
        "expected <release-id> <detached|clearsigned> <signature url> <key url> <40-hex fingerprint>",
      ),
  )
  .default([])
  .transform((entries): Record<string, z.input<typeof Signature>> =>
    Object.fromEntries(
      entries.map((e) => {
        const [id, kind, url, keyUrl, fingerprint] = e.split(" ") as [
          string,
          "detached" | "clearsigned",
          string,
          string,
          string,
        ];
        // The stack file is the citation of an override's fingerprint: the key URL says where the key lives.
        return [id, { url, kind, fingerprint, keyUrl, source: keyUrl }];
      }),
    ),
  );

// ---- Release signing key (supply chain: builder/core/signing.ts, docs/supply-chain.md) ----------------------------
/**
 * `releaseKey`: the Ed25519 secret key (PKCS#8 PEM) that signs each artifact's provenance; a secret
 * (`pulumi config set --secret`). The program reads the secret itself with `Config.getSecret` and hands it to the
 * artifact Command as a secret; here only its shape is checked and its key id kept, so the secret text never sits
 * in the settings. Read from the stack file (the CLI), it is still encrypted: `{ secure: ... }`.
 */
const ReleaseKeySetting = z.union([
  z
    .string()
    .min(1)
    .transform((pem, ctx) => {
      try {
        return { keyId: keyId(releasePrivateKey(pem, `${PROJECT}:releaseKey`)) };
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    }),
  z.object({ secure: z.string().min(1) }).transform(() => ({ keyId: undefined })),
]);
/**
 * `releasePublicKey`: the public part (SPKI PEM, or its one-line base64 body) operators verify with
 * (`image-factory verify --stack`); when set, a `releaseKey` of another pair is refused.
 */
const ReleasePublicKeySetting = z.string().transform((text, ctx) => {
  try {
    return publicKeyPem(releasePublicKey(asPublicPem(text), `${PROJECT}:releasePublicKey`));
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});
/** The one-line form a stack file holds, wrapped back into PEM. */
export const asPublicPem = (text: string) =>
  text.includes("-----BEGIN") ? text : `-----BEGIN PUBLIC KEY-----\n${text.trim()}\n-----END PUBLIC KEY-----\n`;
/** A releaseKey whose public part is not the stack's releasePublicKey (a wrong secret pasted in). */
function releaseKeyProblems(s: { releaseKey?: { keyId?: string }; releasePublicKey?: string }): string[] {
  if (!s.releaseKey?.keyId || !s.releasePublicKey) return [];
  const expected = keyId(releasePublicKey(s.releasePublicKey));
  return s.releaseKey.keyId === expected
    ? []
    : [`${PROJECT}:releaseKey: its public part ${s.releaseKey.keyId} is not ${PROJECT}:releasePublicKey (${expected})`];
}
// ---- end of the release signing block ------------------------------------------------------------------------

const commercialType = z.string().regex(/^[A-Z0-9][A-Z0-9_-]*$/, "expected a commercial type such as DEV1-S");

export const StackSettings = z.strictObject({
  /** Environment name (`prod`, `staging`, `local`); also a tag on every resource. */
  environment: z.string().regex(/^[a-z][a-z0-9-]*$/, "expected a lowercase environment name"),
  zone: z.enum(ZONES),
  /** Release ids to ship in this zone, or `["*"]` for the whole catalog. */
  images: z.array(z.string().min(1)).min(1),
  architectures: z.array(Architecture).min(1).default(["x86_64"]),
  /** Object Storage bucket in the zone's region that holds the artifacts to import. */
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "expected an S3 bucket name"),
  /** Commercial type of the x86_64 test Instance. */
  testCommercialType: commercialType.default("DEV1-S"),
  /** Commercial type of the arm64 test Instance. */
  testCommercialTypeArm64: commercialType.default("COPARM1-2C-8G"),
  /** The quarterly release this stack ships (`2026Q4`): bumping it rebuilds every image. */
  releaseEpoch: z.string().regex(/^\d{4}Q[1-4]$/, "expected a quarter such as 2026Q4"),
  /** Security rebuilds: `<id>:<n>` rebuilds one image, `*:<n>` all; bump n for the next fix. */
  securityRebuilds: z
    .array(z.string().regex(/^(\*|[a-z][a-z0-9.-]*):[0-9]+$/, "expected <image-id>:<n> or *:<n>"))
    .default([]),
  /** The scaleway-ecosystem package version images get; a new version rebuilds every image. */
  ecosystemVersion: z.string().regex(/^[0-9][0-9A-Za-z.+~-]*$/, "expected a package version"),
  /** Package repository that serves scaleway-ecosystem (apt/dnf/pacman layout under it). */
  ecosystemRepository: z.url(),
  /** Fetch upstream images through this mirror (`<mirror>/<host>/<path>`); metadata still names upstream. */
  mirror: z.url().optional(),
  /** S3 endpoint override; by default the zone region's Object Storage endpoint. */
  s3Endpoint: z.url().optional(),
  /** Scaleway API endpoint override for the test runner (the emulator); by default the public API. */
  apiUrl: z.url().optional(),
  /** Boot a test Instance and run the test battery before release. */
  runTests: z.boolean().default(true),
  /**
   * Keep a replaced image (and its snapshot) for as long as its SCS uuid_validity promises, renamed and hidden, and
   * delete it after: Pulumi forgets it on replacement, the stack's retention Command looks after it. Off, a rebuild
   * deletes the image it replaces (test stacks).
   */
  keepPreviousVersions: z.boolean().default(true),
  /** Days after upstream end of life before an image is deprecated. */
  deprecationGraceDays: z.number().int().nonnegative().default(90),
  /** Scaleway Project that owns the images; the provider's default when unset. */
  projectId: z.uuid().optional(),
  /** InstantApps layered on another OS release than the catalog's base: `app-wordpress=debian-12`. */
  appBases: AppBaseList.pipe(AppBases),
  /**
   * Pinned downloads replaced in this stack (air-gapped mirrors, test stand-ins): `<official url> sha256:<hex>
   * [<replacement url>]`. They change the recipe, so the content hash.
   */
  sourceOverrides: SourceOverrideList.pipe(SourceOverrides),
  /**
   * How long the block snapshot import may take: the provider waits 5 minutes by default, and its own recorded
   * test took about 3.5 minutes to import 1 GiB; our artifacts are larger.
   */
  snapshotImportTimeout: Duration.default("60m"),
  /** How long creating, updating or deleting the Instance image may take. */
  imageTimeout: Duration.default("20m"),
  /** How long creating or updating the test Instance may take. */
  testServerTimeout: Duration.default("20m"),
  /** How long deleting the test Instance may take: the provider powers it on first, which a broken image can stall. */
  testServerDeleteTimeout: Duration.default("30m"),
  /** How long `publish` may run (fetch, customise, upload); the CLI bounds itself by it (FACTORY_TIMEOUT). */
  publishTimeout: Duration.default("2h"),
  /** How long the test battery may run (eleven boots); the CLI bounds itself by it. */
  testsTimeout: Duration.default("2h"),
  /** How long the stack's retention Command may run. */
  retentionTimeout: Duration.default("30m"),
  /**
   * Upstream checksum files verified in this stack with another signature than the catalog's: `<release-id>
   * <detached|clearsigned> <signature url> <key url> <fingerprint>` (the local stack's fixture, signed by a
   * committed test key). Trust only; no content hash changes.
   */
  upstreamSignatures: UpstreamSignatureList.pipe(UpstreamSignatures),
  /**
   * Primary key fingerprint (40 hex) of the key that signs the scaleway-ecosystem repository; the build fetches the
   * key from the repository, checks it and installs it in the guest. Required for a repository off loopback.
   */
  ecosystemKeyFingerprint: Fingerprint.optional(),
  // Release signing (see the block at the end of this file).
  releaseKey: ReleaseKeySetting.optional(),
  releasePublicKey: ReleasePublicKeySetting.optional(),

  // --- build hosts (builder/core/build-hosts.ts) ---
  /**
   * Where builds run: `<arch> local` (this machine) or `<arch> <user>@<address>[:<port>] <host public key>`, one
   * per line; each build goes to one host of its architecture, picked by its content hash. Only `x86_64 local`
   * by default: a stack with arm64 images and no arm64 host fails at preview.
   */
  buildHosts: BuildHostList,
  /** The SSH private key for the build hosts' users; a secret. Required when a build host is remote. */
  buildHostPrivateKey: BuildHostPrivateKey.optional(),
  // --- end of build hosts ---
  /**
   * An API key for the artifact Command alone (publish and unpublish reach only Object Storage), so the Scaleway
   * API key, which can create and delete Instances, never travels to a build host. Required when a build host is
   * remote; set both or neither (docs/production.md#least-privilege).
   */
  objectStorageAccessKey: z.string().min(1).optional(),
  /** Its secret key; a secret. */
  objectStorageSecretKey: z.union([z.string().min(1), z.strictObject({ secure: z.string().min(1) })]).optional(),
});
export type StackSettings = z.infer<typeof StackSettings>;

/** The test Instance's commercial type for an architecture. */
export function testCommercialType(settings: StackSettings, arch: Architecture): string {
  return arch === "arm64" ? settings.testCommercialTypeArm64 : settings.testCommercialType;
}

export class StackConfigError extends Error {
  constructor(
    stack: string,
    /** Each problem on its own, naming the key (doctor lists them one per line). */
    readonly problems: string[],
  ) {
    super(`stack ${stack}: invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "StackConfigError";
  }
}

/** Pulumi hands structured config over as JSON strings; scalars stay strings unless they parse as JSON. */
function decode(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Config keys the providers this program uses read themselves: `scaleway:zone` is the provider's, not ours. */
export const PROVIDER_KEYS: Readonly<Record<string, readonly string[]>> = {
  scaleway: ["accessKey", "secretKey", "projectId", "organizationId", "region", "zone", "apiUrl", "profile"],
};

const squash = (ns: string) => ns.toLowerCase().replace(/[^a-z0-9]/g, "");

/**
 * Keys that belong in `image-factory:` but sit in another namespace: one spelled like the project
 * (`imagefactory:bucket`, `image_factory:zone`), or one of this project's setting names under a namespace whose
 * provider does not read it (`scaleway:bucket`). Pulumi would hand them to nobody, so the setting would look unset.
 */
export function misplacedKeys(config: Record<string, string>): { key: string; name: string }[] {
  const ours = new Set(Object.keys(StackSettings.shape));
  return Object.keys(config)
    .map((key) => {
      const [ns, name] = key.split(":", 2) as [string, string | undefined];
      return { key, ns, name: name ?? "" };
    })
    .filter(
      ({ ns, name }) =>
        name &&
        ns !== PROJECT &&
        (squash(ns) === squash(PROJECT) || (ours.has(name) && !PROVIDER_KEYS[ns]?.includes(name))),
    )
    .map(({ key, name }) => ({ key, name }));
}

/**
 * Region problems a stack file shows without any call: an Object Storage endpoint of another region than the
 * zone's (the artifact bucket must be in the zone's region: the Block API imports from it there).
 */
export function regionProblems(settings: Pick<StackSettings, "zone" | "s3Endpoint">): string[] {
  const region = regionOf(settings.zone);
  const named = settings.s3Endpoint && scalewayS3Region(settings.s3Endpoint);
  return named && named !== region
    ? [
        `${PROJECT}:s3Endpoint: ${settings.s3Endpoint} is Object Storage in ${named}, but zone ${settings.zone} is in ${region}: the bucket must be in ${region} (https://s3.${region}.scw.cloud, the default when unset)`,
      ]
    : [];
}

/** The region a Scaleway Object Storage URL names (`https://s3.fr-par.scw.cloud`, `https://b.s3.nl-ams.scw.cloud`). */
export function scalewayS3Region(url: string): string | undefined {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return undefined;
  }
  return /(?:^|\.)s3\.([a-z]{2}-[a-z]{3})\.scw\.cloud$/.exec(host)?.[1];
}

/** A zone the pipeline cannot run in fails here, at preview, instead of halfway through `up`. */
export function zoneProblems(zone: Zone): string[] {
  const missing = missingCapabilities(zone);
  return missing.length
    ? [
        `${PROJECT}:zone: ${zone} has no ${missing.join(" and no ")}, which every image needs (artifact → block snapshot → Instance image); use a zone in ${REGIONS.filter((r) => r !== regionOf(zone)).join(", ")}`,
      ]
    : [];
}

/**
 * Parses `image-factory:*` keys (as `pulumi.runtime.allConfig()` returns them) into settings, checking image ids
 * against the catalog. Unknown keys are errors: a typo must not silently fall back to a default.
 */
export function parseStackSettings(stack: string, config: Record<string, string>, catalog: Catalog): StackSettings {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    const [ns, name] = key.split(":", 2);
    if (ns !== PROJECT || !name) continue;
    // Pulumi keeps strings that look like other types as strings; ids such as "12" stay what zod expects.
    raw[name] =
      name === "releaseEpoch" || name === "ecosystemVersion" || name === "ecosystemKeyFingerprint"
        ? value
        : decode(value);
  }
  const misplaced = misplacedKeys(config);
  const misplacedProblems = misplaced.map(
    ({ key, name }) =>
      `${key}: this project's settings are in the ${PROJECT} namespace: write it as ${PROJECT}:${name}`,
  );
  const parsed = StackSettings.safeParse(raw);
  if (!parsed.success) {
    const elsewhere = (name: string) =>
      Object.keys(config).filter((k) => k !== `${PROJECT}:${name}` && k.endsWith(`:${name}`));
    throw new StackConfigError(stack, [
      ...misplacedProblems,
      ...parsed.error.issues
        // A required key that sits in the wrong namespace is reported once, as misplaced.
        .filter(
          (i) =>
            !(
              i.path.length === 1 &&
              raw[String(i.path[0])] === undefined &&
              misplaced.some((m) => m.name === i.path[0])
            ),
        )
        .map((i) => {
          if (i.code === "unrecognized_keys")
            return `unknown config keys: ${i.keys.map((k) => `${PROJECT}:${k}`).join(", ")}`;
          const name = String(i.path[0] ?? "");
          const also = i.path.length === 1 && raw[name] === undefined ? elsewhere(name) : [];
          return `${PROJECT}:${i.path.join(".") || "(root)"}: ${i.message}${also.length ? ` (${also.join(", ")} is another provider's setting, not this one)` : ""}`;
        }),
    ]);
  }
  const settings = parsed.data;
  const problems: string[] = [
    ...misplacedProblems,
    ...zoneProblems(settings.zone),
    ...regionProblems(settings),
    ...releaseKeyProblems(settings),
  ];
  const wildcard = settings.images.includes("*");
  if (wildcard && settings.images.length > 1) problems.push(`${PROJECT}:images: "*" cannot be combined with ids`);
  for (const id of settings.images) {
    const release = catalog.byId.get(id);
    if (id !== "*" && !release) problems.push(`${PROJECT}:images: no release "${id}" in the catalog`);
    const retired = release && retiredBy(catalog, release, settings);
    if (retired)
      problems.push(
        `${PROJECT}:images: ${id} was deprecated on ${retired} (end of life + ${settings.deprecationGraceDays} days), before release epoch ${settings.releaseEpoch} began: remove it from this stack`,
      );
  }
  for (const rule of settings.securityRebuilds) {
    const id = rule.split(":")[0]!;
    if (id !== "*" && !catalog.byId.has(id))
      problems.push(`${PROJECT}:securityRebuilds: no release "${id}" in the catalog`);
  }
  problems.push(...overrideProblems(catalog, settings).map((p) => `${PROJECT}:${p}`));
  if (problems.length) throw new StackConfigError(stack, problems);
  return settings;
}
