/**
 * npm run bench: the speed and size goals, measured (never asserted in tests). Writes bench-results.json and
 * prints a table; `npm run bench -- --help` lists the cases and the environment variables that tune them.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { table } from "../../builder/core/table";
import type { Row } from "./common";
import {
  benchBoot,
  benchConcurrency,
  benchFirstSecond,
  benchLayering,
  benchSize,
  type MainJobOptions,
} from "./main-job";
import { benchBuildHosts } from "./build-hosts";
import { benchCustomiseVsPacker } from "./customise-vs-packer";
import { benchCustomise, benchUpload } from "./micro";

const list = (v: string | undefined) =>
  (v ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

const ENV: Record<string, string> = {
  BENCH_ONLY: "cases to run, comma-separated (default: every case, in the order listed)",
  BENCH_ROUNDS: "rounds of the side-by-side micro benches (default 2; upload runs at least 6)",
  BENCH_BOOTS: "boots for the boot median (default 3)",
  BENCH_IMAGES: "release ids for the main job cases (default: every image of the local stack)",
  BENCH_TESTS: "battery scenarios for the main job cases (default: all twelve)",
  BENCH_CACHE: "the first main job's per-user cache: cold (empty but for Node, a newcomer's; default) or warm (yours)",
  BENCH_APP: "the InstantApp of the layering case (default app-openvpn)",
  BENCH_OUT: "where the JSON goes (default bench-results.json)",
  BENCH_BUILD_HOSTS_N: "builds in the build-hosts case (default 2)",
  BENCH_KEEP: "1 keeps the work directory (states, caches) for a look afterwards",
};

/** A wrong setting: said in one line with the help, no stack trace. */
class UsageError extends Error {}

interface Case {
  what: string;
  run: (work: string) => Promise<Row[]>;
}

function mainOptions(work: string): MainJobOptions {
  const cache = process.env.BENCH_CACHE ?? "cold";
  if (cache !== "cold" && cache !== "warm") throw new UsageError(`BENCH_CACHE must be cold or warm, not "${cache}"`);
  const boots = Number(process.env.BENCH_BOOTS ?? 3);
  if (!Number.isInteger(boots) || boots < 1)
    throw new UsageError(`BENCH_BOOTS must be a whole number of at least 1, not "${process.env.BENCH_BOOTS}"`);
  return {
    work,
    images: list(process.env.BENCH_IMAGES),
    tests: list(process.env.BENCH_TESTS),
    cache,
    boots,
    app: process.env.BENCH_APP ?? "app-openvpn",
  };
}

const rounds = () => Number(process.env.BENCH_ROUNDS ?? 2);

const CASES: Record<string, Case> = {
  size: {
    what: "artifact / upstream size per image (a --no-test main job)",
    run: async (w) => benchSize(mainOptions(w)),
  },
  upload: {
    what: "our multipart upload vs @aws-sdk/lib-storage to the same local S3 server",
    run: async (w) => [await benchUpload(w, rounds())],
  },
  customise: {
    what: "our customise step vs bare virt-customize with the same operations",
    run: async (w) => [await benchCustomise(w, rounds())],
  },
  packer: {
    what: "our customise vs the same customisation done the Packer way (qemu builder)",
    run: async () => [await benchCustomiseVsPacker(rounds())],
  },
  "build-hosts": {
    what: "N builds on one SSH build host vs over two (BENCH_BUILD_HOSTS_N, default 2; both hosts are this machine)",
    run: async () => [await benchBuildHosts()],
  },
  boot: {
    what: "boot to verified SSH through the emulated API (median of BENCH_BOOTS), reboot beside it: TAP vs user networking",
    run: async (w) => benchBoot(mainOptions(w)),
  },
  layering: {
    what: "an InstantApp's build after its base vs from the upstream",
    run: async (w) => benchLayering(mainOptions(w)),
  },
  concurrency: {
    what: "the main job's wall time, serial (--jobs 1) vs concurrent",
    run: async (w) => benchConcurrency(mainOptions(w)),
  },
  main: {
    what: "first and second main job; battery and build per image",
    run: async (w) => benchFirstSecond(mainOptions(w)),
  },
};

function help(): string {
  const cases = Object.entries(CASES).map(([name, c]) => `  ${name.padEnd(12)} ${c.what}`);
  const env = Object.entries(ENV).map(([k, v]) => `  ${k.padEnd(12)} ${v}`);
  return ["usage: npm run bench [-- --help]", "", "cases:", ...cases, "", "environment:", ...env, ""].join("\n");
}

async function main(): Promise<number> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(help());
    return 0;
  }
  // The old positional case name still works.
  const only = list(process.env.BENCH_ONLY ?? process.argv[2]);
  const unknown = only.filter((n) => !(n in CASES));
  if (unknown.length) throw new UsageError(`BENCH_ONLY: unknown case(s) ${unknown.join(", ")}\n\n${help()}`);
  const selected = Object.entries(CASES).filter(([name]) => !only.length || only.includes(name));
  const missing = selected.filter(([, c]) => !c).map(([n]) => n);
  if (missing.length) throw new UsageError(`BENCH_ONLY: ${missing.join(", ")} is not on this branch`);
  mainOptions(""); // settings checked before hours of work, not after
  const work = mkdtempSync(join(tmpdir(), "factory-bench-"));
  const rows: Row[] = [];
  const errors: Record<string, string> = {};
  const started = new Date().toISOString();
  try {
    for (const [name, c] of selected) {
      process.stderr.write(`bench: ${name}: ${c!.what}\n`);
      // One case failing still leaves the others' figures.
      try {
        rows.push(...(await c!.run(work)));
      } catch (err) {
        errors[name] = (err as Error).message;
        process.stderr.write(`bench: ${name} failed: ${(err as Error).stack ?? String(err)}\n`);
      }
    }
  } finally {
    if (process.env.BENCH_KEEP === "1") process.stderr.write(`bench: kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
  const out = process.env.BENCH_OUT ?? "bench-results.json";
  const settings = Object.fromEntries(
    Object.keys(ENV)
      .filter((k) => process.env[k] !== undefined)
      .map((k) => [k, process.env[k]]),
  );
  writeFileSync(
    out,
    `${JSON.stringify({ started, ended: new Date().toISOString(), settings, results: rows, errors }, null, 2)}\n`,
  );
  const n = (x: number | undefined, d = 2) => (x === undefined ? "" : x.toFixed(d));
  process.stdout.write(
    `${table(
      ["bench", "ours", "baseline", "unit", "ratio", "goal", "met"],
      rows.map((r) => [
        r.bench,
        n(r.ours),
        n(r.baseline),
        r.unit,
        n(r.ratio, 3),
        r.goal,
        r.met === undefined ? "" : r.met ? "yes" : "NO",
      ]),
    )}\n${Object.entries(errors)
      .map(([k, v]) => `${k}: FAILED: ${v.split("\n")[0]}\n`)
      .join("")}(${out})\n`,
  );
  return Object.keys(errors).length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof UsageError ? err.message : ((err as Error).stack ?? String(err))}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
