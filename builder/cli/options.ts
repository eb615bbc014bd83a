/**
 * A subcommand's options, declared once as a table: parsing (flag, then its environment variable, then its
 * default), unknown-option errors that name the closest valid one, and the `--help` text all come from it, so the
 * help cannot leave an option out. Pure: no file system, no process state beyond what is passed in.
 */
import { parseArgs } from "node:util";

/** An error the user can act on: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

export interface OptionSpec {
  type: "string" | "boolean";
  /** What the help shows for a string option's value (`NAME`, `YYYY-MM-DD`); `VALUE` when unset. */
  value?: string;
  /** Used when neither the flag nor its variable is given; shown in the help. */
  default?: string;
  /** The environment variable standing in for the flag (a Command passes data through `environment`). */
  env?: string;
  /** What it does, for the help; a default computed at run time (today, the release's user) is said here. */
  description: string;
}

export type OptionTable = Record<string, OptionSpec>;
export type Values = Record<string, string | boolean | string[] | undefined>;

/** The option every subcommand has. */
export const HELP: OptionTable = { help: { type: "boolean", description: "print this help and exit" } };

/** Levenshtein distance: how far an unknown option is from a valid one. */
export function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The valid name closest to `name` (ties: the first in table order). */
export function closest(name: string, valid: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const v of valid) {
    // A prefix is what a typo most often is (`--stac`): count it as one edit.
    const d = v.startsWith(name) || name.startsWith(v) ? 1 : editDistance(name, v);
    if (!best || d < best.d) best = { name: v, d };
  }
  return best?.name;
}

/** The first `--name` or `-x` in `args` that the table does not declare, before a `--` terminator. */
export function unknownOption(args: readonly string[], table: OptionTable): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return undefined;
    if (!arg.startsWith("-") || arg === "-") continue;
    const name = arg.startsWith("--") ? arg.slice(2).split("=")[0]! : arg.slice(1);
    const spec = arg.startsWith("--") ? table[name] : name === "h" ? HELP.help : undefined;
    if (!spec) return arg.split("=")[0];
    // A string option's value is the next argument, even when it starts with "-".
    if (spec.type === "string" && !arg.includes("=")) i++;
  }
  return undefined;
}

/**
 * Flags from the command line, then each option's variable from `env`, then its default. An unknown option is a
 * usage error naming it, the subcommand and the closest valid option.
 */
export function parseOptions(
  command: string,
  table: OptionTable,
  args: string[],
  env: Record<string, string | undefined>,
): { values: Values; positionals: string[] } {
  const all = { ...table, ...HELP };
  const unknown = unknownOption(args, all);
  if (unknown !== undefined) {
    const suggestion = closest(unknown.replace(/^-+/, ""), Object.keys(all));
    throw new UsageError(
      `unknown option ${unknown} for ${command}${suggestion ? `; did you mean --${suggestion}?` : ""} (image-factory ${command} --help lists them)`,
    );
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args,
      options: Object.fromEntries(
        Object.entries(all).map(([k, o]) => [k, { type: o.type, ...(k === "help" ? { short: "h" } : {}) }]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    // What is left: a string option without its value, or a value given to a boolean.
    throw new UsageError((err as Error).message);
  }
  const values = { ...parsed.values } as Values;
  for (const [flag, spec] of Object.entries(table)) {
    if (values[flag] !== undefined) continue;
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== "")
      values[flag] = spec.type === "boolean" ? fromEnv === "true" || fromEnv === "1" : fromEnv;
    else if (spec.default !== undefined) values[flag] = spec.default;
    else if (spec.type === "boolean") values[flag] = false;
  }
  return { values, positionals: parsed.positionals };
}

const column = (rows: [string, string][], indent = "  ") => {
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows.map(([l, r]) =>
    l.length + 2 > width ? `${indent}${l}\n${indent}${" ".repeat(width)}${r}` : `${indent}${l.padEnd(width)}${r}`,
  );
};

export interface HelpSource {
  summary: string;
  usage: string;
  options: OptionTable;
  /** Variables read without a flag: name → what it is. */
  environment?: Record<string, string>;
}

/** `image-factory <command> --help`: usage, summary, every option with its variable and default, the environment. */
export function commandHelp(command: string, cmd: HelpSource): string {
  const usage = cmd.usage.split("\n").map((l, i) => (i === 0 ? `usage: ${l}` : `       ${l.replace(/^\s+/, "")}`));
  const options = column(
    Object.entries({ ...cmd.options, ...HELP }).map(([flag, o]) => {
      const name = `${flag === "help" ? "-h, " : ""}--${flag}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
      const extra = [o.env ? `env ${o.env}` : "", o.default !== undefined ? `default ${o.default}` : ""].filter(
        Boolean,
      );
      return [name, `${o.description}${extra.length ? ` [${extra.join("; ")}]` : ""}`];
    }),
  );
  const environment = Object.entries(cmd.environment ?? {});
  return [
    ...usage,
    "",
    cmd.summary,
    "",
    "options:",
    ...options,
    ...(environment.length ? ["", "environment:", ...column(environment)] : []),
  ].join("\n");
}

/** `image-factory --help`: every subcommand with its summary. */
export function globalHelp(commands: Record<string, { summary: string }>): string {
  const names = Object.keys(commands).sort();
  return [
    "usage: image-factory <command> [options]",
    "",
    "commands:",
    ...column(names.map((n) => [n, commands[n]!.summary])),
    "",
    "options:",
    "  -h, --help   this help; image-factory <command> --help: the command's options, their FACTORY_* variables and defaults",
    "",
    "exit codes: 0 done, 1 failed (a check, a test or a tool), 2 usage (a flag, a variable, a file or a credential to fix)",
  ].join("\n");
}
