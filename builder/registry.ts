/** The CLI's subcommand registry, shared by cli.ts and the modules that add commands. */
import type { ParseArgsConfig } from "node:util";
import { ContractError, durationMs, flagVariables, readEnvironment, type Contract, type Read } from "./contract";

/** An error the user can act on: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;
export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Subcommand<C extends Contract = Contract> {
  summary: string;
  usage: string;
  options: Options;
  /** Environment variables that stand in for flags: flag name → variable. */
  env?: Record<string, string>;
  /**
   * The environment a Pulumi Command gives this subcommand (builder/contract.ts): read and checked before `run`,
   * which gets the typed values; its variables also stand in for their flags.
   */
  contract?: C;
  run(values: Values, positionals: string[], env: Read<C>): Promise<number | void> | number | void;
}

/** A registered subcommand, as cli.ts runs it: a contract's environment is read inside `run`. */
export type Registered = Omit<Subcommand, "run" | "contract"> & { run(values: Values, positionals: string[]): Promise<number | void> | number | void };

export const commands: Record<string, Registered> = {};

/** Ends a run that outlives FACTORY_TIMEOUT: a Command has no timeout of its own, so the CLI bounds itself. */
export async function bounded<T>(work: Promise<T>, timeout: string | undefined, name: string): Promise<T> {
  if (!timeout) return work;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not finish within FACTORY_TIMEOUT=${timeout}`)), durationMs(timeout));
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

export function register<C extends Contract>(name: string, cmd: Subcommand<C>): void {
  const { contract } = cmd;
  if (!contract) {
    commands[name] = { ...cmd, run: (values, positionals) => cmd.run(values, positionals, {} as Read<C>) };
    return;
  }
  commands[name] = {
    ...cmd,
    env: { ...flagVariables(contract), ...cmd.env },
    run(values, positionals) {
      let env: Read<C>;
      try {
        env = readEnvironment(contract, process.env, values);
      } catch (err) {
        if (err instanceof ContractError) throw new UsageError(err.message);
        throw err;
      }
      const timeout = (env as { timeout?: string }).timeout;
      return bounded(Promise.resolve(cmd.run(values, positionals, env)), timeout, `image-factory ${name}`);
    },
  };
}
