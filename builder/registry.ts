/** The CLI's subcommand registry, shared by cli.ts and the modules that add commands. */
import type { ParseArgsConfig } from "node:util";

/** An error the user can act on: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;
export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Subcommand {
  summary: string;
  usage: string;
  options: Options;
  /** Environment variables that stand in for flags: flag name → variable. */
  env?: Record<string, string>;
  run(values: Values, positionals: string[]): Promise<number | void> | number | void;
}

export const commands: Record<string, Subcommand> = {};
export function register(name: string, cmd: Subcommand): void {
  commands[name] = cmd;
}
