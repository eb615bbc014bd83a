/**
 * Which module registers each subcommand. The CLI loads only the module of the command it runs: a publish run (one
 * per image, from the Pulumi Command or the local job) need not load the doctor, the battery, the emulator's client
 * or the other commands' dependencies, which were half of its start-up. `--help` loads them all, so it still lists
 * every command and option.
 */
import { commands, type Registered } from "./registry";

/** In the order the help and the registry used when every module was imported up front. */
const MODULES: { names: readonly string[]; load: () => Promise<unknown> }[] = [
  {
    names: ["resolve", "fetch", "build", "upload", "publish", "unpublish"],
    load: () => import("./commands.js"),
  },
  { names: ["catalog", "plan"], load: () => import("./plan-commands.js") },
  { names: ["ecosystem-repo", "local", "test-local"], load: () => import("./local-commands.js") },
  { names: ["test-instance"], load: () => import("./test-instance-command.js") },
  {
    names: ["scs-check", "lifecycle", "check-upstream", "rollout", "retention"],
    load: () => import("./release-commands.js"),
  },
  { names: ["released"], load: () => import("./released-command.js") },
  { names: ["diff", "verify"], load: () => import("./supply-commands.js") },
  { names: ["doctor"], load: () => import("./doctor.js") },
];

/** Every subcommand's name, without loading any of them (for "did you mean"). */
export const COMMAND_NAMES: readonly string[] = MODULES.flatMap((m) => m.names);

/** The subcommand `name`, its module loaded; undefined when there is no such command. */
export async function loadCommand(name: string): Promise<Registered | undefined> {
  const owner = MODULES.find((m) => m.names.includes(name));
  if (!owner) return undefined;
  await owner.load();
  const cmd = commands[name];
  if (!cmd) throw new Error(`${name}: its module registers no such command (builder/cli/command-modules.ts is stale)`);
  return cmd;
}

/** Every subcommand, all modules loaded (in a fixed order, so the registry's order does not depend on timing). */
export async function loadAllCommands(): Promise<Record<string, Registered>> {
  for (const m of MODULES) await m.load();
  return commands;
}
