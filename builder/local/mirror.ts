/**
 * Lays out a local mirror of upstream (`<root>/upstream/<host>/<path>`, as `--mirror` expects): an image placed
 * at a release's pinned URL, with the checksum file in that release's real format beside it.
 */
import { copyFileSync, linkSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Architecture, OsRelease } from "../../images/schema";
import { digestFile } from "../fetch";
import { upstreamLocation } from "../upstream-url";

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

/** Serves `image` as the release's pinned build for `arch`; returns the paths written. */
export async function mirrorAs(root: string, release: OsRelease, arch: Architecture, image: string) {
  const where = upstreamLocation(release, arch);
  const name = new URL(where.image).pathname.split("/").at(-1)!;
  const algo = release.upstream.checksumFormat === "sha512sums" ? "sha512" : "sha256";
  const hex = await digestFile(image, algo);
  const imagePath = mirrorPath(root, where.image);
  const checksumsPath = mirrorPath(root, where.checksums);
  placeFile(image, imagePath);
  mkdirSync(dirname(checksumsPath), { recursive: true });
  writeFileSync(checksumsPath, `${checksumLine(release.upstream.checksumFormat, name, hex)}\n`);
  return { imagePath, checksumsPath, name, hex, where };
}
