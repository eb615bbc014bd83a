/**
 * doctor's upstream checks, against the catalog as it is today: the pinned signing keys present under
 * images/keys/, the pins' checksums, the scaleway-ecosystem repository's transport. Kept apart from the other
 * checks because pin provenance and the ecosystem repository's key fingerprint are being added to the catalog and
 * the settings: these functions are where those checks get rewired.
 */
import { osBase, withOverrides, type Architecture, type Catalog, type OsRelease } from "../images";
import { isLoopback, type Finding } from "./doctor-checks";
import { planStack } from "./plan";
import { PROJECT, type StackSettings } from "./settings";

/** The upstream images a stack downloads: each OS release (an app's base included) with its architectures. */
export function upstreamsOfStack(catalog: Catalog, settings: StackSettings): { release: OsRelease; archs: Architecture[] }[] {
  const stackCatalog = withOverrides(catalog, settings);
  const byId = new Map<string, { release: OsRelease; archs: Architecture[] }>();
  for (const plan of planStack(catalog, settings)) {
    const os = osBase(stackCatalog, plan.release);
    const entry = byId.get(os.id) ?? byId.set(os.id, { release: os, archs: [] }).get(os.id)!;
    if (!entry.archs.includes(plan.arch)) entry.archs.push(plan.arch);
  }
  return [...byId.values()];
}

/** An upstream that signs its checksum file needs its pinned key in images/keys/, or the build fails closed. */
export function missingSigningKeyFindings(upstreams: readonly { release: OsRelease }[], keyringPresent: (keyring: string) => boolean): Finding[] {
  const missing = new Map<string, string[]>();
  for (const { release } of upstreams) {
    const keyring = release.upstream.signature?.keyring;
    if (keyring && !keyringPresent(keyring)) missing.set(keyring, [...(missing.get(keyring) ?? []), release.id]);
  }
  return [...missing].map(([keyring, ids]) => ({
    check: "keys",
    problem: `images/keys/${keyring}.asc is missing: ${ids.join(", ")} ${ids.length > 1 ? "verify their" : "verifies its"} signed checksum file with it, so the build fails`,
    fix: `add upstream's public key as images/keys/${keyring}.asc, its fingerprint checked against upstream's published one`,
  }));
}

/**
 * Pins without a checksum: the serial was recorded without reading upstream's checksum file, so nothing ties the
 * pin to one file until `check-upstream --write` resolves it (README, "Limitations: Pins").
 */
export function pinsWithoutChecksumFindings(upstreams: readonly { release: OsRelease; archs: readonly Architecture[] }[]): Finding[] {
  return upstreams.flatMap(({ release, archs }) => {
    const unchecked = archs.filter((arch) => !release.upstream.pins[arch]?.checksum);
    if (!unchecked.length) return [];
    const serials = [...new Set(unchecked.map((a) => release.upstream.pins[a]?.serial ?? "none"))].join(", ");
    return [{
      check: "pins",
      problem: `${release.id} (${unchecked.join(", ")}): pinned serial ${serials} has no checksum`,
      fix: `image-factory check-upstream --release ${release.id} --write, on a machine that reaches the upstream; review the diff of images/pins.json`,
    }];
  });
}

/** The scaleway-ecosystem repository is what every image installs from: https unless it is on this machine. */
export function ecosystemRepositoryFindings(settings: Pick<StackSettings, "ecosystemRepository">): Finding[] {
  const url = settings.ecosystemRepository;
  return url.startsWith("https://") || isLoopback(url)
    ? []
    : [{ check: "ecosystem", problem: `${PROJECT}:ecosystemRepository ${url} is not https`, fix: `serve the repository over https and set ${PROJECT}:ecosystemRepository to it` }];
}

/** Every upstream check of a stack. */
export function upstreamFindings(catalog: Catalog, settings: StackSettings, keyringPresent: (keyring: string) => boolean): Finding[] {
  const upstreams = upstreamsOfStack(catalog, settings);
  return [...missingSigningKeyFindings(upstreams, keyringPresent), ...pinsWithoutChecksumFindings(upstreams), ...ecosystemRepositoryFindings(settings)];
}
