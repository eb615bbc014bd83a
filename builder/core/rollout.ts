/**
 * Rolling one environment out across its zone stacks in waves: canary zones first, then the rest; a wave with a
 * failed stack stops the rollout before the next wave. The wave logic is plain and takes any runner; the
 * engine's is components/automation.ts (Pulumi's Automation API), loaded only when a rollout runs.
 */
import { ZONES } from "./zones";

export interface StackOutcome {
  stack: string;
  ok: boolean;
  /** Resource operations by kind (create, replace, delete, update, same). */
  operations: Record<string, number>;
  error?: string;
}

export interface StackRunner {
  run(stack: string, op: "preview" | "up"): Promise<Omit<StackOutcome, "stack">>;
}

export interface RolloutReport {
  op: "preview" | "up";
  waves: { stacks: string[]; outcomes: StackOutcome[] }[];
  /** The wave (1-based) that failed and stopped the rollout. */
  stoppedAfter?: number;
}

/**
 * The waves for an environment: `spec` lists waves separated by `,`, the zones of a wave by `:`
 * (`fr-par-1:nl-ams-1:pl-waw-1,fr-par-2:…`); by default the first zone of each region, then the others. Every
 * zone must have a stack `<env>-<zone>`, and appear once.
 */
export function parseWaves(env: string, stacks: readonly string[], spec?: string): string[][] {
  const zonesOf = stacks.filter((s) => s.startsWith(`${env}-`)).map((s) => s.slice(env.length + 1));
  if (zonesOf.length === 0) throw new Error(`no stack of environment "${env}" (expected stacks named ${env}-<zone>)`);
  const waves = spec
    ? spec.split(",").map((w) =>
        w
          .split(":")
          .map((z) => z.trim())
          .filter(Boolean),
      )
    : [zonesOf.filter((z) => z.endsWith("-1")), zonesOf.filter((z) => !z.endsWith("-1"))].filter((w) => w.length);
  const seen = new Set<string>();
  for (const [i, wave] of waves.entries()) {
    if (wave.length === 0) throw new Error(`--waves: wave ${i + 1} is empty`);
    for (const zone of wave) {
      if (!(ZONES as readonly string[]).includes(zone))
        throw new Error(`--waves: "${zone}" (wave ${i + 1}) is not a Scaleway Availability Zone`);
      if (!zonesOf.includes(zone)) throw new Error(`--waves: no stack ${env}-${zone} for zone ${zone} (wave ${i + 1})`);
      if (seen.has(zone)) throw new Error(`--waves: zone ${zone} appears twice`);
      seen.add(zone);
    }
  }
  const missing = zonesOf.filter((z) => !seen.has(z));
  if (missing.length) throw new Error(`--waves: no wave for ${missing.map((z) => `${env}-${z}`).join(", ")}`);
  return waves.map((w) => w.map((z) => `${env}-${z}`));
}

/** Runs the waves in order, the stacks of a wave one after another; stops after a wave in which a stack failed. */
export async function rollout(
  waves: string[][],
  runner: StackRunner,
  op: "preview" | "up",
  log: (line: string) => void = () => {},
): Promise<RolloutReport> {
  const report: RolloutReport = { op, waves: [] };
  for (const [i, stacks] of waves.entries()) {
    log(`wave ${i + 1}/${waves.length}: ${stacks.join(", ")}`);
    const outcomes: StackOutcome[] = [];
    for (const stack of stacks) {
      const once = (o: "preview" | "up") =>
        runner.run(stack, o).catch((err: Error) => ({ ok: false, operations: {}, error: err.message.split("\n")[0] }));
      let outcome = await once(op);
      // The `up` after a passed battery no longer declares its test Instances (the stack's testedContentHashes):
      // run it right away, so they leave the zone now rather than at the next release.
      if (op === "up" && outcome.ok) {
        const settle = await once("up");
        outcome = { ...settle, operations: addOperations(outcome.operations, settle.operations) };
      }
      outcomes.push({ stack, ...outcome });
      log(`  ${stack}: ${outcome.ok ? "ok" : `failed: ${outcome.error}`}`);
    }
    report.waves.push({ stacks, outcomes });
    if (outcomes.some((o) => !o.ok)) {
      report.stoppedAfter = i + 1;
      break;
    }
  }
  return report;
}

/** Two runs' operation counts added up; `same` is the second run's (what stayed as it was in the end). */
function addOperations(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const sum: Record<string, number> = { ...a };
  for (const [k, n] of Object.entries(b)) sum[k] = k === "same" ? n : (sum[k] ?? 0) + n;
  return sum;
}

/** The rollout as Markdown (a pull request comment for `--preview`, a run summary for `up`). */
export function rolloutMarkdown(report: RolloutReport, total: number): string {
  const lines = [`## Rollout ${report.op === "preview" ? "preview" : ""}`.trim(), ""];
  for (const [i, wave] of report.waves.entries()) {
    lines.push(
      `### Wave ${i + 1}`,
      "",
      "| stack | result | create | replace | delete | update |",
      "| --- | --- | --- | --- | --- | --- |",
    );
    for (const o of wave.outcomes) {
      const n = (k: string) => String(o.operations[k] ?? 0);
      lines.push(
        `| ${o.stack} | ${o.ok ? "ok" : `failed: ${o.error ?? "error"}`} | ${n("create")} | ${n("replace")} | ${n("delete")} | ${n("update")} |`,
      );
    }
    lines.push("");
  }
  if (report.stoppedAfter !== undefined)
    lines.push(
      `Stopped after wave ${report.stoppedAfter}: ${total - report.waves.flatMap((w) => w.stacks).length} stacks not rolled out.`,
      "",
    );
  return lines.join("\n");
}
