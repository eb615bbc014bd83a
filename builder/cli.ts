#!/usr/bin/env node
/**
 * image-factory: the build tooling the Pulumi program's Commands run, usable on its own. No Pulumi import.
 * Each subcommand takes flags, and falls back to FACTORY_* environment variables so Commands pass data through
 * `environment` rather than on a command line.
 */
import { CatalogError } from "../images";
import { StackConfigError } from "./core/settings";
import { closest, commandHelp, globalHelp, parseOptions } from "./cli/options";
import { UsageError } from "./cli/registry";
import { COMMAND_NAMES, loadAllCommands, loadCommand } from "./cli/command-modules";

export { UsageError };

/** Node 20 is end of life and @pulumi/pulumi needs 22: refuse to run on older rather than misbehave later. */
export const MIN_NODE_MAJOR = 22;

export async function main(argv: string[]): Promise<number> {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < MIN_NODE_MAJOR) {
    process.stderr.write(
      `image-factory: Node.js ${process.versions.node} is not supported (need >= ${MIN_NODE_MAJOR}); run it through scripts/dev, which installs a supported LTS\n`,
    );
    return 2;
  }
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    process.stdout.write(`${globalHelp(await loadAllCommands())}\n`);
    return name ? 0 : 2;
  }
  // Only the module of the command that runs is loaded (builder/cli/command-modules.ts).
  const cmd = await loadCommand(name);
  if (!cmd) {
    const suggestion = closest(name, [...COMMAND_NAMES]);
    process.stderr.write(
      `image-factory: unknown command "${name}"${suggestion ? `; did you mean ${suggestion}?` : ""}\n\n${globalHelp(await loadAllCommands())}\n`,
    );
    return 2;
  }
  const ended = rest.indexOf("--");
  if ((ended < 0 ? rest : rest.slice(0, ended)).some((a) => a === "--help" || a === "-h")) {
    process.stdout.write(`${commandHelp(name, cmd)}\n`);
    return 0;
  }
  try {
    const { values, positionals } = parseOptions(name, cmd.options, rest, process.env);
    return (await cmd.run(values, positionals)) ?? 0;
  } catch (err) {
    if (err instanceof CatalogError || err instanceof StackConfigError || err instanceof UsageError) {
      process.stderr.write(`image-factory ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`image-factory ${name}: error: ${(err as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`image-factory: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
