/**
 * README's reference tables and the docs' links, checked against what they describe: a config key or a Command
 * variable added to the code and not to README fails here, and so does a link to a file that was moved away.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  PublishContract,
  RetentionContract,
  TestInstanceContract,
  UnpublishContract,
  type Contract,
} from "../../builder/core/contract";
import { StackSettings } from "../../builder/core/settings";
import { commands, ENVIRONMENT } from "../../builder/cli/registry";
import { loadAllCommands } from "../../builder/cli/command-modules";

// The CLI loads a command's module when it runs; the reference tables are checked against all of them.
beforeAll(loadAllCommands);

const ROOT = join(__dirname, "..", "..");
const README = join(ROOT, "README.md");
const readme = () => readFileSync(README, "utf8");

/** The rows of the Markdown table whose header row starts with `header`, as trimmed cells. */
function tableRows(markdown: string, header: string): string[][] {
  const start = markdown.indexOf(header);
  if (start < 0) throw new Error(`no table headed "${header}"`);
  const lines = markdown.slice(start).split("\n");
  const rows: string[][] = [];
  for (const line of lines.slice(2)) {
    if (!line.startsWith("|")) break;
    rows.push(
      line
        .slice(1, line.endsWith("|") ? -1 : undefined)
        .split("|")
        .map((c) => c.trim()),
    );
  }
  return rows;
}

/** A cell's code span, `x` → x. */
const code = (cell: string) => /^`([^`]+)`$/.exec(cell)?.[1] ?? cell;

/** How README writes a Pulumi.yaml default: YAML flow style in a code span. */
const shownDefault = (v: unknown) => `\`${Array.isArray(v) ? `[${v.join(", ")}]` : String(v)}\``;

describe("README's stack config table", () => {
  const pulumiConfig = (
    parse(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")) as { config: Record<string, { default?: unknown }> }
  ).config;
  const rows = tableRows(readme(), "| key | default | what it does |");
  const keys = rows.map((r) => code(r[0]!));

  it("lists exactly the keys of StackSettings", () => {
    expect([...keys].sort()).toEqual(Object.keys(StackSettings.shape).sort());
  });

  it("lists exactly the keys of Pulumi.yaml's config", () => {
    expect([...keys].sort()).toEqual(Object.keys(pulumiConfig).sort());
  });

  it("gives Pulumi.yaml's defaults, and says which keys are required", () => {
    const shape = StackSettings.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
    for (const row of rows) {
      const key = code(row[0]!);
      const declared = pulumiConfig[key]?.default;
      const expected =
        declared !== undefined
          ? shownDefault(declared)
          : shape[key]?.safeParse(undefined).success
            ? "unset"
            : "required";
      expect(`${key}: ${row[1]}`).toBe(`${key}: ${expected}`);
      expect(row[2], `${key}: what it does`).toMatch(/\w/);
    }
  });
});

describe("README's Command contract table", () => {
  /** Which subcommand reads each contract: the artifact Command's create and delete, the tests and retention Commands. */
  const contracts: Record<string, Contract> = {
    publish: PublishContract,
    unpublish: UnpublishContract,
    "test-instance": TestInstanceContract,
    retention: RetentionContract,
  };
  const expected = new Map<string, { readers: string[]; secret: boolean }>();
  for (const [reader, contract] of Object.entries(contracts)) {
    for (const v of Object.values(contract)) {
      const seen = expected.get(v.name) ?? { readers: [], secret: v.secret };
      if (seen.secret !== v.secret) throw new Error(`${v.name} is secret in one contract and not in another`);
      seen.readers.push(reader);
      expected.set(v.name, seen);
    }
  }
  const rows = tableRows(readme(), "| variable | read by | secret | meaning |");

  it("lists exactly the contracts' variables, once each", () => {
    const names = rows.map((r) => code(r[0]!));
    expect(new Set(names).size, "a variable listed twice").toBe(names.length);
    expect([...names].sort()).toEqual([...expected.keys()].sort());
  });

  it("says which Commands read each and whether it is secret", () => {
    for (const row of rows) {
      const name = code(row[0]!);
      const want = expected.get(name);
      if (!want) continue; // reported by the test above
      expect(`${name}: ${row[1]} | ${row[2]}`).toBe(
        `${name}: ${want.readers.join(", ")} | ${want.secret ? "yes" : "no"}`,
      );
      expect(row[3], `${name}: meaning`).toMatch(/\w/);
    }
  });
});

describe("docs/cli.md", () => {
  const cli = () => readFileSync(join(ROOT, "docs", "cli.md"), "utf8");

  it("lists exactly the registered subcommands", () => {
    const rows = tableRows(cli(), "| command | what it does |");
    expect(rows.map((r) => code(r[0]!)).sort()).toEqual(Object.keys(commands).sort());
  });

  it("lists every FACTORY_* variable outside the contracts with the subcommands whose help names it", () => {
    const rows = tableRows(cli(), "| variable | read by | meaning |");
    const contracted = new Set(
      [PublishContract, UnpublishContract, TestInstanceContract, RetentionContract].flatMap((c) =>
        Object.values(c).map((v) => v.name),
      ),
    );
    const outside = Object.keys(ENVIRONMENT).filter((v) => v.startsWith("FACTORY_") && !contracted.has(v));
    expect(rows.map((r) => code(r[0]!)).sort()).toEqual(outside.sort());
    for (const row of rows) {
      const variable = code(row[0]!);
      const readers = Object.keys(commands).filter((n) => variable in commands[n]!.environment);
      expect(`${variable}: ${row[1]}`).toBe(`${variable}: ${readers.sort().join(", ")}`);
    }
  });
});

describe("relative links in README.md and docs/", () => {
  const docs = join(ROOT, "docs");
  const files = [
    README,
    ...readdirSync(docs)
      .filter((f) => f.endsWith(".md"))
      .map((f) => join(docs, f)),
  ];

  it("finds the docs", () => {
    expect(files.length).toBeGreaterThan(5);
  });

  it.each(files.map((f) => [f.slice(ROOT.length + 1), f]))(
    "%s: every relative link points to a file that exists",
    (_, file) => {
      // Inline links, [text](target), outside code spans; a #fragment or an absolute URL is not a file.
      const text = readFileSync(file, "utf8").replace(/`[^`\n]*`/g, "");
      const missing: string[] = [];
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target!) || target!.startsWith("#")) continue;
        const path = decodeURIComponent(target!.split("#")[0]!);
        if (!existsSync(resolve(dirname(file), path))) missing.push(target!);
      }
      expect(missing).toEqual([]);
    },
  );
});
