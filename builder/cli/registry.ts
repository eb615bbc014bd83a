/** The CLI's subcommand registry, shared by cli.ts and the modules that add commands. */
import { ContractError, durationMs, readEnvironment, type Contract, type Read } from "../core/contract";
import { UsageError, type OptionTable, type Values } from "./options";

export { UsageError, type OptionTable, type Values };

export interface Subcommand<C extends Contract = Contract> {
  /** One line for `image-factory --help`. */
  summary: string;
  /** Synopsis lines (`image-factory plan --stack NAME [--json]`): how the options combine. */
  usage: string;
  /** Every option, with its value, default, variable and description: parsing and `--help` come from it. */
  options: OptionTable;
  /** Variables read without a flag (credentials, FACTORY_TIMEOUT…): name → what it is and where to get it. */
  environment?: Record<string, string>;
  /**
   * The environment a Pulumi Command gives this subcommand (builder/core/contract.ts): read and checked before `run`,
   * which gets the typed values. Its flagged variables stand in for their options; the others must be described
   * in `environment` (or ENVIRONMENT) so the help lists them.
   */
  contract?: C;
  run(values: Values, positionals: string[], env: Read<C>): Promise<number | void> | number | void;
}

/** A registered subcommand, as cli.ts runs it: a contract's environment is read inside `run`. */
export type Registered = Omit<Subcommand, "run" | "contract"> & {
  environment: Record<string, string>;
  contract?: Contract;
  run(values: Values, positionals: string[]): Promise<number | void> | number | void;
};

/** Variables several subcommands read without a flag, described once for their help. */
export const ENVIRONMENT: Record<string, string> = {
  SCW_ACCESS_KEY: "Scaleway API access key (SCW + 17 characters): Scaleway console, IAM, API keys",
  SCW_SECRET_KEY: "Scaleway API secret key (a UUID), shown once when the API key is made",
  SCW_DEFAULT_PROJECT_ID: "the Scaleway Project owning the images (the stack's projectId)",
  SCW_API_URL: "another Scaleway API endpoint (the emulator's); the public API when unset",
  AWS_ACCESS_KEY_ID: "Object Storage access key; SCW_ACCESS_KEY when unset",
  AWS_SECRET_ACCESS_KEY: "Object Storage secret key; SCW_SECRET_KEY when unset",
  FACTORY_TIMEOUT: "end the run after this long (90m, 2h): a Command has no timeout of its own",
  FACTORY_CACHE: "the download and build cache; $XDG_CACHE_HOME/scw-image-factory by default",
  FACTORY_ACCEL: "kvm or tcg: the QEMU accelerator, instead of probing /dev/kvm",
  FACTORY_EMULATOR_NETWORK:
    "tap or user: the emulated machines' public network, instead of probing for an unprivileged network namespace",
  FACTORY_LOCAL_STATE: "where the local stack keeps its mirror tree and buckets between runs; in the cache by default",
  FACTORY_RELEASE_KEY:
    "the release key (Ed25519 PKCS#8 PEM, a secret) signing the provenance; unsigned with a warning when unset",
  FACTORY_APPLIANCE_SMP: "vCPUs of the libguestfs appliance; the host's cores (at most 4) by default",
  FACTORY_APPLIANCE_MEMSIZE: "memory of the libguestfs appliance in MiB; 2048 by default",
};

export const commands: Record<string, Registered> = {};

/** Ends a run that outlives FACTORY_TIMEOUT: a Command has no timeout of its own, so the CLI bounds itself. */
export async function bounded<T>(work: Promise<T>, timeout: string | undefined, name: string): Promise<T> {
  if (!timeout) return work;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${name} did not finish within FACTORY_TIMEOUT=${timeout}`)),
      durationMs(timeout),
    );
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A missing credential's problem, with where to get it. */
export function withHowTo(problem: string): string {
  const missing = /^([A-Z_]+) is not set$/.exec(problem)?.[1];
  return missing && ENVIRONMENT[missing] ? `${problem} (${ENVIRONMENT[missing]})` : problem;
}

/**
 * The option table and environment a contract implies: each flagged variable becomes its option's `env` (a
 * conflicting one is a programming error), each unflagged one is listed with its description.
 */
export function withContract(
  name: string,
  options: OptionTable,
  environment: Record<string, string>,
  contract: Contract,
): { options: OptionTable; environment: Record<string, string> } {
  const out: OptionTable = { ...options };
  const env = { ...environment };
  for (const variable of Object.values(contract)) {
    if (variable.flag) {
      const option = out[variable.flag];
      if (!option)
        throw new Error(
          `${name}: the contract's ${variable.name} stands for --${variable.flag}, which the option table lacks`,
        );
      if (option.env && option.env !== variable.name)
        throw new Error(`${name}: --${variable.flag} reads ${option.env}, the contract says ${variable.name}`);
      out[variable.flag] = { ...option, env: variable.name };
    } else {
      const description = environment[variable.name] ?? ENVIRONMENT[variable.name];
      if (!description) throw new Error(`${name}: the contract's ${variable.name} has no description for the help`);
      env[variable.name] = description;
    }
  }
  return { options: out, environment: env };
}

export function register<C extends Contract>(name: string, cmd: Subcommand<C>): void {
  const { contract } = cmd;
  if (!contract) {
    commands[name] = {
      ...cmd,
      environment: cmd.environment ?? {},
      run: (values, positionals) => cmd.run(values, positionals, {} as Read<C>),
    };
    return;
  }
  commands[name] = {
    ...cmd,
    ...withContract(name, cmd.options, cmd.environment ?? {}, contract),
    contract,
    run(values, positionals) {
      let env: Read<C>;
      try {
        env = readEnvironment(contract, process.env, values);
      } catch (err) {
        if (err instanceof ContractError) throw new UsageError(err.problems.map(withHowTo).join("; "));
        throw err;
      }
      const timeout = (env as { timeout?: string }).timeout;
      return bounded(Promise.resolve(cmd.run(values, positionals, env)), timeout, `image-factory ${name}`);
    },
  };
}
