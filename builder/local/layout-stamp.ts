/**
 * The local job's served tree (the mirror of the fixture upstream, the stand-in downloads and the signed
 * scaleway-ecosystem repository) is kept between runs while everything it is made from is unchanged: laying it out
 * again signs four files with gpg, builds and indexes a package, and was most of a second run's start-up. The stamp
 * names all of it: what is served and under which URLs, the digests the checksum files list, the signing keys, and
 * the code that lays it out (this folder), so an edit to any of them lays the tree out again.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export interface LayoutInputs {
  /** Each mirrored upstream: release, architecture, its official URLs and checksum format, and the digest listed. */
  upstreams: { release: string; arch: string; location: unknown; format: string; signature: unknown; hex: string }[];
  /** Stand-in downloads by official URL: their sha256. */
  standIns: Record<string, string>;
  /** The scaleway-ecosystem package version built, and where its repository publishes the signing key. */
  ecosystem: { version: string; keyPath: string };
  /** The test keys signing the checksum files and the repository: fingerprint and armoured file's sha256. */
  keys: { fingerprint: string; sha256: string }[];
  /** sha256 of the code laying the tree out (`codeDigest`). */
  code: string;
}

/** The stamp of a layout: equal inputs, equal stamp, whatever order the stand-ins were listed in. */
export function layoutStamp(i: LayoutInputs): string {
  const canonical = {
    ...i,
    standIns: Object.entries(i.standIns).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  };
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}

/** sha256 over the files of `dir` (names and contents, sorted): the code laying the tree out, compiled or not. */
export function codeDigest(dir: string): string {
  const h = createHash("sha256");
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (!/\.(js|ts)$/.test(name) || !statSync(path).isFile()) continue;
    h.update(`${name}\0`).update(readFileSync(path)).update("\0");
  }
  return h.digest("hex");
}

/** The sha256 of a file (a key file: small). */
export function fileSha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}
