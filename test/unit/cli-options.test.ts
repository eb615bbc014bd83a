/**
 * The CLI's option tables: every option described, every FACTORY_* variable the CLI reads listed in the help of a
 * subcommand, and parsing (flag, then variable, then default; unknown options named with the closest valid one).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  PublishContract,
  RetentionContract,
  TestInstanceContract,
  UnpublishContract,
  type Contract,
} from "../../builder/core/contract";
import { missingTool, onPath } from "../../builder/system/exec";
import {
  closest,
  commandHelp,
  editDistance,
  parseOptions,
  unknownOption,
  UsageError,
  type OptionTable,
} from "../../builder/cli/options";
import { commands, withContract, withHowTo } from "../../builder/cli/registry";
import { COMMAND_NAMES, loadAllCommands } from "../../builder/cli/command-modules";

// The CLI loads a command's module when it runs; these tests read every command's table.
beforeAll(loadAllCommands);

const BUILDER = join(__dirname, "..", "..", "builder");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** Every FACTORY_* variable builder/ reads: from process.env directly, or through a contract (contract.ts). */
function variablesRead(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sources(BUILDER)) {
    const text = readFileSync(file, "utf8");
    const direct = /process\.env(?:\.|\[\s*["'])(FACTORY_[A-Z0-9_]+)/g;
    const contract = /(?:text|encoded|json)\(\s*"(FACTORY_[A-Z0-9_]+)"/g;
    for (const m of text.matchAll(direct)) found.set(m[1]!, file);
    if (file.endsWith("contract.ts")) for (const m of text.matchAll(contract)) found.set(m[1]!, file);
  }
  return found;
}

/** Every variable a subcommand's help lists: its options' and its environment's. */
const listed = (name: string) => {
  const cmd = commands[name]!;
  return new Set([
    ...Object.values(cmd.options).flatMap((o) => (o.env ? [o.env] : [])),
    ...Object.keys(cmd.environment),
  ]);
};

describe("the option tables", () => {
  const names = [...COMMAND_NAMES].sort();

  it("registers the subcommands, each named in the table the CLI loads them by", () => {
    expect(Object.keys(commands).sort()).toEqual(names);
    expect(names).toEqual(
      expect.arrayContaining([
        "catalog",
        "plan",
        "publish",
        "unpublish",
        "test-instance",
        "retention",
        "doctor",
        "local",
      ]),
    );
  });

  it.each(names)("%s: every option and variable has a description, and its help lists them all", (name) => {
    const cmd = commands[name]!;
    const help = commandHelp(name, cmd);
    for (const [flag, o] of Object.entries(cmd.options)) {
      expect(o.description.trim(), `${name} --${flag}`).not.toBe("");
      expect(help, `${name} --${flag}`).toMatch(
        new RegExp(`^  --${flag}\\b.*${o.description.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "m"),
      );
      if (o.env) expect(help).toContain(`env ${o.env}`);
      if (o.default !== undefined) expect(help).toContain(`default ${o.default}`);
    }
    for (const [variable, description] of Object.entries(cmd.environment)) {
      expect(description.trim(), `${name} ${variable}`).not.toBe("");
      expect(help).toMatch(new RegExp(`^  ${variable} +\\S`, "m"));
    }
    expect(help).toMatch(/^  -h, --help/m);
  });

  it("lists every FACTORY_* variable read in builder/ in the help of some subcommand", () => {
    const read = variablesRead();
    expect(read.size).toBeGreaterThan(20);
    const everywhere = new Set(names.flatMap((n) => [...listed(n)]));
    const missing = [...read]
      .filter(([v]) => !everywhere.has(v))
      .map(([v, file]) => `${v} (read in ${file.slice(BUILDER.length + 1)})`);
    expect(missing).toEqual([]);
  });

  it.each([
    ["publish", PublishContract],
    ["unpublish", UnpublishContract],
    ["test-instance", TestInstanceContract],
    ["retention", RetentionContract],
  ] as [string, Contract][])(
    "%s lists every variable of its Command's contract, each flag with its variable",
    (name, contract) => {
      const cmd = commands[name]!;
      for (const v of Object.values(contract)) {
        expect(listed(name), `${name} ${v.name}`).toContain(v.name);
        if (v.flag) expect(cmd.options[v.flag]?.env, `${name} --${v.flag}`).toBe(v.name);
      }
    },
  );

  it("refuses an option table that disagrees with the contract, or a variable the help cannot describe", () => {
    const table: OptionTable = {
      zone: { type: "string", env: "FACTORY_REGION", description: "z" },
      current: { type: "string", description: "c" },
    };
    expect(() => withContract("x", table, {}, RetentionContract)).toThrow(
      "x: --zone reads FACTORY_REGION, the contract says FACTORY_ZONE",
    );
    expect(() => withContract("x", { current: table.current! }, {}, RetentionContract)).toThrow(
      "x: the contract's FACTORY_ZONE stands for --zone, which the option table lacks",
    );
    const unflagged = {
      only: { ...RetentionContract.zone, name: "FACTORY_NOBODY_KNOWS", flag: undefined },
    } as Contract;
    expect(() => withContract("x", {}, {}, unflagged)).toThrow(
      "x: the contract's FACTORY_NOBODY_KNOWS has no description for the help",
    );
  });
});

describe("parsing", () => {
  const table: OptionTable = {
    stack: { type: "string", env: "FACTORY_STACK", description: "s" },
    arch: { type: "string", env: "FACTORY_ARCH", default: "x86_64", description: "a" },
    json: { type: "boolean", description: "j" },
  };
  it.each([
    { args: [], env: {}, values: { arch: "x86_64", json: false } },
    {
      args: [],
      env: { FACTORY_STACK: "local", FACTORY_ARCH: "arm64" },
      values: { stack: "local", arch: "arm64", json: false },
    },
    {
      args: ["--stack", "prod", "--arch=arm64"],
      env: { FACTORY_STACK: "local", FACTORY_ARCH: "x86_64" },
      values: { stack: "prod", arch: "arm64", json: false },
    },
    { args: ["--json"], env: { FACTORY_ARCH: "" }, values: { arch: "x86_64", json: true } },
    { args: ["--stack=-odd-name-"], env: {}, values: { stack: "-odd-name-", arch: "x86_64", json: false } },
  ])("flag, then variable, then default: $args with $env", ({ args, env, values }) => {
    expect(parseOptions("t", table, args, env).values).toEqual(values);
  });

  it.each([
    {
      args: ["--stak", "x"],
      message: "unknown option --stak for t; did you mean --stack? (image-factory t --help lists them)",
    },
    { args: ["--jsn"], message: "unknown option --jsn for t; did you mean --json?" },
    { args: ["--ach=arm64"], message: "unknown option --ach for t; did you mean --arch?" },
    { args: ["-j"], message: "unknown option -j for t; did you mean --json?" },
    { args: ["--stack"], message: "Option '--stack <value>' argument missing" },
    // A value that looks like an option is the option's, not an unknown one: parseArgs asks for --stack=-x.
    { args: ["--stack", "-x"], message: "Option '--stack' argument is ambiguous" },
  ])("refuses $args", ({ args, message }) => {
    expect(() => parseOptions("t", table, args, {})).toThrow(UsageError);
    expect(() => parseOptions("t", table, args, {})).toThrow(message);
  });

  it("stops at --: what follows is positional", () => {
    expect(unknownOption(["--json", "--", "--nope"], table)).toBeUndefined();
    expect(parseOptions("t", table, ["--", "--nope"], {}).positionals).toEqual(["--nope"]);
  });

  it.each([
    ["stak", ["stack", "all", "json"], "stack"],
    ["jsn", ["stack", "all", "json"], "json"],
    ["al", ["stack", "all", "json"], "all"],
    ["plna", ["plan", "catalog", "publish"], "plan"],
    ["retenion", ["rollout", "retention"], "retention"],
  ])("the closest to %s among %j is %s", (name, valid, want) => {
    expect(closest(name, valid)).toBe(want);
  });

  it.each([
    ["", "", 0],
    ["stack", "stack", 0],
    ["stak", "stack", 1],
    ["kitten", "sitting", 3],
  ])("edit distance %s → %s is %i", (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
  });
});

describe("what a missing tool or credential says", () => {
  it.each([
    ["qemu-img", "apt-get install qemu-utils"],
    ["virt-customize", "apt-get install libguestfs-tools"],
    ["cloud-localds", "apt-get install cloud-image-utils"],
  ])("%s names its package", (tool, how) => {
    expect(missingTool(tool)).toContain(`${tool} is not installed (not found on PATH): ${how}`);
  });

  it("finds a tool on PATH only where it is", () => {
    expect(onPath("node", process.env.PATH)).toBe(true);
    expect(onPath("node", "/nonexistent")).toBe(false);
  });

  it("says where a missing Scaleway credential comes from", () => {
    expect(withHowTo("SCW_ACCESS_KEY is not set")).toMatch(/^SCW_ACCESS_KEY is not set \(.*IAM, API keys\)$/);
    expect(withHowTo("--zone (FACTORY_ZONE): expected a zone")).toBe("--zone (FACTORY_ZONE): expected a zone");
  });
});

describe("-h and --help", () => {
  afterEach(() => vi.restoreAllMocks());
  it.each(
    [...COMMAND_NAMES].sort().flatMap((n) => [
      [n, "-h"],
      [n, "--help"],
    ]),
  )("%s %s prints the command's help and exits 0", async (name, flag) => {
    const out: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
    const { main } = await import("../../builder/cli.js");
    expect(await main([name, flag])).toBe(0);
    expect(out.join("")).toBe(`${commandHelp(name, commands[name]!)}\n`);
  });
});
