import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assertBuilt, cliFile, sourceDigest, StaleBuildError, writeStamp } from "../../builder/build-stamp";
import { factoryCli } from "../../components/factory-stack";

/** A project as the build leaves it: sources, a compiled CLI and its stamp. */
let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "stamp-"));
  for (const d of ["builder", "components", "images", "test/unit", "dist/builder"])
    mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, "index.ts"), "export {};\n");
  writeFileSync(join(root, "builder", "cli.ts"), "console.log(1);\n");
  writeFileSync(join(root, "images", "pins.json"), "{}\n");
  writeFileSync(join(root, "test", "unit", "x.test.ts"), "// a test\n");
  writeFileSync(cliFile(root), "console.log(1);\n");
  writeStamp(root);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("the build stamp", () => {
  it("passes a build made from the sources as they are", () => {
    expect(() => assertBuilt(root)).not.toThrow();
  });

  it.each([
    { what: "a changed source", change: () => writeFileSync(join(root, "builder", "cli.ts"), "console.log(2);\n") },
    { what: "a new source", change: () => writeFileSync(join(root, "components", "new.ts"), "export {};\n") },
    { what: "a changed pin", change: () => writeFileSync(join(root, "images", "pins.json"), '{"a":1}\n') },
    { what: "a removed source", change: () => rmSync(join(root, "index.ts")) },
  ])("calls the CLI stale after $what, and says what to run", ({ change }) => {
    change();
    expect(() => assertBuilt(root)).toThrow(StaleBuildError);
    expect(() => assertBuilt(root)).toThrow(/stale.*run `npm run build`/);
  });

  it("does not call it stale for an edited test", () => {
    writeFileSync(join(root, "test", "unit", "x.test.ts"), "// another test\n");
    expect(() => assertBuilt(root)).not.toThrow();
  });

  it.each([
    { what: "the compiled CLI", file: () => cliFile(root) },
    { what: "the stamp", file: () => join(root, "dist", "builder", "build-stamp.json") },
  ])("calls the build missing without $what", ({ file }) => {
    rmSync(file());
    expect(() => assertBuilt(root)).toThrow(/missing: run `npm run build`/);
  });

  it("depends on content and paths, not on when files were written", () => {
    const before = sourceDigest(root);
    writeFileSync(join(root, "index.ts"), "export {};\n");
    expect(sourceDigest(root)).toBe(before);
  });
});

describe("the Commands' CLI path", () => {
  it("is absolute, whatever directory the program runs from", () => {
    const cwd = process.cwd();
    try {
      process.chdir(tmpdir());
      const cli = factoryCli();
      expect(cli).toMatch(/^node '.*\/dist\/builder\/cli\.js'$/);
      expect(isAbsolute(cli.slice("node '".length, -1))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });

  it("quotes a path with a quote in it for the shell", () => {
    expect(factoryCli("/srv/it's")).toBe(`node '/srv/it'\\''s/dist/builder/cli.js'`);
  });
});
