import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** The per-user cache (`$FACTORY_CACHE`, else `$XDG_CACHE_HOME/scw-image-factory`), as scripts/lib.sh uses it. */
export function cacheDir(...parts: string[]): string {
  const root =
    process.env.FACTORY_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "scw-image-factory");
  return join(root, ...parts);
}

/** The project root (holding Pulumi.yaml), whether running from source (builder/system/) or from dist/builder/system/. */
export function projectRoot(): string {
  const candidates = [join(__dirname, "..", ".."), join(__dirname, "..", "..", "..")];
  const found = candidates.find((d) => existsSync(join(d, "Pulumi.yaml")));
  if (!found) throw new Error(`cannot find the project root (Pulumi.yaml) above ${__dirname}`);
  return found;
}
