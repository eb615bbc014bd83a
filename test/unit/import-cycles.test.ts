/**
 * The house has no import cycles: each module's relative imports (type-only ones too, which tie the rooms together
 * just as much) form a graph without loops. Tests, fixtures and compiled output are outside it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(__dirname, "..", "..");
const SKIP = new Set(["node_modules", "dist", "test", ".git"]);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (SKIP.has(name)) return [];
    if (statSync(path).isDirectory()) return sources(path);
    return /\.ts$/.test(name) && !/\.d\.ts$/.test(name) ? [path] : [];
  });
}

/** A module's relative imports resolved to files of the project. */
function importsOf(file: string, known: Set<string>): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [
    ...text.matchAll(
      /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g,
    ),
  ].map((m) => m[1] ?? m[2]!);
  return specs.flatMap((spec) => {
    const base = resolve(dirname(file), spec.replace(/\.js$/, ""));
    const hit = [`${base}.ts`, join(base, "index.ts")].find((c) => known.has(c));
    return hit ? [hit] : [];
  });
}

/** Every cycle found by a depth-first walk, as a path of project-relative names. */
function cycles(files: string[]): string[][] {
  const known = new Set(files);
  const graph = new Map(files.map((f) => [f, importsOf(f, known)]));
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (f: string) => {
    state.set(f, "open");
    stack.push(f);
    for (const next of graph.get(f)!) {
      if (state.get(next) === "open")
        found.push([...stack.slice(stack.indexOf(next)), next].map((p) => relative(ROOT, p)));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

describe("the module graph", () => {
  it("has no import cycle", () => {
    const files = sources(ROOT);
    expect(files.length).toBeGreaterThan(50);
    expect(cycles(files)).toEqual([]);
  });

  it("names a cycle, type-only imports included", () => {
    const dir = mkdtempSync(join(tmpdir(), "cycles-"));
    try {
      writeFileSync(join(dir, "a.ts"), 'import { b } from "./b";\nexport const a = () => b;\n');
      writeFileSync(join(dir, "b.ts"), 'import type { a } from "./a";\nexport const b: typeof a | null = null;\n');
      writeFileSync(join(dir, "c.ts"), 'import { a } from "./a";\nexport const c = a;\n');
      const found = cycles(["a.ts", "b.ts", "c.ts"].map((f) => join(dir, f)));
      expect(found.map((c) => c.map((p) => p.split("/").at(-1)))).toEqual([["a.ts", "b.ts", "a.ts"]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
