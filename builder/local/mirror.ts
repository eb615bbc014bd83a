/**
 * Lays out a local mirror of upstream (`<root>/upstream/<host>/<path>`, as `--mirror` expects): an image placed
 * at a release's pinned URL, with the checksum file in that release's real format beside it, signed as the
 * release's signature spec says (by a test key) with the public key published at its key URL.
 */
import { copyFileSync, linkSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Architecture, OsRelease } from "../../images/schema";
import { digestFile } from "../pipeline/fetch";
import { upstreamLocation } from "../core/upstream-url";
import { publicKey, sign, type TestKey } from "./test-keys";

export function mirrorPath(root: string, url: string): string {
  const u = new URL(url);
  return join(root, "upstream", u.host, u.pathname);
}

/** Puts `file` at `target` (a hard link where possible), never writing through an existing path. */
export function placeFile(file: string, target: string): void {
  mkdirSync(dirname(target), { recursive: true });
  // Never write through an existing path: it may be a hard link to a cached file shared with other mirrors.
  rmSync(target, { force: true });
  try {
    linkSync(file, target);
  } catch {
    copyFileSync(file, target);
  }
}

/** The directory of `path` exists (a signature may live in a directory the checksum file does not). */
function inDirectory(path: string): string {
  mkdirSync(dirname(path), { recursive: true });
  return path;
}

/** The checksum file line for `name` in `format`. */
export function checksumLine(format: OsRelease["upstream"]["checksumFormat"], name: string, hex: string): string {
  switch (format) {
    case "sha256sums":
      return `${hex} *${name}`;
    case "sha512sums":
    case "single":
      return `${hex}  ${name}`;
    case "bsd":
      return `SHA${hex.length * 4} (${name}) = ${hex}`;
  }
}

/** The digest algorithm of a release's checksum file. */
export const checksumAlgo = (release: OsRelease) =>
  release.upstream.checksumFormat === "sha512sums" ? ("sha512" as const) : ("sha256" as const);

/**
 * Serves `image` as the release's pinned build for `arch`; returns the paths written. A release whose upstream
 * signs gets its checksum file signed by `signingKey` (required then) and that key's public part at its keyUrl.
 * `digests`: the image's digests when the caller has just read them (keyed by algorithm), so it is not read again.
 */
export async function mirrorAs(
  root: string,
  release: OsRelease,
  arch: Architecture,
  image: string,
  signingKey?: TestKey,
  digests: Partial<Record<"sha256" | "sha512", string>> = {},
) {
  const where = upstreamLocation(release, arch);
  const name = new URL(where.image).pathname.split("/").at(-1)!;
  const algo = checksumAlgo(release);
  const hex = digests[algo] ?? (await digestFile(image, algo));
  const imagePath = mirrorPath(root, where.image);
  const checksumsPath = mirrorPath(root, where.checksums);
  placeFile(image, imagePath);
  mkdirSync(dirname(checksumsPath), { recursive: true });
  writeFileSync(checksumsPath, `${checksumLine(release.upstream.checksumFormat, name, hex)}\n`);
  const spec = release.upstream.signature;
  if (spec) {
    if (!signingKey)
      throw new Error(`${release.id}: upstream signs its checksum file; give the mirror a test key to sign it with`);
    if (spec.kind === "detached")
      await sign(signingKey, checksumsPath, inDirectory(mirrorPath(root, where.signature!)), "detached");
    else {
      await sign(signingKey, checksumsPath, `${checksumsPath}.signed`, "clearsign");
      renameSync(`${checksumsPath}.signed`, checksumsPath);
    }
    if (spec.keyUrl) {
      const keyPath = mirrorPath(root, spec.keyUrl);
      mkdirSync(dirname(keyPath), { recursive: true });
      writeFileSync(keyPath, await publicKey(signingKey));
    }
  }
  return { imagePath, checksumsPath, name, hex, where };
}
