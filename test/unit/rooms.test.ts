/**
 * The rooms of builder/ (docs/architecture.md) keep their arrows one way: the pure core touches neither the machine
 * nor Pulumi, and no room imports one that stands above it. Read from the sources, as import-cycles.test.ts does.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(__dirname, "..", "..");

/** Which room a project file stands in: a folder of builder/, an entry file of builder/, or the Pulumi side. */
function roomOf(path: string): string | undefined {
  const [top, second] = path.split("/");
  if (top === "builder") return second?.endsWith(".ts") ? `entry:${second}` : second;
  if (top === "components" || top === "policy" || path === "index.ts") return "pulumi";
  if (top === "images") return "images";
  return undefined;
}

/**
 * What each room may import besides itself, images/ and packages. What is not listed must never be: a room never
 * imports one above it, and the Pulumi program reaches only the core, the machine helpers and the build stamp.
 */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  system: ["core"],
  "entry:build-stamp.ts": ["system"],
  pipeline: ["core", "system", "entry:build-stamp.ts"],
  release: ["core", "system"],
  emulator: ["core", "system", "release"],
  local: ["core", "system", "pipeline", "release", "emulator"],
  cli: ["core", "system", "entry:build-stamp.ts", "pipeline", "release", "emulator", "local", "pulumi"],
  "entry:cli.ts": ["core", "cli"],
  pulumi: ["core", "system", "entry:build-stamp.ts"],
};

/** Modules the pure core must not import: no file system, processes, network, or Pulumi. */
const IMPURE = [/^(node:)?fs(\/|$)/, /^(node:)?child_process$/, /^(node:)?net$/, /^(node:)?https?$/, /^@pulumi\//];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.ts$/.test(name) && !/\.d\.ts$/.test(name) ? [path] : [];
  });
}

/** Every module specifier a source names: static, re-exported, side-effect and dynamic imports, type-only ones too. */
function specifiers(text: string): string[] {
  return [
    ...text.matchAll(
      /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|(?:^|\n)\s*import\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g,
    ),
  ].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

/** A relative specifier as a project path (without resolving which file of a folder), else undefined. */
function target(file: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const base = resolve(dirname(file), spec.replace(/\.js$/, ""));
  const hit = [`${base}.ts`, join(base, "index.ts")].find((c) => {
    try {
      return statSync(c).isFile();
    } catch {
      return false;
    }
  });
  return relative(ROOT, hit ?? base);
}

/** The imports of `files` that break the rooms' rules, one line each: "file -> what (why)". */
function violations(files: { path: string; text: string }[]): string[] {
  return files.flatMap(({ path, text }) => {
    const from = roomOf(path);
    if (!from || from === "images") return [];
    return specifiers(text).flatMap((spec) => {
      if (from === "core" && IMPURE.some((rx) => rx.test(spec))) return [`${path} -> ${spec} (the core stays pure)`];
      const to = target(join(ROOT, path), spec);
      const room = to === undefined ? undefined : roomOf(to);
      if (!room || room === from || room === "images") return [];
      return ALLOWED[from]?.includes(room) ? [] : [`${path} -> ${to} (${from} may not import ${room})`];
    });
  });
}

const tree = ["builder", "components", "policy"]
  .flatMap((d) => sources(join(ROOT, d)))
  .concat(join(ROOT, "index.ts"))
  .map((p) => ({ path: relative(ROOT, p), text: readFileSync(p, "utf8") }));

describe("the rooms of builder/", () => {
  it("every builder source stands in a room whose rules are written down", () => {
    const unknown = tree.map((f) => roomOf(f.path)!).filter((room) => !(room in ALLOWED));
    expect([...new Set(unknown)]).toEqual([]);
  });

  it.each(Object.keys(ALLOWED))("%s imports only the rooms below it", (room) => {
    expect(violations(tree.filter((f) => roomOf(f.path) === room))).toEqual([]);
  });

  const core = "builder/core/plan.ts";
  it.each([
    ["node:fs", `import { readFileSync } from "node:fs";`, "the core stays pure"],
    ["fs/promises", `import { readFile } from "fs/promises";`, "the core stays pure"],
    ["node:child_process", `import { spawn } from "node:child_process";`, "the core stays pure"],
    ["node:net", `import { createServer } from "node:net";`, "the core stays pure"],
    ["node:https", `const h = await import("node:https");`, "the core stays pure"],
    ["@pulumi/pulumi", `import type * as pulumi from "@pulumi/pulumi";`, "the core stays pure"],
    ["a pipeline module", `import { fetchVerified } from "../pipeline/fetch";`, "core may not import pipeline"],
    ["the machine helpers", `export { run } from "../system/exec";`, "core may not import system"],
  ])("a core file importing %s is caught", (_what, line, why) => {
    expect(violations([{ path: core, text: line }])).toEqual([expect.stringContaining(why)]);
  });

  it.each([
    ["builder/pipeline/fetch.ts", `import { main } from "../cli/commands";`, "pipeline may not import cli"],
    ["builder/release/ssh.ts", `import type { Model } from "../emulator/model";`, "release may not import emulator"],
    ["builder/emulator/api.ts", `import { buildImage } from "../pipeline/build";`, "emulator may not import pipeline"],
    ["builder/system/exec.ts", `import { planBuilds } from "../core/plan";`, undefined],
    ["builder/system/paths.ts", `import "../local/fixture";`, "system may not import local"],
    ["components/tags.ts", `import { publish } from "../builder/pipeline/publish";`, "pulumi may not import pipeline"],
    ["builder/local/mirror.ts", `import { register } from "../cli/registry";`, "local may not import cli"],
    ["builder/cli/commands.ts", `import { startS3 } from "../local/s3-server";`, undefined],
  ])("%s: %s", (path, line, why) => {
    expect(violations([{ path, text: line }])).toEqual(why ? [expect.stringContaining(why)] : []);
  });
});
