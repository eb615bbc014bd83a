/**
 * The planner: from catalog + stack settings, which images this zone ships, the content hash of each artifact
 * and why it would rebuild. Pure functions; the Pulumi program and the CLI both call them.
 */
import { osBase, withOverrides, type Catalog, type CatalogOverrides } from "../../images";
import type { Architecture, Release, Step } from "../../images/schema";
import { canonicalJson, sha256Hex } from "./canonical";
import { scsMetadata, type ScsMetadata } from "./scs";
import type { StackSettings } from "./settings";
import { retiredBy } from "./end-of-life";
import { upstreamLocation } from "./upstream-url";
import { regionOf, type Zone } from "./zones";

/**
 * Bump when the build tooling changes what it writes into an artifact for the same inputs, so every image
 * rebuilds once. Never bump for refactors that keep artifacts identical.
 */
export const BUILDER_REVISION = 2;

/** Everything an artifact's bytes depend on. Equal inputs ⇒ equal content hash ⇒ nothing rebuilds. */
export interface HashInputs {
  release: string;
  arch: Architecture;
  /** The OS release an app layers on; absent for OS releases (their hashes predate apps). */
  base?: string;
  /**
   * An app's base artifact, by its content hash: the app is built on that artifact, so any rebuild of the base
   * (whatever its cause) rebuilds the app. Absent for OS releases.
   */
  baseContentHash?: string;
  upstream: { image: string; serial: string; checksum: string | null };
  /** The OS recipe; for an app, its base's recipe. */
  recipe: Step[];
  /** The app's own steps, layered on `recipe`. */
  appRecipe: Step[] | null;
  ecosystemVersion: string;
  /**
   * The pinned key of the scaleway-ecosystem repository, which the image trusts for its updates; absent when none
   * is pinned (so hashes of stacks without one are unchanged).
   */
  ecosystemKeyFingerprint?: string;
  releaseEpoch: string;
  securityEpoch: number;
  builderRevision: number;
}

export interface PlannedImage {
  release: Release;
  arch: Architecture;
  zone: Zone;
  region: string;
  /** Component name; child names derive from it and never change once shipped. */
  name: string;
  /** The Instance image's display name. */
  imageName: string;
  hashInputs: HashInputs;
  contentHash: string;
  /** Object key in the regional bucket: content-addressed, so every zone of a region shares one upload. */
  artifactKey: string;
  scs: ScsMetadata;
  /** The stack's catalog overrides that concern this image; the build Command passes them to the CLI. */
  overrides: CatalogOverrides;
}

/**
 * The test Instance's name, which Scaleway also makes its hostname: DNS-safe (no `_` from `x86_64`), or the
 * guest cannot take it and the hostname check fails.
 */
export function testServerName(plan: Pick<PlannedImage, "name" | "contentHash">): string {
  return `test-${plan.name.replace(/[^a-z0-9-]/g, "-")}-${plan.contentHash.slice(0, 8)}`;
}

/** Environment variables that hand an image's catalog overrides to the CLI (none when there are none). */
export function overridesEnvironment(o: CatalogOverrides): Record<string, string> {
  return {
    ...(Object.keys(o.appBases ?? {}).length ? { FACTORY_APP_BASES: JSON.stringify(o.appBases) } : {}),
    ...(Object.keys(o.sourceOverrides ?? {}).length
      ? { FACTORY_SOURCE_OVERRIDES: JSON.stringify(o.sourceOverrides) }
      : {}),
    ...(Object.keys(o.upstreamSignatures ?? {}).length
      ? { FACTORY_UPSTREAM_SIGNATURES: JSON.stringify(o.upstreamSignatures) }
      : {}),
  };
}

/** The stack's overrides that change what `release` (as published) builds. */
function overridesFor(published: Catalog, settings: StackSettings, release: Release): CatalogOverrides {
  const base = release.kind === "app" ? settings.appBases[release.id] : undefined;
  const os = base ? published.byId.get(base)! : osBase(published, release);
  const downloads = new Set(
    [...os.recipe, ...(release.kind === "app" ? release.recipe : [])].flatMap((s) =>
      s.op === "fetch-file" ? [s.url] : [],
    ),
  );
  const sources = Object.entries(settings.sourceOverrides).filter(([url]) => downloads.has(url));
  const signature = settings.upstreamSignatures[os.id];
  return {
    ...(base ? { appBases: { [release.id]: base } } : {}),
    ...(sources.length ? { sourceOverrides: Object.fromEntries(sources) } : {}),
    ...(signature ? { upstreamSignatures: { [os.id]: signature } } : {}),
  };
}

/** The highest security rebuild counter that applies to a release (`*:n` or `<id>:n`). */
export function securityEpoch(releaseId: string, rules: readonly string[]): number {
  let epoch = 0;
  for (const rule of rules) {
    const [id, n] = rule.split(":");
    if (id === "*" || id === releaseId) epoch = Math.max(epoch, Number(n));
  }
  return epoch;
}

/** The stack dials that feed every content hash. */
export interface BuildDials {
  ecosystemVersion: string;
  /** The ecosystem repository's pinned key: installed in the guest, so it changes the image bytes. */
  ecosystemKeyFingerprint?: string;
  releaseEpoch: string;
  securityEpoch: number;
  /**
   * An app's base's own security rebuild counter (`securityEpoch` is the larger of the app's and the base's), for
   * the base's content hash. The CLI is not given it: `withBaseEpoch` finds it from the planned hash.
   */
  baseSecurityEpoch?: number;
}

export function dialsFor(release: Release, catalog: Catalog, settings: StackSettings): BuildDials {
  const os = osBase(catalog, release);
  return {
    ecosystemVersion: settings.ecosystemVersion,
    ...(settings.ecosystemKeyFingerprint ? { ecosystemKeyFingerprint: settings.ecosystemKeyFingerprint } : {}),
    releaseEpoch: settings.releaseEpoch,
    // An app inherits its base's security rebuilds.
    securityEpoch: Math.max(
      securityEpoch(release.id, settings.securityRebuilds),
      securityEpoch(os.id, settings.securityRebuilds),
    ),
    ...(release.kind === "app" ? { baseSecurityEpoch: securityEpoch(os.id, settings.securityRebuilds) } : {}),
  };
}

/** The dials of an app's base: the same stack dials with the base's own security counter. */
export function baseDials(dials: BuildDials): BuildDials {
  const { baseSecurityEpoch, ...rest } = dials;
  return { ...rest, securityEpoch: baseSecurityEpoch ?? dials.securityEpoch };
}

/**
 * The dials with an app's base security counter filled in: the one counter in 0..securityEpoch whose content hash
 * is the planned one (the counter is not handed to the CLI; the hash pins it). Unchanged for OS releases, when
 * it is known, or when no counter gives the planned hash (the build then refuses with its mismatch message).
 */
export function withBaseEpoch(
  catalog: Catalog,
  release: Release,
  arch: Architecture,
  dials: BuildDials,
  planned: string | undefined,
): BuildDials {
  if (release.kind !== "app" || dials.baseSecurityEpoch !== undefined || !planned) return dials;
  for (let n = dials.securityEpoch; n >= 0; n--) {
    const candidate = { ...dials, baseSecurityEpoch: n };
    if (contentHash(hashInputs(catalog, release, arch, candidate)) === planned) return candidate;
  }
  return dials;
}

export function hashInputs(catalog: Catalog, release: Release, arch: Architecture, dials: BuildDials): HashInputs {
  const os = osBase(catalog, release);
  const where = upstreamLocation(os, arch);
  return {
    release: release.id,
    arch,
    ...(release.kind === "app"
      ? { base: os.id, baseContentHash: contentHash(hashInputs(catalog, os, arch, baseDials(dials))) }
      : {}),
    upstream: { image: where.image, serial: where.serial, checksum: where.checksum ?? null },
    recipe: os.recipe,
    appRecipe: release.kind === "app" ? release.recipe : null,
    ecosystemVersion: dials.ecosystemVersion,
    ...(dials.ecosystemKeyFingerprint ? { ecosystemKeyFingerprint: dials.ecosystemKeyFingerprint } : {}),
    releaseEpoch: dials.releaseEpoch,
    securityEpoch: dials.securityEpoch,
    builderRevision: BUILDER_REVISION,
  };
}

export function contentHash(inputs: HashInputs): string {
  return sha256Hex(canonicalJson(inputs));
}

export function artifactKey(releaseId: string, arch: Architecture, hash: string): string {
  return `images/${releaseId}/${arch}/${hash}.qcow2`;
}

/** The releases a stack selects, in catalog order, each for the architectures both sides have. */
export function selectReleases(catalog: Catalog, settings: StackSettings): { release: Release; arch: Architecture }[] {
  const wanted = settings.images.includes("*") ? null : new Set(settings.images);
  return catalog.releases
    .filter((r) => wanted === null || wanted.has(r.id))
    .filter((r) => retiredBy(catalog, r, settings) === null)
    .flatMap((release) =>
      settings.architectures.filter((arch) => release.architectures.includes(arch)).map((arch) => ({ release, arch })),
    );
}

export function planStack(published: Catalog, settings: StackSettings): PlannedImage[] {
  const catalog = withOverrides(published, settings);
  return selectReleases(catalog, settings).map(({ release, arch }) => {
    const inputs = hashInputs(catalog, release, arch, dialsFor(release, catalog, settings));
    const hash = contentHash(inputs);
    return {
      release,
      arch,
      zone: settings.zone,
      region: regionOf(settings.zone),
      name: `${release.id}-${arch}`,
      imageName: `${release.title} (${arch})`,
      hashInputs: inputs,
      contentHash: hash,
      artifactKey: artifactKey(release.id, arch, hash),
      scs: scsMetadata(catalog, release, arch),
      overrides: overridesFor(published, settings, published.byId.get(release.id)!),
    };
  });
}

/** Why an artifact with `next` inputs differs from the one built from `previous` (none: it does not rebuild). */
export function rebuildReasons(previous: HashInputs | undefined, next: HashInputs): string[] {
  if (!previous) return ["new image in this zone"];
  const reasons: string[] = [];
  // The cause comes after, when the app's inputs name it (a new upstream build, recipe, epoch of the base).
  if (
    next.base &&
    previous.base === next.base &&
    previous.baseContentHash &&
    previous.baseContentHash !== next.baseContentHash
  )
    reasons.push(`base ${next.base} rebuilt`);
  if (previous.base !== next.base) reasons.push(`new base: ${previous.base ?? "none"} → ${next.base ?? "none"}`);
  const p = previous.upstream;
  const n = next.upstream;
  if (p.serial !== n.serial || p.image !== n.image)
    reasons.push(`new upstream build${next.base ? ` of ${next.base}` : ""}: ${p.serial} → ${n.serial}`);
  else if (p.checksum !== n.checksum)
    reasons.push(`upstream checksum pinned: ${p.checksum ?? "none"} → ${n.checksum ?? "none"}`);
  if (canonicalJson(previous.recipe) !== canonicalJson(next.recipe))
    reasons.push(next.appRecipe ? "base recipe changed" : "recipe changed");
  if (canonicalJson(previous.appRecipe) !== canonicalJson(next.appRecipe)) reasons.push("app recipe changed");
  if (previous.ecosystemVersion !== next.ecosystemVersion)
    reasons.push(`new scaleway-ecosystem: ${previous.ecosystemVersion} → ${next.ecosystemVersion}`);
  if (previous.ecosystemKeyFingerprint !== next.ecosystemKeyFingerprint)
    reasons.push(
      `scaleway-ecosystem signing key: ${previous.ecosystemKeyFingerprint ?? "none"} → ${next.ecosystemKeyFingerprint ?? "none"}`,
    );
  if (previous.releaseEpoch !== next.releaseEpoch)
    reasons.push(`quarterly release: ${previous.releaseEpoch} → ${next.releaseEpoch}`);
  if (previous.securityEpoch !== next.securityEpoch) reasons.push(`security rebuild #${next.securityEpoch}`);
  if (previous.builderRevision !== next.builderRevision)
    reasons.push(`build tooling revision ${previous.builderRevision} → ${next.builderRevision}`);
  return reasons;
}

/**
 * Which planned image each app waits for: its base's, in the same plan with the content hash its inputs name.
 * A scheduler running builds at once starts an app after that base's publish finished, so the app is layered
 * on the base's artifact instead of customising the upstream again; an app whose base is not planned waits for
 * nothing (it builds from the upstream).
 */
export function layerDependencies(plans: readonly PlannedImage[]): Map<string, string> {
  const byHash = new Map(plans.map((p) => [`${p.release.id}/${p.arch}/${p.contentHash}`, p.name]));
  const deps = new Map<string, string>();
  for (const p of plans) {
    const { base, baseContentHash } = p.hashInputs;
    const dep = base && baseContentHash ? byHash.get(`${base}/${p.arch}/${baseContentHash}`) : undefined;
    if (dep) deps.set(p.name, dep);
  }
  return deps;
}
