/**
 * The `local` stack's main job on one machine: the fixture as upstream behind a loopback mirror, the factory's
 * scaleway-ecosystem repository, the embedded S3 server, then each planned image published exactly as the
 * ZonalImage Command does it (the same CLI, the same FACTORY_* environment).
 */
import { CreateBucketCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { loadCatalog, osBase, withOverrides } from "../../images";
import { WORDPRESS_TARBALL } from "../../images/apps";
import { run } from "../exec";
import { cacheDir, projectRoot } from "../paths";
import { PublishContract, writeEnvironment } from "../contract";
import { planStack, type PlannedImage } from "../plan";
import { readStackSettings } from "../stack-files";
import { s3Client } from "../upload";
import { buildEcosystemRepo, localEcosystemVersion } from "./ecosystem-repo";
import { ensureFixture } from "./fixture";
import { serveDirectory } from "./http-server";
import { mirrorAs, mirrorPath, placeFile } from "./mirror";
import { TEST_KEYS } from "./test-keys";
import { wordpressStandIn, type StandIn } from "./wordpress-standin";
import { startS3 } from "./s3-server";
import { accelerator } from "../accel";
import { testCommercialType, type StackSettings } from "../settings";
import { environmentTags, releaseSpec, type ReleaseSpec } from "../release-spec";
import { releaseThroughEmulator } from "./emulated-release";

export const LOCAL_STACK = "local";

function portOf(url: string): number {
  return Number(new URL(url).port);
}

export interface LocalJobResult {
  image: string;
  key: string;
  built: boolean;
  uploadedBytes: number;
  seconds: number;
  /** The test battery on the emulated API: passed, failed, or already passed for this content hash. */
  tests: "passed" | "failed" | "passed earlier" | "not run";
}

export interface LocalJobOptions {
  /** Release through the emulated Scaleway API: import, image, test Instance, battery. */
  test: boolean;
  /** Only these battery scenarios. */
  only?: string[];
  /** Only these of the stack's images (all when empty). */
  images?: string[];
}

/** Names the guest resolves in the DNS test: this machine's package mirror, the one name the sandboxed guest can reach. */
function localDnsNames(): string[] {
  const sources = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"].filter(existsSync).map((f) => readFileSync(f, "utf8")).join("\n");
  const host = /(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)https?:\/\/([^/\s]+)/.exec(sources)?.[1];
  return host ? [host] : ["localhost"];
}

/** The environment the ZonalImage's artifact Command gives `image-factory publish`. */
export function publishEnvironment(plan: PlannedImage, s: ReturnType<typeof readStackSettings>, s3: { endpoint: string; accessKeyId: string; secretAccessKey: string }, ref: string): Record<string, string> {
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
    ...plan.overrides,
  });
}

/** The release spec the local stack's ZonalImage would get (components/factory-stack.ts passes the same). */
export function localReleaseSpec(plan: PlannedImage, settings: StackSettings): ReleaseSpec {
  return releaseSpec(plan, { bucket: settings.bucket, testCommercialType: testCommercialType(settings, plan.arch), extraTags: environmentTags(settings) });
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
  const selected = withOverrides(catalog, stack).releases.filter((r) => stack.images.includes("*") || stack.images.includes(r.id));
  const downloads = new Set(selected.flatMap((r) => [...osBase(catalog, r).recipe, ...(r.kind === "app" ? r.recipe : [])]).flatMap((s) => (s.op === "fetch-file" ? [s.url] : [])));
  const standIns: Record<string, StandIn> = {};
  for (const url of downloads) {
    const make = STAND_INS[url];
    if (!make) throw new Error(`the local stack has no stand-in for ${url}, which these machines cannot download`);
    standIns[url] = await make();
  }
  const settings = {
    ...stack,
    ecosystemVersion: localEcosystemVersion(stack.ecosystemVersion),
    sourceOverrides: { ...stack.sourceOverrides, ...Object.fromEntries(Object.entries(standIns).map(([url, s]) => [url, { sha256: s.sha256 }])) },
  };
  return { catalog, settings, plans: planStack(catalog, settings), standIns };
}

export async function runLocalJob(opts: LocalJobOptions = { test: true }): Promise<LocalJobResult[]> {
  const root = projectRoot();
  const stack = await localStack(root);
  const { catalog, settings, standIns } = stack;
  const unknown = (opts.images ?? []).filter((id) => !stack.plans.some((p) => p.release.id === id));
  if (unknown.length) throw new Error(`--images: the local stack does not ship ${unknown.join(", ")} (it ships ${stack.plans.map((p) => p.release.id).join(", ")})`);
  const plans = opts.images?.length ? stack.plans.filter((p) => opts.images!.includes(p.release.id)) : stack.plans;
  const stackCatalog = withOverrides(catalog, settings);
  if (!settings.mirror || !settings.s3Endpoint) throw new Error("the local stack needs image-factory:mirror and image-factory:s3Endpoint");

  const fixture = await ensureFixture();
  // Where the local stack keeps its mirror tree and its S3 buckets between runs: per fixture, because a rebuilt
  // fixture is a different upstream under the same serial, which publish rightly refuses to paper over.
  const state = process.env.FACTORY_LOCAL_STATE ?? cacheDir("local", `${basename(fixture, ".qcow2")}-${readFileSync(`${fixture}.sha256`, "utf8").trim().slice(0, 12)}`);
  const www = join(state, "www");
  rmSync(www, { recursive: true, force: true });
  mkdirSync(www, { recursive: true });
  for (const [url, standIn] of Object.entries(standIns)) placeFile(standIn.file, mirrorPath(www, url));
  for (const p of plans) {
    const os = osBase(stackCatalog, p.release);
    // Signed as the stack's upstreamSignatures say, with the committed test key the stack pins: the prod road.
    await mirrorAs(www, os, p.arch, fixture, TEST_KEYS.upstream);
  }
  await buildEcosystemRepo(join(www, "packages"), settings.ecosystemVersion);
  const mirror = await serveDirectory(www, portOf(settings.mirror));
  const s3 = await startS3(join(state, "s3"), portOf(settings.s3Endpoint), plans[0]?.region ?? "fr-par");
  const results: LocalJobResult[] = [];
  try {
    const client = s3Client({ ...s3, bucket: settings.bucket });
    if (!existsSync(join(s3.root, settings.bucket))) await client.send(new CreateBucketCommand({ Bucket: settings.bucket }));
    for (const plan of plans) {
      const started = Date.now();
      process.stderr.write(`local: publishing ${plan.name} (${plan.contentHash.slice(0, 16)})\n`);
      const { stdout } = await run(process.execPath, [join(root, "dist", "builder", "cli.js"), "publish"], {
        env: { ...process.env, ...publishEnvironment(plan, settings, s3, `${LOCAL_STACK}/${plan.name}`) },
        streamStderr: true,
      });
      const out = JSON.parse(stdout) as { built: boolean; uploadedBytes: number; imageBuildDate?: string };
      const result: LocalJobResult = { image: plan.name, key: plan.artifactKey, built: out.built, uploadedBytes: out.uploadedBytes, seconds: 0, tests: "not run" };
      // Like the test Command's triggers: a content hash that passed once is not tested again.
      const passedMark = join(state, "tested", `${plan.name}-${plan.contentHash}${opts.only?.length ? `-${opts.only.join("+")}` : ""}.json`);
      if (opts.test && existsSync(passedMark)) result.tests = "passed earlier";
      else if (opts.test) {
        mkdirSync(join(state, "tested"), { recursive: true });
        const report = join(state, "tested", `${plan.name}.report.json`);
        const released = await releaseThroughEmulator({
          stateDir: join(state, "emulator"), s3: { ...s3, region: plan.region }, spec: localReleaseSpec(plan, settings), buildDate: out.imageBuildDate ?? "",
          accel: await accelerator(),
          cli: join(root, "dist", "builder", "cli.js"), dnsNames: localDnsNames(), only: opts.only, reportFile: report,
          log: (line) => process.stderr.write(`${line}\n`),
        });
        result.tests = released.passed ? "passed" : "failed";
        if (released.leftovers.length) {
          process.stderr.write(`local: the battery left behind: ${released.leftovers.join(", ")}\n`);
          result.tests = "failed";
        }
        if (result.tests === "passed") renameSync(report, passedMark);
      }
      result.seconds = (Date.now() - started) / 1000;
      results.push(result);
    }
    const listed = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket }));
    process.stderr.write(`local: bucket ${settings.bucket} holds ${listed.KeyCount ?? 0} objects\n`);
  } finally {
    await mirror.close();
    await s3.stop();
  }
  return results;
}
