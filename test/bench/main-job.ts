/**
 * Benches of the main job itself, each running the built CLI's `image-factory local` as a newcomer would, with
 * FACTORY_LOCAL_STATE in a fresh directory and FACTORY_CACHE chosen per case: empty (a newcomer's first run), the
 * user's own (warm), or the user's without its built artifacts (so builds really run).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { ensureFixture } from "../../builder/local/fixture";
import { localStack, type LocalJobResult } from "../../builder/local/local-job";
import { cacheDir, projectRoot } from "../../builder/system/paths";
import type { CheckResult } from "../../builder/release/guest-checks";
import { childrenCpuSeconds, median, runPassingStderr, seconds, type Row } from "./common";

export interface MainJobOptions {
  /** Where the cases make their state and cache directories. */
  work: string;
  /** Release ids for `--images` (all the stack's when empty). */
  images: string[];
  /** Battery scenarios for `--only` (all when empty). */
  tests: string[];
  /** First run's cache: "cold" is empty but for Node (the issue's newcomer), "warm" the user's own. */
  cache: "cold" | "warm";
  boots: number;
  app: string;
}

/**
 * A cache directory for one run: symlinks to the user's cache entries it keeps, so what they hold is reused and
 * what the run adds lands in the user's cache, while everything else starts empty.
 */
function cacheView(work: string, keep: (entry: string) => boolean): string {
  const dir = mkdtempSync(join(work, "cache-"));
  const real = cacheDir();
  if (existsSync(real)) for (const e of readdirSync(real).filter(keep)) symlinkSync(join(real, e), join(dir, e));
  return dir;
}
const cold = (work: string) => cacheView(work, (e) => e === "node");
const withoutArtifacts = (work: string) => cacheView(work, (e) => e !== "artifacts" && e !== "local");

async function local(
  args: string[],
  env: { state: string; cache?: string; network?: "tap" | "user" },
): Promise<{ wall: number; cpu?: number; results: LocalJobResult[]; code: number }> {
  const cli = join(projectRoot(), "dist", "builder", "cli.js");
  process.stderr.write(
    `bench: image-factory local ${args.join(" ")} (state ${env.state}${env.cache ? `, cache ${env.cache}` : ""})\n`,
  );
  let r = { stdout: "", code: 0 };
  const cpuBefore = childrenCpuSeconds();
  const wall = await seconds(async () => {
    r = await runPassingStderr(process.execPath, [cli, "local", "--json", ...args], {
      ...process.env,
      FACTORY_LOCAL_STATE: env.state,
      ...(env.cache ? { FACTORY_CACHE: env.cache } : {}),
      ...(env.network ? { FACTORY_EMULATOR_NETWORK: env.network } : {}),
    });
  });
  const cpuAfter = childrenCpuSeconds();
  let results: LocalJobResult[];
  try {
    results = JSON.parse(r.stdout) as LocalJobResult[];
  } catch {
    throw new Error(`image-factory local ${args.join(" ")} exited ${r.code} without a JSON result`);
  }
  const cpu = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
  return { wall, ...(cpu === undefined ? {} : { cpu }), results, code: r.code };
}

const imagesArg = (ids: string[]) => (ids.length ? ["--images", ids.join(",")] : []);
const onlyArg = (ids: string[]) => (ids.length ? ["--only", ids.join(",")] : []);
const fresh = (o: MainJobOptions, name: string) => {
  const d = join(o.work, name);
  mkdirSync(d, { recursive: true });
  return d;
};

/** Second runs of the main job timed for the median. */
const SECOND_RUNS = 3;

/** First and second main job on one fresh state; the battery and build of each image from the first. */
export async function benchFirstSecond(o: MainJobOptions): Promise<Row[]> {
  const state = fresh(o, "main-state");
  const cache = o.cache === "cold" ? cold(o.work) : undefined;
  const args = [...imagesArg(o.images), ...onlyArg(o.tests)];
  const first = await local(args, { state, cache });
  // The second run three times, for a median: a few seconds each, and the cores may be shared.
  const again = [];
  for (let i = 0; i < SECOND_RUNS; i++) again.push(await local(args, { state, cache }));
  const second = again[0]!;
  const cpus = again.flatMap((r) => (r.cpu === undefined ? [] : [r.cpu]));
  const failed = [...first.results, ...again.flatMap((r) => r.results)]
    .filter((r) => r.error || r.tests === "failed")
    .map((r) => `${r.image}: ${r.error ?? "tests failed"}`);
  const scope = `${o.images.join(",") || "all images"}${o.tests.length ? `, tests ${o.tests.join(",")}` : ""}`;
  return [
    {
      bench: `first main job (${o.cache} cache; ${scope})`,
      ours: first.wall,
      unit: "s",
      ratio: first.wall / 1200,
      goal: "<= 1200 s",
      met: first.wall <= 1200 && !failed.length,
      details: { results: first.results, failed },
    },
    {
      bench: `second main job (median of ${SECOND_RUNS})`,
      ours: median(again.map((r) => r.wall)),
      unit: "s",
      ratio: median(again.map((r) => r.wall)) / 5,
      goal: "<= 5 s",
      met: median(again.map((r) => r.wall)) <= 5,
      samples: { wall: again.map((r) => r.wall), ...(cpus.length ? { cpu: cpus } : {}) },
      details: { results: second.results },
    },
    ...(cpus.length
      ? [
          {
            bench: `second main job, CPU seconds of its processes (median of ${SECOND_RUNS})`,
            ours: median(cpus),
            unit: "s",
            goal: "(report: steadier than the wall time when the cores are shared)",
            samples: { cpu: cpus },
          },
        ]
      : []),
    ...first.results.map((r) => ({
      bench: `battery ${r.image}`,
      ours: r.testSeconds,
      unit: "s",
      ratio: r.testSeconds / 300,
      goal: "<= 300 s",
      met: r.testSeconds <= 300 && r.tests === "passed",
      details: { tests: r.tests, error: r.error },
    })),
    ...first.results.map((r) => ({
      bench: `build ${r.image}`,
      ours: r.buildSeconds,
      unit: "s",
      goal: "(report)",
      details: { built: r.built, uploadedMiB: r.uploadedBytes / 2 ** 20 },
    })),
  ];
}

/**
 * Boot to verified SSH through the emulated API, as the battery's first check measures it (power on to a login
 * with the published host key), over several releases of debian-12 with only the reboot scenario; the reboot's
 * own time beside it.
 */
/**
 * Boot to verified SSH and the reboot scenario, on the emulator's TAP network and on QEMU's user networking (the
 * fallback, where cloud-init's datasource loses its TIME_WAIT seconds), rounds interleaved so both meet the same
 * machine load.
 */
export async function benchBoot(o: MainJobOptions): Promise<Row[]> {
  const networks = ["tap", "user"] as const;
  const boots = { tap: [] as number[], user: [] as number[] };
  const reboots = { tap: [] as number[], user: [] as number[] };
  const { plans } = await localStack();
  const debian = plans.find((p) => p.release.id === "debian-12")!;
  for (let i = 0; i < o.boots; i++)
    for (const network of networks) {
      const state = fresh(o, `boot-state-${network}`);
      // A passed content hash is not tested again: forget it so each round boots.
      rmSync(join(state, "tested"), { recursive: true, force: true });
      const run = await local(["--images", "debian-12", "--only", "reboot"], { state, network });
      const mark = join(state, "tested", `${debian.name}-${debian.contentHash}-reboot.json`);
      if (!existsSync(mark))
        throw new Error(
          `boot round ${i + 1} (${network}): the battery did not pass (${run.results[0]?.error ?? "no report"})`,
        );
      const results = (JSON.parse(readFileSync(mark, "utf8")) as { results: CheckResult[] }).results;
      boots[network].push(results.find((r) => r.name.startsWith("boot:"))!.seconds);
      reboots[network].push(results.find((r) => r.name === "reboot")!.seconds);
      process.stderr.write(
        `bench boot round ${i + 1} (${network}): first boot to verified SSH ${boots[network].at(-1)!.toFixed(1)} s, reboot scenario ${reboots[network].at(-1)!.toFixed(1)} s\n`,
      );
    }
  const b = median(boots.tap);
  return [
    {
      bench: `boot to verified SSH (median of ${o.boots}), TAP network vs user networking`,
      ours: b,
      baseline: median(boots.user),
      unit: "s",
      ratio: b / median(boots.user),
      goal: "<= 30 s",
      met: b <= 30,
      samples: { ours: boots.tap, baseline: boots.user },
    },
    {
      bench: `reboot scenario (median of ${o.boots}), TAP network vs user networking`,
      ours: median(reboots.tap),
      baseline: median(reboots.user),
      unit: "s",
      ratio: median(reboots.tap) / median(reboots.user),
      goal: "(report)",
      samples: { ours: reboots.tap, baseline: reboots.user },
    },
  ];
}

/** The same main job one step at a time (`--jobs 1`) and as the scheduler runs it, builds included. */
export async function benchConcurrency(o: MainJobOptions): Promise<Row[]> {
  const args = [...imagesArg(o.images), ...onlyArg(o.tests)];
  const serial = await local(["--jobs", "1", ...args], {
    state: fresh(o, "serial-state"),
    cache: withoutArtifacts(o.work),
  });
  const concurrent = await local(args, { state: fresh(o, "concurrent-state"), cache: withoutArtifacts(o.work) });
  const failed = [...serial.results, ...concurrent.results]
    .filter((r) => r.error || r.tests === "failed")
    .map((r) => `${r.image}: ${r.error ?? "tests failed"}`);
  return [
    {
      bench: `main job wall time, concurrent vs serial (${o.images.join(",") || "all images"}${o.tests.length ? `, tests ${o.tests.join(",")}` : ""})`,
      ours: concurrent.wall,
      baseline: serial.wall,
      unit: "s",
      ratio: concurrent.wall / serial.wall,
      goal: "< 1.0x",
      met: concurrent.wall < serial.wall && !failed.length,
      details: { serial: serial.results, concurrent: concurrent.results, failed },
    },
  ];
}

/**
 * An InstantApp's build in a run with its base (where layering builds it from the base's published artifact) vs
 * alone (from the upstream), each on a fresh state and without cached artifacts.
 */
export async function benchLayering(o: MainJobOptions): Promise<Row[]> {
  const { catalog } = await localStack();
  const app = catalog.byId.get(o.app);
  if (!app || app.kind !== "app") throw new Error(`BENCH_APP: ${o.app} is not an InstantApp of the catalog`);
  const withBase = await local(["--no-test", "--images", `${app.base},${app.id}`], {
    state: fresh(o, "layer-base-state"),
    cache: withoutArtifacts(o.work),
  });
  const alone = await local(["--no-test", "--images", app.id], {
    state: fresh(o, "layer-upstream-state"),
    cache: withoutArtifacts(o.work),
  });
  const secs = (r: { results: LocalJobResult[] }) =>
    r.results.find((x) => x.image.startsWith(`${app.id}-`))!.buildSeconds;
  return [
    {
      bench: `build ${app.id}: after its base vs from the upstream`,
      ours: secs(withBase),
      baseline: secs(alone),
      unit: "s",
      ratio: secs(withBase) / secs(alone),
      goal: "< 1.0x",
      met: secs(withBase) < secs(alone),
      details: { withBase: withBase.results, alone: alone.results },
    },
  ];
}

/** Each artifact's size against its upstream's (the fixture every local image starts from). */
export async function benchSize(o: MainJobOptions): Promise<Row[]> {
  const state = fresh(o, "size-state");
  const { settings } = await localStack();
  const run = await local(["--no-test", ...imagesArg(o.images)], { state });
  const upstream = statSync(await ensureFixture()).size;
  return run.results.map((r) => {
    const size = statSync(join(state, "s3", settings.bucket, r.key)).size;
    const base = !r.image.startsWith("app-");
    return {
      bench: `artifact / upstream size ${r.image}`,
      ours: size / 2 ** 20,
      baseline: upstream / 2 ** 20,
      unit: "MiB",
      ratio: size / upstream,
      goal: base ? "<= 1.0x" : "(report)",
      ...(base ? { met: size <= upstream } : {}),
    };
  });
}
