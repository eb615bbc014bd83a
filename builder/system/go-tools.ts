/**
 * Tools the project builds from the Go module proxy (the embedded S3 server, the workflow linter): once per
 * version into the per-user cache, so later runs find them in milliseconds.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { run } from "./exec";
import { cacheDir } from "./paths";

function goBinary(): string {
  for (const dir of (process.env.PATH ?? "").split(":")) if (existsSync(join(dir, "go"))) return join(dir, "go");
  if (existsSync("/usr/local/go/bin/go")) return "/usr/local/go/bin/go";
  throw new Error("this tool is built with Go, and no go toolchain was found (install golang)");
}

export interface GoTool {
  /** The binary's name (the last element of the package path). */
  name: string;
  /** Package path, e.g. github.com/rhysd/actionlint/cmd/actionlint. */
  pkg: string;
  version: string;
  /** -ldflags, where the tool reads its version from the linker. */
  ldflags?: string;
}

const found = new Map<string, string>();

/** The tool's binary, built on first use. */
export async function ensureGoTool(tool: GoTool): Promise<string> {
  const dir = cacheDir("tools", `${tool.name}-${tool.version}`);
  const bin = join(dir, tool.name);
  // Remembered per process: a caller may point the cache elsewhere after the binary was found.
  const known = found.get(bin);
  if (known && existsSync(known)) return known;
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    process.stderr.write(`tools: building ${tool.name} ${tool.version} (once, cached in ${dir})\n`);
    await run(
      goBinary(),
      ["install", ...(tool.ldflags ? ["-ldflags", tool.ldflags] : []), `${tool.pkg}@${tool.version}`],
      {
        env: { ...process.env, GOBIN: dir, GOFLAGS: "-mod=mod", CGO_ENABLED: "0" },
      },
    );
  }
  found.set(bin, bin);
  return bin;
}
