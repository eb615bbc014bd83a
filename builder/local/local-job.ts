/**
 * The `local` stack's main job on one machine: the fixture as upstream behind a loopback mirror, the factory's
 * scaleway-ecosystem repository, the embedded S3 server, then each planned image published exactly as the
 * ZonalImage Command does it (the same CLI, the same FACTORY_* environment).
 */
import { CreateBucketCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { availableParallelism, freemem } from "node:os";
import { join } from "node:path";
import { loadCatalog, osBase, withOverrides } from "../../images";
import { WORDPRESS_TARBALL } from "../../images/apps";
import { run } from "../system/exec";
import { projectRoot } from "../system/paths";
import { PublishContract, writeEnvironment } from "../core/contract";
import { planStack, type PlannedImage } from "../core/plan";
import { readStackSettings } from "../system/stack-files";
import { objectContentHash, s3Client } from "../pipeline/upload";
import { localEcosystemVersion } from "./ecosystem-repo";
import { startLocalServices } from "./local-services";
import { TEST_RELEASE_KEY } from "./test-keys";
import { wordpressStandIn, type StandIn } from "./wordpress-standin";
import { accelerator, type Accelerator } from "../system/accel";
import { testCommercialType, type StackSettings } from "../core/settings";
import { environmentTags, releaseSpec, type ReleaseSpec } from "../core/release-spec";
import { LineSplitter, progress } from "./progress";
import { machineBudget, schedule, type Cost, type Outcome, type Step } from "./scheduler";

export const LOCAL_STACK = "local";

export interface LocalJobResult {
  image: string;
  key: string;
  built: boolean;
  uploadedBytes: number;
  /** The image's own steps, build and battery, added (not the wall time: other images ran beside them). */
  seconds: number;
  buildSeconds: number;
  testSeconds: number;
  /** The test battery on the emulated API: passed, failed, or already passed for this content hash. */
  tests: "passed" | "failed" | "passed earlier" | "not run";
  /** Why the image did not get through: the step that failed and its error, or the failed step it needed. */
  error?: string;
}

export interface LocalJobOptions {
  /** Release through the emulated Scaleway API: import, image, test Instance, battery. */
  test: boolean;
  /** Only these battery scenarios. */
  only?: string[];
  /** Only these of the stack's images (all when empty). */
  images?: string[];
  /** At most this many steps at once (1: one after another); by default as many as cores and memory allow. */
  jobs?: number;
}

/** Names the guest resolves in the DNS test: this machine's package mirror, the one name the sandboxed guest can reach. */
function localDnsNames(): string[] {
  const sources = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]
    .filter(existsSync)
    .map((f) => readFileSync(f, "utf8"))
    .join("\n");
  const host = /(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)https?:\/\/([^/\s]+)/.exec(sources)?.[1];
  return host ? [host] : ["localhost"];
}

/** The environment the ZonalImage's artifact Command gives `image-factory publish`. */
export function publishEnvironment(
  plan: PlannedImage,
  s: ReturnType<typeof readStackSettings>,
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string },
  ref: string,
): Record<string, string> {
  return writeEnvironment(PublishContract, {
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    s3Endpoint: s3.endpoint,
    s3Region: plan.region,
    bucket: s.bucket,
    key: plan.artifactKey,
    ref,
    release: plan.release.id,
    arch: plan.arch,
    contentHash: plan.contentHash,
    releaseEpoch: plan.hashInputs.releaseEpoch,
    securityEpoch: plan.hashInputs.securityEpoch,
    ecosystemVersion: s.ecosystemVersion,
    ecosystemRepository: s.ecosystemRepository,
    ecosystemKeyFingerprint: plan.hashInputs.ecosystemKeyFingerprint,
    mirror: s.mirror,
    // The committed throwaway release key: the local stack signs and verifies like a real one.
    releaseKey: readFileSync(TEST_RELEASE_KEY.secret, "utf8"),
    ...plan.overrides,
  });
}

/** The release spec the local stack's ZonalImage would get (components/factory-stack.ts passes the same). */
export function localReleaseSpec(plan: PlannedImage, settings: StackSettings): ReleaseSpec {
  return releaseSpec(plan, {
    bucket: settings.bucket,
    testCommercialType: testCommercialType(settings, plan.arch),
    extraTags: environmentTags(settings),
  });
}

/** Local files standing in for pinned downloads these machines cannot reach, by official URL. */
const STAND_INS: Record<string, () => Promise<StandIn>> = { [WORDPRESS_TARBALL]: wordpressStandIn };

/**
 * The local stack as the job runs it: its settings with the locally built ecosystem version and the stand-ins'
 * digests as source overrides, its plan, and the stand-in files to serve at their official URLs.
 */
export async function localStack(root = projectRoot()) {
  const catalog = loadCatalog();
  const stack = readStackSettings(root, LOCAL_STACK, catalog);
  const selected = withOverrides(catalog, stack).releases.filter(
    (r) => stack.images.includes("*") || stack.images.includes(r.id),
  );
  const downloads = new Set(
    selected
      .flatMap((r) => [...osBase(catalog, r).recipe, ...(r.kind === "app" ? r.recipe : [])])
      .flatMap((s) => (s.op === "fetch-file" ? [s.url] : [])),
  );
  const standIns: Record<string, StandIn> = {};
  for (const url of downloads) {
    const make = STAND_INS[url];
    if (!make) throw new Error(`the local stack has no stand-in for ${url}, which these machines cannot download`);
    standIns[url] = await make();
  }
  const settings = {
    ...stack,
    ecosystemVersion: localEcosystemVersion(stack.ecosystemVersion),
    sourceOverrides: {
      ...stack.sourceOverrides,
      ...Object.fromEntries(Object.entries(standIns).map(([url, s]) => [url, { sha256: s.sha256 }])),
    },
  };
  return { catalog, settings, plans: planStack(catalog, settings), standIns };
}

/** MemAvailable from /proc/meminfo (what the kernel could hand out without swapping), else free memory. */
function availableMiB(): number {
  const m = existsSync("/proc/meminfo")
    ? /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))
    : null;
  return Math.floor((m ? Number(m[1]) * 1024 : freemem()) / 2 ** 20);
}

/**
 * What one build or battery costs: a libguestfs appliance or a TCG guest keeps a core busy; under KVM the guest
 * mostly waits, so two fit per core. Memory: the appliance or guest (1 GiB) plus QEMU and the tools around it.
 */
export function stepCost(accel: Accelerator, kind: "build" | "test", published: boolean): Cost {
  // A build whose artifact is already in the bucket only checks it (a download hashed, no appliance): the three
  // of a second run go at once rather than two, then one.
  if (kind === "build" && published) return { cpus: 0.5, memoryMiB: 256 };
  return { cpus: accel === "kvm" ? 0.5 : 1, memoryMiB: 2048 };
}

/**
 * The steps of the job and what each needs: an image's battery needs its build, and an InstantApp's build needs
 * its base's when the base is in the same run (the base's artifact is published first, so an app layered on it
 * can start from it). An app whose artifact is already in the bucket under its planned hash builds nothing, so it
 * layers on nothing and waits for no base (a second run checks them all at once).
 */
export function jobSteps(
  plans: { name: string; releaseId: string; baseId?: string; arch: string; published?: boolean }[],
  test: boolean,
): { id: string; needs: string[]; image: string; kind: "build" | "test" }[] {
  return plans.flatMap((p) => {
    const base =
      p.baseId && !p.published ? plans.find((b) => b.releaseId === p.baseId && b.arch === p.arch) : undefined;
    const build = {
      id: `build ${p.name}`,
      needs: base ? [`build ${base.name}`] : [],
      image: p.name,
      kind: "build" as const,
    };
    return test ? [build, { id: `test ${p.name}`, needs: [build.id], image: p.name, kind: "test" as const }] : [build];
  });
}

export async function runLocalJob(opts: LocalJobOptions = { test: true }): Promise<LocalJobResult[]> {
  const root = projectRoot();
  const stack = await localStack(root);
  const { catalog, settings, standIns } = stack;
  const unknown = (opts.images ?? []).filter((id) => !stack.plans.some((p) => p.release.id === id));
  if (unknown.length)
    throw new Error(
      `--images: the local stack does not ship ${unknown.join(", ")} (it ships ${stack.plans.map((p) => p.release.id).join(", ")})`,
    );
  const plans = opts.images?.length ? stack.plans.filter((p) => opts.images!.includes(p.release.id)) : stack.plans;
  const stackCatalog = withOverrides(catalog, settings);
  const accel = await accelerator();
  const budget = machineBudget(
    availableParallelism(),
    availableMiB(),
    opts.jobs !== undefined ? String(opts.jobs) : process.env.FACTORY_LOCAL_JOBS,
  );
  const width = Math.max(...plans.map((p) => p.name.length)) + 6;
  const say = progress(undefined, undefined, width);

  const services = await startLocalServices({ settings, plans, catalog: stackCatalog, standIns });
  const { state, s3 } = services;
  try {
    const client = s3Client({ ...s3, bucket: settings.bucket });
    if (!existsSync(join(s3.root, settings.bucket)))
      await client.send(new CreateBucketCommand({ Bucket: settings.bucket }));
    const published = new Map<string, { built: boolean; uploadedBytes: number; imageBuildDate?: string }>();
    const tests = new Map<string, LocalJobResult["tests"]>();

    const build = async (plan: PlannedImage) => {
      const log = say.lane(plan.name, "build");
      log(`publishing (content hash ${plan.contentHash.slice(0, 16)})`);
      const lines = new LineSplitter(log);
      try {
        const { stdout } = await run(process.execPath, [join(root, "dist", "builder", "cli.js"), "publish"], {
          env: {
            ...process.env,
            // A build is scheduled as one core's worth: its appliance taking every core would oversubscribe the
            // machine while other steps run beside it (under TCG, vCPU threads then fight over the cores).
            ...(budget.steps === 1 || process.env.FACTORY_APPLIANCE_SMP ? {} : { FACTORY_APPLIANCE_SMP: "1" }),
            ...publishEnvironment(plan, settings, s3, `${LOCAL_STACK}/${plan.name}`),
          },
          onStderr: (d) => lines.push(d),
        });
        published.set(
          plan.name,
          JSON.parse(stdout) as { built: boolean; uploadedBytes: number; imageBuildDate?: string },
        );
      } finally {
        lines.flush();
      }
    };

    const test = async (plan: PlannedImage, publicNet: number) => {
      const log = say.lane(plan.name, "test");
      // Like the test Command's triggers: a content hash that passed once is not tested again.
      const passedMark = join(
        state,
        "tested",
        `${plan.name}-${plan.contentHash}${opts.only?.length ? `-${opts.only.join("+")}` : ""}.json`,
      );
      if (existsSync(passedMark)) {
        log("passed earlier for this content hash: not run again");
        tests.set(plan.name, "passed earlier");
        return;
      }
      mkdirSync(join(state, "tested"), { recursive: true });
      const report = join(state, "tested", `${plan.name}.report.json`);
      // Each image's release gets an emulated zone of its own: the battery counts whatever else is in its zone
      // as left behind, and each battery's Instances need public IPs no other release uses at the same time.
      // Loaded only when a battery runs: the emulator and QEMU's modules are most of the job's start-up otherwise.
      const { releaseThroughEmulator } = await import("./emulated-release.js");
      const released = await releaseThroughEmulator({
        stateDir: join(state, "emulator", plan.name),
        s3: { ...s3, region: plan.region },
        spec: localReleaseSpec(plan, settings),
        buildDate: published.get(plan.name)?.imageBuildDate ?? "",
        accel,
        publicNet,
        cli: join(root, "dist", "builder", "cli.js"),
        dnsNames: localDnsNames(),
        only: opts.only,
        reportFile: report,
        log,
      });
      let result: LocalJobResult["tests"] = released.passed ? "passed" : "failed";
      if (released.leftovers.length) {
        log(`the battery left behind: ${released.leftovers.join(", ")}`);
        result = "failed";
      }
      if (result === "passed") renameSync(report, passedMark);
      tests.set(plan.name, result);
      if (result === "failed") throw new Error(`the battery failed (report: ${report})`);
    };

    const inBucket = await Promise.all(
      plans.map(async (p) => (await objectContentHash(client, settings.bucket, p.artifactKey)) === p.contentHash),
    );
    const described = plans.map((p, i) => ({
      name: p.name,
      releaseId: p.release.id,
      arch: p.arch,
      baseId: p.release.kind === "app" ? osBase(stackCatalog, p.release).id : undefined,
      published: inBucket[i],
    }));
    const shape = jobSteps(described, opts.test);
    const steps: Step<void>[] = shape.map((s) => {
      const i = plans.findIndex((p) => p.name === s.image);
      const plan = plans[i]!;
      return {
        id: s.id,
        needs: s.needs,
        cost: stepCost(accel, s.kind, inBucket[i]!),
        run: () => (s.kind === "build" ? build(plan) : test(plan, 42 + i)),
      };
    });
    say.job(
      `${steps.length} steps for ${plans.length} images, ${accel}; at once: ${budget.steps ?? "as fit"} (${budget.cpus} cores, ${(budget.memoryMiB / 1024).toFixed(1)} GiB for guests)`,
    );
    const outcomes = await schedule(steps, budget, {
      onStart: (id) => say.job(`start ${id}`),
      onEnd: (id, o) =>
        say.job(
          o.status === "skipped"
            ? `skip ${id}: ${o.reason}`
            : o.status === "failed"
              ? `FAILED ${id} after ${o.seconds.toFixed(0)} s: ${o.error.message.split("\n")[0]}`
              : `done ${id} in ${o.seconds.toFixed(0)} s`,
        ),
    });

    const results = plans.map((plan): LocalJobResult => {
      const b = outcomes.get(`build ${plan.name}`);
      const t = outcomes.get(`test ${plan.name}`);
      const secs = (o: Outcome<void> | undefined) => (o && o.status !== "skipped" ? o.seconds : 0);
      const why = (step: string, o: Outcome<void> | undefined) =>
        o?.status === "failed"
          ? `${step}: ${o.error.message}`
          : o?.status === "skipped"
            ? `${step} skipped: ${o.reason}`
            : undefined;
      const out = published.get(plan.name);
      const error = why("build", b) ?? why("test", t);
      return {
        image: plan.name,
        key: plan.artifactKey,
        built: out?.built ?? false,
        uploadedBytes: out?.uploadedBytes ?? 0,
        buildSeconds: secs(b),
        testSeconds: secs(t),
        seconds: secs(b) + secs(t),
        tests: tests.get(plan.name) ?? (opts.test && t?.status !== "skipped" && t ? "failed" : "not run"),
        ...(error ? { error } : {}),
      };
    });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket }));
    say.job(
      `bucket ${settings.bucket} holds ${listed.KeyCount ?? 0} objects; wall time ${(say.elapsedMs() / 1000).toFixed(0)} s`,
    );
    return results;
  } finally {
    await services.close();
  }
}
