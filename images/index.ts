/**
 * The catalog: every catalog file's releases, validated once when loaded. A validation error names the file, the
 * entry and the field, and nothing downstream runs on a bad catalog.
 */
import { z } from "zod";
import apps from "./apps";
import archlinux from "./archlinux";
import debian from "./debian";
import { almalinux, centos, rockylinux } from "./rhel";
import { CatalogFile, type OsRelease, type Release, type Signature, type Step } from "./schema";
import ubuntu from "./ubuntu";

export * from "./schema";
export { pinProblems, type PinProblem, type PinProblemKind } from "./trust";

/** One catalog file as written: its path (for error messages) and its raw entries. */
export interface CatalogSource {
  file: string;
  releases: unknown;
}

export const CATALOG_SOURCES: CatalogSource[] = [
  { file: "images/ubuntu.ts", releases: ubuntu },
  { file: "images/debian.ts", releases: debian },
  { file: "images/rhel.ts (almalinux)", releases: almalinux },
  { file: "images/rhel.ts (rockylinux)", releases: rockylinux },
  { file: "images/rhel.ts (centos)", releases: centos },
  { file: "images/archlinux.ts", releases: archlinux },
  { file: "images/apps.ts", releases: apps },
];

export class CatalogError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid image catalog:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "CatalogError";
  }
}

export interface Catalog {
  releases: Release[];
  byId: ReadonlyMap<string, Release>;
}

function entryName(raw: unknown, index: number): string {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === "string" ? `entry ${index} (${id})` : `entry ${index}`;
}

function zodProblems(file: string, raw: unknown, error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const [index, ...field] = issue.path;
    const entries = Array.isArray(raw) ? raw : [];
    const where = typeof index === "number" ? entryName(entries[index], index) : "file";
    return `${file}: ${where}: ${field.length ? field.join(".") : "(entry)"}: ${issue.message}`;
  });
}

/** Rules that span fields or entries, which the per-entry schema cannot state. */
function crossCheck(located: { file: string; release: Release }[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  const claim = (key: string, file: string, what: string) => {
    const other = seen.get(key);
    if (other) problems.push(`${file}: ${what} is already used in ${other}`);
    else seen.set(key, file);
  };
  const byId = new Map(located.map(({ release }) => [release.id, release]));
  for (const { file, release: r } of located) {
    const at = `${file}: ${r.id}`;
    claim(`id:${r.id}`, file, `id "${r.id}"`);
    claim(`label:${r.label}`, file, `label "${r.label}" (${r.id})`);
    if (r.eol !== null && r.eol <= r.released)
      problems.push(`${at}: eol: ${r.eol} is not after released ${r.released}`);
    if (new Set(r.architectures).size !== r.architectures.length) problems.push(`${at}: architectures: duplicates`);
    if (r.kind === "os") {
      for (const arch of r.architectures) {
        if (!r.upstream.pins[arch])
          problems.push(`${at}: upstream.pins.${arch}: missing (architecture ${arch} is declared)`);
        if (!r.upstream.archNames[arch]) problems.push(`${at}: upstream.archNames.${arch}: missing`);
      }
      for (const arch of Object.keys(r.upstream.pins)) {
        if (!r.architectures.includes(arch as never))
          problems.push(`${at}: upstream.pins.${arch}: architecture not declared`);
      }
      const algo = r.upstream.checksumFormat === "sha512sums" ? 128 : 64;
      for (const [arch, pin] of Object.entries(r.upstream.pins)) {
        if (pin?.checksum && pin.checksum.length !== algo)
          problems.push(`${at}: upstream.pins.${arch}.checksum: length does not match ${r.upstream.checksumFormat}`);
      }
    } else {
      const base = byId.get(r.base);
      if (!base) problems.push(`${at}: base: no release "${r.base}" in the catalog`);
      else if (base.kind !== "os") problems.push(`${at}: base: "${r.base}" is an app, not an OS release`);
      else
        for (const arch of r.architectures)
          if (!base.architectures.includes(arch)) problems.push(`${at}: architectures: base ${base.id} has no ${arch}`);
    }
  }
  return problems;
}

/** Validates catalog sources; throws a CatalogError listing every problem, or returns the catalog. */
export function parseCatalog(sources: CatalogSource[]): Catalog {
  const problems: string[] = [];
  const located: { file: string; release: Release }[] = [];
  for (const { file, releases } of sources) {
    const parsed = CatalogFile.safeParse(releases);
    if (!parsed.success) problems.push(...zodProblems(file, releases, parsed.error));
    else located.push(...parsed.data.map((release) => ({ file, release })));
  }
  if (problems.length === 0) problems.push(...crossCheck(located));
  if (problems.length > 0) throw new CatalogError(problems);
  const releases = located.map(({ release }) => release);
  return { releases, byId: new Map(releases.map((r) => [r.id, r])) };
}

let cached: Catalog | undefined;
/** The project's catalog, validated on first use. */
export function loadCatalog(): Catalog {
  cached ??= parseCatalog(CATALOG_SOURCES);
  return cached;
}

/** The OS release an app layers on, or the release itself. */
export function osBase(catalog: Catalog, release: Release): OsRelease {
  if (release.kind === "os") return release;
  const base = catalog.byId.get(release.base);
  if (!base || base.kind !== "os")
    throw new CatalogError([`${release.id}: base "${release.base}" is not an OS release`]);
  return base;
}

/**
 * What one stack changes about the catalog, for environments that cannot use it as published: InstantApps
 * layered on another OS release (the local stack's Debian fixture stands in for Ubuntu), and pinned downloads
 * replaced by another file with its own digest (an air-gapped mirror's rebuild, a test's stand-in). Both change
 * the recipe the content hash covers, so they show up in a plan like any other change.
 */
export interface CatalogOverrides {
  /** App id → id of the OS release it layers on in this stack. */
  appBases?: Record<string, string>;
  /** Official URL of a `fetch-file` step → the file to fetch instead (default: the same URL) and its sha256. */
  sourceOverrides?: Record<string, { url?: string; sha256: string }>;
  /**
   * OS release id → the signature its upstream checksum file is verified with in this stack (the local stack's
   * fixture, signed by a committed test key). Trust only: it changes no image byte, so no content hash.
   */
  upstreamSignatures?: Record<string, Signature>;
}

/** Every way `overrides` does not fit `catalog`, each naming the setting and the entry. */
export function overrideProblems(catalog: Catalog, overrides: CatalogOverrides): string[] {
  const problems: string[] = [];
  for (const [app, base] of Object.entries(overrides.appBases ?? {})) {
    const r = catalog.byId.get(app);
    const b = catalog.byId.get(base);
    if (!r) problems.push(`appBases.${app}: no release "${app}" in the catalog`);
    else if (r.kind !== "app") problems.push(`appBases.${app}: "${app}" is an OS release, not an app`);
    if (!b) problems.push(`appBases.${app}: no release "${base}" in the catalog`);
    else if (b.kind !== "os") problems.push(`appBases.${app}: "${base}" is an app, not an OS release`);
    else if (r?.kind === "app")
      for (const arch of r.architectures)
        if (!b.architectures.includes(arch)) problems.push(`appBases.${app}: ${base} has no ${arch}`);
  }
  const downloads = new Set(
    catalog.releases.flatMap((r) => r.recipe.flatMap((s) => (s.op === "fetch-file" ? [s.url] : []))),
  );
  for (const url of Object.keys(overrides.sourceOverrides ?? {}))
    if (!downloads.has(url)) problems.push(`sourceOverrides: no fetch-file step downloads ${url}`);
  for (const id of Object.keys(overrides.upstreamSignatures ?? {})) {
    const r = catalog.byId.get(id);
    if (!r) problems.push(`upstreamSignatures.${id}: no release "${id}" in the catalog`);
    else if (r.kind !== "os") problems.push(`upstreamSignatures.${id}: "${id}" is an app; sign its base OS release`);
  }
  return problems;
}

/** The catalog as one stack sees it; throws a CatalogError when an override does not fit. */
export function withOverrides(catalog: Catalog, overrides: CatalogOverrides): Catalog {
  const problems = overrideProblems(catalog, overrides);
  if (problems.length) throw new CatalogError(problems);
  const sources = overrides.sourceOverrides ?? {};
  const bases = overrides.appBases ?? {};
  const signatures = overrides.upstreamSignatures ?? {};
  if (Object.keys(sources).length === 0 && Object.keys(bases).length === 0 && Object.keys(signatures).length === 0)
    return catalog;
  const replaceDownloads = (steps: Step[]): Step[] =>
    steps.map((s) => {
      const o = s.op === "fetch-file" ? sources[s.url] : undefined;
      return s.op === "fetch-file" && o ? { op: "fetch-file", url: o.url ?? s.url, sha256: o.sha256, path: s.path } : s;
    });
  const releases = catalog.releases.map((r): Release => {
    const recipe = replaceDownloads(r.recipe);
    if (r.kind === "app") return { ...r, base: bases[r.id] ?? r.base, recipe };
    const signature = signatures[r.id];
    return signature ? { ...r, recipe, upstream: { ...r.upstream, signature } } : { ...r, recipe };
  });
  return { releases, byId: new Map(releases.map((r) => [r.id, r])) };
}
