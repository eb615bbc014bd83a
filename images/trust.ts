/**
 * What the catalog does not yet know to trust, per release and architecture: pins written without reading
 * upstream, signatures whose key fingerprint is unverified, unsigned upstreams without a pinned checksum. Pure:
 * `plan` flags these and `image-factory doctor` reports them.
 */
import type { Architecture, OsRelease, Release } from "./schema";

/** The part of the catalog (images/index.ts) read here; structural, so this module does not import the index back. */
interface Catalog {
  releases: readonly Release[];
  byId: ReadonlyMap<string, Release>;
}

export type PinProblemKind = "unverified-pin" | "unverified-signature" | "no-pinned-checksum";

export interface PinProblem {
  /** The OS release whose upstream is concerned (an app's base). */
  release: string;
  arch: Architecture;
  kind: PinProblemKind;
  /** One line: what is wrong and what to do. */
  message: string;
}

function osOf(catalog: Catalog, release: Release): OsRelease | undefined {
  if (release.kind === "os") return release;
  const base = catalog.byId.get(release.base);
  return base?.kind === "os" ? base : undefined;
}

/**
 * The trust problems of `selection` (by default every release and architecture of the catalog), once per OS
 * release and architecture, in catalog order. Apps are judged by their base. Pass a stack's catalog (with its
 * overrides) to judge what that stack builds.
 */
export function pinProblems(
  catalog: Catalog,
  selection?: readonly { release: Release; arch: Architecture }[],
): PinProblem[] {
  const wanted =
    selection ?? catalog.releases.flatMap((release) => release.architectures.map((arch) => ({ release, arch })));
  const seen = new Set<string>();
  const problems: PinProblem[] = [];
  for (const { release, arch } of wanted) {
    const os = osOf(catalog, release);
    const pin = os?.upstream.pins[arch];
    if (!os || !pin || seen.has(`${os.id}\0${arch}`)) continue;
    seen.add(`${os.id}\0${arch}`);
    const at = `${os.id} ${arch}`;
    if (pin.provenance === "unverified")
      problems.push({
        release: os.id,
        arch,
        kind: "unverified-pin",
        message: `${at}: serial ${pin.serial} was pinned without reading upstream's listing: run image-factory check-upstream --release ${os.id} --write`,
      });
    const sig = os.upstream.signature;
    if (sig?.fingerprint === "unverified")
      problems.push({
        release: os.id,
        arch,
        kind: "unverified-signature",
        message: `${at}: upstream signs its checksum file, but the key's fingerprint is unverified: pin signature.fingerprint and keyUrl (see ${sig.source}); builds fail until then`,
      });
    if (!sig && !pin.checksum)
      problems.push({
        release: os.id,
        arch,
        kind: "no-pinned-checksum",
        message: `${at}: upstream signs nothing and no checksum is pinned for ${pin.serial}: run image-factory check-upstream --release ${os.id} --write; builds fail until then`,
      });
  }
  return problems;
}
