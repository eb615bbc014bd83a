/**
 * The build stamp: a digest of the TypeScript sources (and the JSON they import) written next to the compiled CLI
 * by `npm run build`, so the program can refuse to run Commands through a missing or stale CLI rather than run an
 * old one silently.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { projectRoot } from "./system/paths";

/** What tsc compiles into the program and the CLI (tests are left out: editing one does not stale the CLI). */
export const SOURCES = ["index.ts", "components", "images", "builder", "policy", "tsconfig.json"];

/** Where the stamp lives, next to the compiled CLI. */
export const stampFile = (root: string) => join(root, "dist", "builder", "build-stamp.json");
/** The compiled CLI the Commands run. */
export const cliFile = (root: string) => join(root, "dist", "builder", "cli.js");

function files(root: string, path: string): string[] {
  const full = join(root, path);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full, { withFileTypes: true }).flatMap((d) => {
    const rel = join(path, d.name);
    if (d.isDirectory()) return files(root, rel);
    return /\.(ts|json)$/.test(d.name) ? [rel] : [];
  });
}

/** sha256 over the sources' relative paths and contents, in a stable order. */
export function sourceDigest(root: string): string {
  const h = createHash("sha256");
  for (const f of SOURCES.flatMap((s) => files(root, s))
    .map((f) => relative(root, join(root, f)).split(sep).join("/"))
    .sort()) {
    h.update(`${f}\0`);
    h.update(readFileSync(join(root, f)));
    h.update("\0");
  }
  return h.digest("hex");
}

export function writeStamp(root: string): string {
  const digest = sourceDigest(root);
  writeFileSync(stampFile(root), `${JSON.stringify({ sources: digest }, null, 2)}\n`);
  return digest;
}

export class StaleBuildError extends Error {
  override name = "StaleBuildError";
}

/** Throws unless the compiled CLI exists and was built from the sources as they are now. */
export function assertBuilt(root: string): void {
  const fix = "run `npm run build` in the project, then run this again";
  if (!existsSync(cliFile(root)) || !existsSync(stampFile(root)))
    throw new StaleBuildError(
      `the compiled image-factory CLI (dist/builder/cli.js) or its build stamp is missing: ${fix}`,
    );
  let stamped: unknown;
  try {
    stamped = (JSON.parse(readFileSync(stampFile(root), "utf8")) as { sources?: unknown }).sources;
  } catch {
    stamped = undefined;
  }
  if (stamped !== sourceDigest(root))
    throw new StaleBuildError(
      `the compiled image-factory CLI is stale: the sources changed since it was built (dist/builder/build-stamp.json): ${fix}`,
    );
}

if (require.main === module) {
  const digest = writeStamp(projectRoot());
  process.stdout.write(`build stamp ${digest.slice(0, 16)}\n`);
}
