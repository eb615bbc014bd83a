/**
 * Runs the local job's steps (build, test battery) at the same time where they are independent, within the
 * machine's cores and memory. Each TCG guest and each libguestfs appliance keeps about one core busy and takes
 * 1–2 GiB, so the budget is what bounds the job, not a fixed count. A failed step does not stop the others; its
 * dependents are skipped with the reason.
 */

export interface Cost {
  /** Cores the step keeps busy. */
  cpus: number;
  memoryMiB: number;
}

export interface Step<T> {
  /** Unique among the steps, e.g. `build debian-12-x86_64`. */
  id: string;
  /** Steps that must have succeeded first. */
  needs: string[];
  cost: Cost;
  run: () => Promise<T>;
}

export type Outcome<T> =
  | { status: "done"; value: T; seconds: number }
  | { status: "failed"; error: Error; seconds: number }
  | { status: "skipped"; reason: string };

/** What the scheduler knows at a decision point: pure data, so the choice is a plain function. */
export interface Snapshot {
  steps: { id: string; needs: string[]; cost: Cost }[];
  running: string[];
  finished: Record<string, "done" | "failed" | "skipped">;
}

/** The machine's share for the job; `steps` caps how many run at once whatever they cost (1: one after another). */
export interface Budget extends Cost {
  steps?: number;
}

export type Decision = { start: string[]; skip: { id: string; reason: string }[] };

/** Steps unknown in `needs`, and dependency cycles, as errors naming the steps. */
export function validateSteps(steps: { id: string; needs: string[] }[]): string[] {
  const ids = new Set(steps.map((s) => s.id));
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const s of steps) {
    if (seen.has(s.id)) errors.push(`step "${s.id}" is declared twice`);
    seen.add(s.id);
    for (const n of s.needs) if (!ids.has(n)) errors.push(`step "${s.id}" needs "${n}", which is not a step`);
  }
  const byId = new Map(steps.map((s) => [s.id, s]));
  const state = new Map<string, "visiting" | "visited">();
  const visit = (id: string, path: string[]): void => {
    if (state.get(id) === "visited") return;
    if (state.get(id) === "visiting") {
      errors.push(`steps depend on each other in a cycle: ${[...path.slice(path.indexOf(id)), id].join(" -> ")}`);
      return;
    }
    state.set(id, "visiting");
    for (const n of byId.get(id)?.needs ?? []) if (byId.has(n)) visit(n, [...path, id]);
    state.set(id, "visited");
  };
  for (const s of steps) visit(s.id, []);
  return errors;
}

/**
 * Which steps to start now and which to skip, in declaration order. A step starts when its needs are done and its
 * cost fits beside what runs; one costing more than the whole budget still starts when nothing else runs, or it
 * would never run. Later steps may pass one that does not fit yet (the budget is a bound, not a queue).
 */
export function decide(s: Snapshot, budget: Budget): Decision {
  const decision: Decision = { start: [], skip: [] };
  const byId = new Map(s.steps.map((x) => [x.id, x]));
  const used = { cpus: 0, memoryMiB: 0 };
  const running = [...s.running];
  for (const id of running) {
    const c = byId.get(id)!.cost;
    used.cpus += c.cpus;
    used.memoryMiB += c.memoryMiB;
  }
  const finished = { ...s.finished };
  for (const step of s.steps) {
    if (finished[step.id] || running.includes(step.id)) continue;
    const blocked = step.needs.find((n) => finished[n] === "failed" || finished[n] === "skipped");
    if (blocked) {
      decision.skip.push({
        id: step.id,
        reason: `${blocked} ${finished[blocked] === "failed" ? "failed" : "was skipped"}`,
      });
      finished[step.id] = "skipped";
      continue;
    }
    if (!step.needs.every((n) => finished[n] === "done")) continue;
    const fits =
      running.length < (budget.steps ?? Infinity) &&
      used.cpus + step.cost.cpus <= budget.cpus + 1e-9 &&
      used.memoryMiB + step.cost.memoryMiB <= budget.memoryMiB;
    if (!fits && running.length) continue;
    decision.start.push(step.id);
    running.push(step.id);
    used.cpus += step.cost.cpus;
    used.memoryMiB += step.cost.memoryMiB;
  }
  return decision;
}

export interface ScheduleHooks {
  onStart?: (id: string) => void;
  onEnd?: (id: string, outcome: Outcome<unknown>) => void;
}

/** Runs every step as `decide` says; resolves with each step's outcome once none is left to run. */
export async function schedule<T>(
  steps: Step<T>[],
  budget: Budget,
  hooks: ScheduleHooks = {},
): Promise<Map<string, Outcome<T>>> {
  const errors = validateSteps(steps);
  if (errors.length) throw new Error(`the local job's steps are inconsistent:\n${errors.join("\n")}`);
  const outcomes = new Map<string, Outcome<T>>();
  const running = new Map<string, Promise<void>>();
  const byId = new Map(steps.map((s) => [s.id, s]));
  const plain = steps.map(({ id, needs, cost }) => ({ id, needs, cost }));
  for (;;) {
    const finished = Object.fromEntries([...outcomes].map(([id, o]) => [id, o.status]));
    const { start, skip } = decide({ steps: plain, running: [...running.keys()], finished }, budget);
    for (const { id, reason } of skip) {
      const o: Outcome<T> = { status: "skipped", reason };
      outcomes.set(id, o);
      hooks.onEnd?.(id, o);
    }
    for (const id of start) {
      const step = byId.get(id)!;
      hooks.onStart?.(id);
      const t0 = Date.now();
      running.set(
        id,
        (async () => {
          let o: Outcome<T>;
          try {
            o = { status: "done", value: await step.run(), seconds: (Date.now() - t0) / 1000 };
          } catch (err) {
            o = {
              status: "failed",
              error: err instanceof Error ? err : new Error(String(err)),
              seconds: (Date.now() - t0) / 1000,
            };
          }
          outcomes.set(id, o);
          running.delete(id);
          hooks.onEnd?.(id, o);
        })(),
      );
    }
    if (skip.length && !start.length && running.size === 0) continue;
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  return outcomes;
}

/** Cores and memory the local job may use: the machine's; `jobs` (FACTORY_LOCAL_JOBS, --jobs) caps the steps at once. */
export function machineBudget(cpus: number, availableMiB: number, jobsOverride?: string): Budget {
  const jobs = jobsOverride === undefined || jobsOverride === "" ? undefined : Number(jobsOverride);
  if (jobs !== undefined && !(Number.isInteger(jobs) && jobs >= 1))
    throw new Error(`FACTORY_LOCAL_JOBS (--jobs) must be a whole number of at least 1, not "${jobsOverride}"`);
  // Leave the host itself (Node, versitygw, the mirror, sshd) some memory.
  return { cpus: Math.max(1, cpus), memoryMiB: Math.max(1024, availableMiB - 1024), ...(jobs ? { steps: jobs } : {}) };
}
