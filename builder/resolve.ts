/**
 * Resolve: which file to fetch for a release and architecture, and the checksum it must have — read from the
 * upstream checksum file in its real format, through the signature where upstream signs, and against the
 * catalog's pin where one is recorded.
 */
import { basename } from "node:path";
import type { Architecture, OsRelease } from "../images/schema";
import { checksumFor, type Checksum } from "./checksums";
import { fetchBytes } from "./fetch";
import { verifySignature } from "./signature";
import { throughMirror, upstreamLocation } from "./upstream-url";

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
  /** How the checksum is trusted: the pinned signing key, or HTTPS only (upstream does not sign). */
  trust: string;
}

export class PinMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PinMismatchError";
  }
}

export async function resolveSource(release: OsRelease, arch: Architecture, mirror?: string): Promise<ResolvedSource> {
  const where = upstreamLocation(release, arch);
  const fileName = basename(new URL(where.image).pathname);
  const checksumsUrl = throughMirror(where.checksums, mirror);
  const raw = await fetchBytes(checksumsUrl);
  const spec = release.upstream.signature;
  let text = raw.toString("utf8");
  let trust = "https";
  if (spec) {
    const sig = spec.kind === "detached" ? await fetchBytes(throughMirror(where.signature!, mirror)) : undefined;
    text = await verifySignature(spec, raw, sig, `${release.id} ${arch}: ${checksumsUrl}`);
    trust = `pgp:${spec.keyring}`;
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
