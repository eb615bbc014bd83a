/**
 * The battery's scenario names and the verdicts of a group of scenarios that share one power cycle: each scenario
 * passes only when its own checks ran and held, so sharing a cycle never lets one pass on another's work.
 */
import type { CheckResult } from "../guest-checks";
import { ScenarioFailure } from "../battery-driver";

import type { ScenarioName } from "./names";

export { SCENARIOS, type ScenarioName } from "./names";

interface Verdict {
  status: "pass" | "fail";
  reason: string;
  seconds: number;
}

export class Verdicts {
  private readonly verdicts = new Map<ScenarioName, Verdict>();
  private readonly started = Date.now();

  constructor(readonly wanted: readonly ScenarioName[]) {}

  wants(name: ScenarioName): boolean {
    return this.wanted.includes(name);
  }

  private conclude(name: ScenarioName, status: "pass" | "fail", reason: string) {
    if (!this.wants(name) || this.verdicts.get(name)?.status === "fail") return;
    if (this.verdicts.has(name) && status === "pass") return;
    this.verdicts.set(name, { status, reason, seconds: (Date.now() - this.started) / 1000 });
  }

  /** Records a failed check of `name` (the first reason is kept) and lets the cycle go on. */
  check(name: ScenarioName, ok: unknown, reason: string): boolean {
    if (!ok) this.conclude(name, "fail", reason);
    return Boolean(ok);
  }

  /** `name`'s checks are all done: it passes unless one of them failed. */
  done(name: ScenarioName) {
    this.conclude(name, "pass", "");
  }

  /** The cycle broke: every wanted scenario not concluded yet fails with the reason. */
  abort(err: unknown) {
    const reason = err instanceof ScenarioFailure ? err.message : `${(err as Error).name}: ${(err as Error).message}`;
    for (const name of this.wanted) if (!this.verdicts.has(name)) this.conclude(name, "fail", `not reached: ${reason}`);
  }

  /**
   * Removals that failed in the group's cleanup fail every wanted scenario of it: a passed one with the cleanup as
   * its reason, a failed one keeping its own reason and naming the cleanup after it.
   */
  cleanupFailed(failures: readonly string[]) {
    if (!failures.length) return;
    const text = failures.join("; ");
    for (const name of this.wanted) {
      const v = this.verdicts.get(name);
      if (v?.status === "fail") v.reason = `${v.reason}; cleanup failed too: ${text}`;
      else
        this.verdicts.set(name, {
          status: "fail",
          reason: `cleanup failed: ${text}`,
          seconds: v?.seconds ?? (Date.now() - this.started) / 1000,
        });
    }
  }

  /** One result per wanted scenario; one the cycle never concluded fails rather than passing unproven. */
  results(): CheckResult[] {
    return this.wanted.map((name) => {
      const v = this.verdicts.get(name) ?? {
        status: "fail" as const,
        reason: "the cycle ended before this scenario was checked",
        seconds: (Date.now() - this.started) / 1000,
      };
      return { name, ...v };
    });
  }
}
