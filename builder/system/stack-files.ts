/** Reads stack files (`stacks/Pulumi.<stack>.yaml`) the way Pulumi does, for the CLI's plan and rollout views. */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { Catalog } from "../../images";
import { parseStackSettings, PROJECT, StackConfigError, type StackSettings } from "../core/settings";

/** Project-level defaults declared in Pulumi.yaml, as `image-factory:<key>` strings like Pulumi passes them. */
export function projectDefaults(projectDir: string): Record<string, string> {
  const project = parse(readFileSync(join(projectDir, "Pulumi.yaml"), "utf8")) as {
    config?: Record<string, { default?: unknown }>;
  };
  const out: Record<string, string> = {};
  for (const [key, spec] of Object.entries(project.config ?? {}))
    if (spec && spec.default !== undefined)
      out[`${PROJECT}:${key}`] = typeof spec.default === "string" ? spec.default : JSON.stringify(spec.default);
  return out;
}

export function stackNames(projectDir: string): string[] {
  return readdirSync(join(projectDir, "stacks"))
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => !!s)
    .sort();
}

export function readStackSettings(projectDir: string, stack: string, catalog: Catalog): StackSettings {
  const file = join(projectDir, "stacks", `Pulumi.${stack}.yaml`);
  let doc: { config?: Record<string, unknown> };
  try {
    doc = (parse(readFileSync(file, "utf8")) as typeof doc | null) ?? {};
  } catch (err) {
    throw new StackConfigError(stack, [`${file}: ${(err as Error).message}`]);
  }
  const config: Record<string, string> = { ...projectDefaults(projectDir) };
  for (const [key, value] of Object.entries(doc.config ?? {}))
    config[key] = typeof value === "string" ? value : JSON.stringify(value);
  return parseStackSettings(stack, config, catalog);
}
