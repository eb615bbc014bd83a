/**
 * The CLI loads only the module of the command it runs (builder/cli/command-modules.ts): a publish run, one per
 * image, must not pay for the doctor, the battery or the emulator's client. Each test file has its own module
 * registry, so what is registered here is what these calls loaded.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../../builder/cli";
import { COMMAND_NAMES, loadCommand } from "../../builder/cli/command-modules";
import { commands } from "../../builder/cli/registry";

describe("the CLI's command modules", () => {
  afterEach(() => vi.restoreAllMocks());

  it("runs publish with only the pipeline's commands loaded, and lists every command in --help", async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
    expect(Object.keys(commands)).toEqual([]);
    expect(await main(["publish", "--help"])).toBe(0);
    expect(out.join("")).toMatch(/^usage: image-factory publish/m);
    expect(Object.keys(commands).sort()).toEqual(["build", "fetch", "publish", "resolve", "unpublish", "upload"]);

    out.length = 0;
    expect(await main(["--help"])).toBe(0);
    for (const name of COMMAND_NAMES) expect(out.join(""), name).toMatch(new RegExp(`^  ${name} `, "m"));
    expect(Object.keys(commands).sort()).toEqual([...COMMAND_NAMES].sort());
  });

  it.each([...COMMAND_NAMES])("%s is registered by the module the table names", async (name) => {
    expect((await loadCommand(name))?.summary).toBeTruthy();
  });

  it("knows no command it has no module for, and suggests the closest without loading one", async () => {
    expect(await loadCommand("publsh")).toBeUndefined();
    const err: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((s) => (err.push(String(s)), true));
    expect(await main(["publsh"])).toBe(2);
    expect(err.join("")).toContain('unknown command "publsh"; did you mean publish?');
  });
});
