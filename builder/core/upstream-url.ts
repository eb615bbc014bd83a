import type { Architecture, OsRelease } from "../../images/schema";

export interface UpstreamLocation {
  serial: string;
  /** Upstream's own name for the architecture (`amd64`, `aarch64`, …). */
  upstreamArch: string;
  image: string;
  checksums: string;
  signature?: string;
  /** The pinned checksum, when the catalog records one. */
  checksum?: string;
}

const fill = (template: string, serial: string, arch: string) =>
  template.replaceAll("{serial}", serial).replaceAll("{arch}", arch);

/** The official upstream URLs of a release's pinned build for one architecture. */
export function upstreamLocation(release: OsRelease, arch: Architecture): UpstreamLocation {
  const pin = release.upstream.pins[arch];
  const upstreamArch = release.upstream.archNames[arch];
  if (!pin || !upstreamArch) throw new Error(`${release.id}: no pinned upstream build for ${arch}`);
  const { image, checksums, signature } = release.upstream;
  return {
    serial: pin.serial,
    upstreamArch,
    image: fill(image, pin.serial, upstreamArch),
    checksums: fill(checksums, pin.serial, upstreamArch),
    ...(signature ? { signature: fill(signature.url, pin.serial, upstreamArch) } : {}),
    ...(pin.checksum ? { checksum: pin.checksum } : {}),
  };
}

/**
 * Air-gapped sites and tests fetch through one mirror of every upstream, laid out as `<mirror>/<host>/<path>`:
 * `https://cloud.debian.org/images/x` → `http://mirror.internal/cloud.debian.org/images/x`.
 */
export function throughMirror(url: string, mirror: string | undefined): string {
  if (!mirror) return url;
  const official = new URL(url);
  const base = new URL(mirror.endsWith("/") ? mirror : `${mirror}/`);
  return new URL(`${official.host}${official.pathname}${official.search}`, base).toString();
}
