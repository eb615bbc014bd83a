/**
 * Bench "builds of N images on 1 vs 2 hosts": N distinct artifacts (debian-12 and its security rebuilds, each a
 * real build from an empty cache) published through SSH build hosts on loopback, first all on one host one after
 * another (what one machine does today), then routed over two hosts by content hash as the program routes them,
 * each host building its share in turn and both at once. Both hosts are this machine: their builds share its
 * cores, so the ratio says what parallel builds gain here, not what two real machines would (about 1/2).
 */
import { join } from "node:path";
import { runOnHost } from "../../builder/pipeline/build-host-ssh";
import { hostIndex } from "../../builder/core/build-hosts";
import { buildHostEnv, HOST_CLI } from "../support/build-host-env";
import type { Row } from "./common";

/** The bench table's row (test/bench/common.ts), with a baseline measured side by side. */
export type BuildHostsRow = Row & Required<Pick<Row, "baseline" | "ratio" | "met" | "samples">>;

/**
 * Candidates `from`, `from + 1`, … taken in order until each host has its even share of `count` (host `h` of `hosts`
 * as `hostOf` routes it): the two-host side must really use both hosts, and routing by content hash alone may send
 * every image of a small N to one of them.
 */
export function evenShares(count: number, hosts: number, from: number, hostOf: (c: number) => number): number[][] {
  const base = Math.floor(count / hosts);
  // When count is not a multiple, the first hosts to reach `base` take one more each.
  let extra = count % hosts;
  const shares: number[][] = Array.from({ length: hosts }, () => []);
  for (let c = from; shares.flat().length < count; c++) {
    if (c - from > 64 * count)
      throw new Error(`bench build-hosts: no even split of ${count} images over ${hosts} hosts`);
    const share = shares[hostOf(c)]!;
    if (share.length < base) share.push(c);
    else if (share.length === base && extra > 0) {
      share.push(c);
      extra--;
    }
  }
  return shares;
}

/** Runs the comparison once; `n` images (BENCH_BUILD_HOSTS_N, default 2). Takes about 1.5·n TCG builds' time. */
export async function benchBuildHosts(n = Number(process.env.BENCH_BUILD_HOSTS_N ?? 2)): Promise<BuildHostsRow> {
  const e = await buildHostEnv(2);
  try {
    const publish = async (hostAt: number, security: number) => {
      const p = e.plan(security);
      const r = await runOnHost(
        e.target(e.hosts[hostAt]!),
        `FACTORY_CACHE='${join(e.work, `cache-${security}`)}' ${HOST_CLI} publish`,
        e.env(p),
      );
      if (r.code !== 0)
        throw new Error(
          `bench build-hosts: publish of ${p.name} (security ${security}) on host ${hostAt} exited ${r.code}: ${r.stderr.trim().split("\n").pop()}`,
        );
    };
    const wall = async (fn: () => Promise<unknown>) => {
      const t = Date.now();
      await fn();
      return (Date.now() - t) / 1000;
    };
    // Distinct security counters per side: nothing is in the bucket or a cache before its build.
    const one = await wall(async () => {
      for (let i = 1; i <= n; i++) await publish(0, i);
    });
    // Counters after the first side's, chosen so that the routing gives each host half of them.
    const byHost = evenShares(n, 2, n + 1, (s) => hostIndex(e.plan(s).contentHash, 2));
    const two = await wall(() =>
      Promise.all(
        byHost.map(async (share, h) => {
          for (const s of share) await publish(h, s);
        }),
      ),
    );
    const ratio = two / one;
    return {
      bench: `build-hosts: ${n} images on 2 hosts (${byHost.map((s) => s.length).join("+")}) vs 1`,
      ours: two,
      baseline: one,
      unit: "s",
      ratio,
      // Two hosts sharing this machine's cores: a gain at all is the goal here.
      goal: "ratio < 1 (same machine)",
      met: ratio < 1,
      samples: { ours: [two], baseline: [one] },
    };
  } finally {
    await e.stop();
  }
}
