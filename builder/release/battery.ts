/**
 * The release test battery of one image in one zone, run against a test Instance: the in-guest checks, then the
 * blog's twelve scenarios, each a real API scenario that creates what it needs and removes it, even when it fails.
 * The scenarios live in scenarios/, the driver (API, SSH, guest probes) in battery-driver.ts; this file orders them
 * into groups, so that one power cycle serves every scenario that can share it (scenarios/power-cycles.ts).
 */
import { Battery, type BatteryOptions } from "./battery-driver";
import { runGuestChecks, type CheckResult } from "./guest-checks";
import type { SshSession } from "./ssh";
import { backupScenarios } from "./scenarios/backup";
import { networkScenarios } from "./scenarios/network";
import { cycleBoots, stopInPlace, stoppedAndRescued } from "./scenarios/power-cycles";
import { SCENARIOS, Verdicts, type ScenarioName } from "./scenarios/verdicts";
import { volumeScenarios } from "./scenarios/volumes";

export { answers, inSubnet, type BatteryOptions } from "./battery-driver";
export { SCENARIOS, type ScenarioName } from "./scenarios/verdicts";

export interface ScenarioGroup {
  scenarios: readonly ScenarioName[];
  /** Boots it costs for the wanted scenarios: of the test server, or of an Instance it creates. */
  boots(v: Pick<Verdicts, "wants">): number;
  run(b: Battery, v: Verdicts): Promise<void>;
}

/** A scenario that shares nothing: it passes when it returns. */
const alone = (name: ScenarioName, fn: (b: Battery) => Promise<void>, boots = 0): ScenarioGroup => ({
  scenarios: [name],
  boots: (v) => (v.wants(name) ? boots : 0),
  run: async (b, v) => {
    await fn(b);
    v.done(name);
  },
});

/** The battery in the order it runs: cheap checks on the running server first, then the power cycles. */
export const GROUPS: readonly ScenarioGroup[] = [
  alone("network", networkScenarios.network),
  alone("dns", networkScenarios.dns),
  alone("security group", networkScenarios["security group"]),
  alone("private networks", networkScenarios["private networks"]),
  alone("block volume", volumeScenarios["block volume"]),
  alone("hot snapshot", volumeScenarios["hot snapshot"]),
  { scenarios: ["stop in place"], boots: (v) => cycleBoots("stop in place", v), run: stopInPlace },
  {
    scenarios: ["archive", "cold snapshot", "rescue", "reboot"],
    boots: (v) => cycleBoots("stopped and rescued", v),
    run: stoppedAndRescued,
  },
  // The backup's image boots as a new Instance.
  alone("backup", backupScenarios.backup, 1),
];

/** The scenarios in the order the battery runs and reports them (grouped by the power cycle they share). */
export const RUN_ORDER: readonly ScenarioName[] = GROUPS.flatMap((g) => g.scenarios);

/** Boots a battery of these scenarios costs, the first boot of the test Instance included. */
export function plannedBoots(selected: readonly ScenarioName[]): number {
  return 1 + GROUPS.reduce((n, g) => n + g.boots(new Verdicts(g.scenarios.filter((s) => selected.includes(s)))), 0);
}

export interface BatteryReport {
  serverId: string;
  zone: string;
  results: CheckResult[];
}

/**
 * Boots the test Instance with the ephemeral key, runs the in-guest checks, then the scenario groups in order. A
 * failed group does not stop the others (each leaves the server running for the next); any failure fails the
 * battery.
 */
export async function runBattery(o: BatteryOptions): Promise<BatteryReport> {
  const selected = o.only?.length ? o.only : [...SCENARIOS];
  const unknown = selected.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
  if (unknown.length)
    throw new Error(`unknown test scenario(s): ${unknown.join(", ")} (known: ${SCENARIOS.join(", ")})`);
  const b = new Battery(o);
  await b.init();
  const results: CheckResult[] = [];
  try {
    const started = Date.now();
    o.log?.(`test: boot (${plannedBoots(selected as ScenarioName[])} boots planned)`);
    // The session the boot check logged in with runs the in-guest checks: no second handshake with the guest.
    let ssh: SshSession;
    try {
      await b.authorize(o.serverId);
      const s = await b.server();
      if (s.state === "running") await b.action(s.id, "reboot", "running");
      else await b.action(s.id, "poweron", "running");
      ssh = await b.connect();
      results.push({
        name: "boot: key accepted, host key verified",
        status: "pass",
        seconds: (Date.now() - started) / 1000,
        reason: "",
      });
    } catch (err) {
      results.push({
        name: "boot: key accepted, host key verified",
        status: "fail",
        seconds: (Date.now() - started) / 1000,
        reason: (err as Error).message,
      });
      for (const name of selected)
        results.push({ name, status: "skip", seconds: 0, reason: "the test Instance never accepted an SSH login" });
      return { serverId: o.serverId, zone: o.zone, results };
    }
    const server = await b.server();
    results.push(
      ...(await runGuestChecks(ssh, {
        hostname: server.hostname,
        releaseId: o.releaseId,
        publicIp: b.publicIpv4(server),
      })),
    );
    for (const group of GROUPS) {
      const v = new Verdicts(group.scenarios.filter((s) => selected.includes(s)));
      if (!v.wanted.length) continue;
      o.log?.(`test: ${v.wanted.join(", ")}`);
      try {
        await b.ensureRunning();
        await group.run(b, v);
      } catch (err) {
        v.abort(err);
      }
      v.cleanupFailed(b.takeCleanupFailures());
      results.push(...v.results());
    }
    return { serverId: o.serverId, zone: o.zone, results };
  } finally {
    await b.unauthorize(o.serverId).catch((e: Error) => o.log?.(`cleanup: key tag: ${e.message}`));
    b.dispose();
  }
}
