/**
 * The upstream watcher's pure parts: where to look for a release's newer builds (the directory listing above the
 * URL segment that holds the serial), which links in a listing are builds (the segment's shape, the serial's own
 * shape), and which serial is newest. Upstreams publish plain autoindex listings; no API is assumed.
 */
import type { Architecture, OsRelease } from "../../images/schema";

/** A serial's shape from the pinned one: digit runs match any digits, the rest is literal (`20261102-2314`). */
export function serialShape(example: string): RegExp {
  const escaped = example.split(/\d+/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join("\\d+")}$`);
}

/** Orders serials by their numbers, left to right (`9.10-2026` after `9.9-2026`). */
export function compareSerials(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

export interface ListingLocation {
  /** The directory to list (official URL, ending in `/`). */
  listing: string;
  /** Matches a link of that listing that is a build; group 1 is its serial. */
  link: RegExp;
}

/** The listing of a release's builds for one architecture: the directory above the first segment naming `{serial}`. */
export function listingLocation(release: OsRelease, arch: Architecture): ListingLocation {
  const upstreamArch = release.upstream.archNames[arch];
  if (!upstreamArch) throw new Error(`${release.id}: no upstream name for ${arch}`);
  const url = release.upstream.image.replaceAll("{arch}", upstreamArch);
  const [origin, ...segments] = url.replace(/^(https:\/\/[^/]+)\//, "$1\n").split(/\n|\//);
  const at = segments.findIndex((s) => s.includes("{serial}"));
  if (at < 0) throw new Error(`${release.id}: the image URL has no {serial}`);
  const segment = segments[at]!;
  const isDirectory = at < segments.length - 1;
  const pattern = segment
    .split("{serial}")
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("([^/]+?)");
  return {
    listing: `${origin}/${segments.slice(0, at).join("/")}/`,
    link: new RegExp(`^${pattern}${isDirectory ? "/?" : ""}$`),
  };
}

/** The link targets of an HTML directory listing, as names relative to it (`20261102-2314/`, `x.qcow2`). */
export function listingLinks(html: string): string[] {
  return [...html.matchAll(/href\s*=\s*"([^"]*)"/gi)]
    .map((m) => decodeURI(m[1]!.replace(/&amp;/g, "&")))
    .filter((h) => h && !h.startsWith("?") && !h.startsWith("#") && !h.startsWith("../") && h !== "/")
    .map((h) => h.replace(/^\.\//, "").replace(/^.*\/(?=[^/]+\/?$)/, ""));
}

/** The newest build serial a listing offers for a release, with the pinned serial's shape; undefined if none. */
export function newestSerial(html: string, location: ListingLocation, pinned: string): string | undefined {
  const shape = serialShape(pinned);
  const serials = listingLinks(html)
    .map((l) => location.link.exec(l)?.[1])
    .filter((s): s is string => s !== undefined && shape.test(s));
  return [...new Set(serials)].sort(compareSerials).at(-1);
}

/**
 * Where newer majors of a distribution would appear: the directory above the first URL segment that names the
 * release's version (`almalinux/9/`, `centos/9-stream/`); undefined where the URL names a codename instead
 * (Debian, Ubuntu), whose order a listing cannot tell.
 */
export function majorsLocation(release: OsRelease): { listing: string; link: RegExp } | undefined {
  const [origin, ...segments] = release.upstream.image.replace(/^(https:\/\/[^/]+)\//, "$1\n").split(/\n|\//);
  const at = segments.findIndex((s) => s === release.version || s === `${release.version}-stream`);
  if (at < 0) return undefined;
  const suffix = segments[at]!.slice(release.version.length).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return {
    listing: `${origin}/${segments.slice(0, at).join("/")}/`,
    link: new RegExp(`^(\\d+(?:\\.\\d+)?)${suffix}/?$`),
  };
}
