/**
 * Resolve: which file to fetch for a release and architecture, and the checksum it must have — read from the
 * upstream checksum file in its real format, through the signature where upstream signs, and against the
 * catalog's pin where one is recorded.
 */
import { basename } from "node:path";
import type { Architecture, OsRelease } from "../../images/schema";
import { checksumFor, type Checksum } from "./checksums";
import { fetchBytes } from "./fetch";
import { verifySignature } from "./signature";
import { throughMirror, upstreamLocation } from "../core/upstream-url";

export interface ResolvedSource {
  release: string;
  arch: Architecture;
  serial: string;
  /** Upstream's name for the architecture (`amd64`). */
  upstreamArch: string;
  /** The official URL (SCS image_source). */
  imageUrl: string;
  /** Where the bytes come from: the official URL or the mirror's copy of it. */
  fetchUrl: string;
  checksumsUrl: string;
  fileName: string;
  checksum: Checksum;
  /**
   * What the checksum was trusted on: `pgp:<fingerprint>` (the pinned signing key), `pinned-checksum` (upstream
   * signs nothing; the catalog's pin), or `https` (only when discovering a new build over HTTPS, check-upstream).
   */
  trust: string;
}

export class PinMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PinMismatchError";
  }
}

export class UntrustedSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UntrustedSourceError";
  }
}

export interface ResolveOptions {
  /**
   * Looking for a new build (check-upstream): an unsigned upstream has no pin yet, so its checksum file is read
   * over HTTPS and recorded for review. Never over plain HTTP.
   */
  discover?: boolean;
}

export async function resolveSource(
  release: OsRelease,
  arch: Architecture,
  mirror?: string,
  opts: ResolveOptions = {},
): Promise<ResolvedSource> {
  const where = upstreamLocation(release, arch);
  const fileName = basename(new URL(where.image).pathname);
  const checksumsUrl = throughMirror(where.checksums, mirror);
  const spec = release.upstream.signature;
  const what = `${release.id} ${arch}: ${checksumsUrl}`;
  // Decided before any download: an unsigned upstream needs a pinned checksum, except when discovering over HTTPS.
  if (!spec && !where.checksum && !(opts.discover && checksumsUrl.startsWith("https://")))
    throw new UntrustedSourceError(
      `${release.id} ${arch}: upstream signs nothing and images/pins.json pins no checksum for serial ${where.serial}${checksumsUrl.startsWith("https://") ? "" : ` (and ${checksumsUrl} is not HTTPS)`}: run image-factory check-upstream --release ${release.id} --write over HTTPS and review the recorded checksum`,
    );
  const raw = await fetchBytes(checksumsUrl);
  let text = raw.toString("utf8");
  let trust = spec ? "" : where.checksum ? "pinned-checksum" : "https";
  if (spec) {
    const sig = spec.kind === "detached" ? await fetchBytes(throughMirror(where.signature!, mirror)) : undefined;
    text = await verifySignature(spec, raw, sig, what, mirror);
    trust = `pgp:${spec.fingerprint}`;
  }
  const checksum = checksumFor(text, release.upstream.checksumFormat, fileName, checksumsUrl);
  if (where.checksum && where.checksum !== checksum.hex)
    throw new PinMismatchError(
      `${release.id} ${arch}: the checksum file lists ${fileName} as ${checksum.hex}, but the catalog pins ${where.checksum}`,
    );
  return {
    release: release.id,
    arch,
    serial: where.serial,
    upstreamArch: where.upstreamArch,
    imageUrl: where.image,
    fetchUrl: throughMirror(where.image, mirror),
    checksumsUrl,
    fileName,
    checksum,
    trust,
  };
}
