/**
 * The `local` stack's main job on one machine: the fixture as upstream behind a loopback mirror, the factory's
 * scaleway-ecosystem repository, the embedded S3 server, then each planned image published exactly as the
 * ZonalImage Command does it (the same CLI, the same FACTORY_* environment).
 */
import { CreateBucketCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { loadCatalog, osBase } from "../../images";
import { run } from "../exec";
import { cacheDir, projectRoot } from "../paths";
import { planStack, type PlannedImage } from "../plan";
import { readStackSettings } from "../stack-files";
import { s3Client } from "../upload";
import { buildEcosystemRepo } from "./ecosystem-repo";
import { ensureFixture } from "./fixture";
import { serveDirectory } from "./http-server";
import { mirrorAs } from "./mirror";
import { startS3 } from "./s3-server";

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
}

/** The environment the ZonalImage's artifact Command gives `image-factory publish`. */
export function publishEnvironment(plan: PlannedImage, s: ReturnType<typeof readStackSettings>, s3: { endpoint: string; accessKeyId: string; secretAccessKey: string }, ref: string): NodeJS.ProcessEnv {
  return {
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    FACTORY_S3_ENDPOINT: s3.endpoint,
    FACTORY_S3_REGION: plan.region,
    FACTORY_BUCKET: s.bucket,
    FACTORY_KEY: plan.artifactKey,
    FACTORY_REF: ref,
    FACTORY_RELEASE: plan.release.id,
    FACTORY_ARCH: plan.arch,
    FACTORY_CONTENT_HASH: plan.contentHash,
    FACTORY_RELEASE_EPOCH: plan.hashInputs.releaseEpoch,
    FACTORY_SECURITY_EPOCH: String(plan.hashInputs.securityEpoch),
    FACTORY_ECOSYSTEM_VERSION: s.ecosystemVersion,
    FACTORY_ECOSYSTEM_REPOSITORY: s.ecosystemRepository,
    ...(s.mirror ? { FACTORY_MIRROR: s.mirror } : {}),
  };
}

export async function runLocalJob(): Promise<LocalJobResult[]> {
  const root = projectRoot();
  const catalog = loadCatalog();
  const settings = readStackSettings(root, LOCAL_STACK, catalog);
  const plans = planStack(catalog, settings);
  if (!settings.mirror || !settings.s3Endpoint) throw new Error("the local stack needs image-factory:mirror and image-factory:s3Endpoint");

  const fixture = await ensureFixture();
  // Where the local stack keeps its mirror tree and its S3 buckets between runs: per fixture, because a rebuilt
  // fixture is a different upstream under the same serial, which publish rightly refuses to paper over.
  const state = process.env.FACTORY_LOCAL_STATE ?? cacheDir("local", basename(fixture, ".qcow2"));
  const www = join(state, "www");
  rmSync(www, { recursive: true, force: true });
  mkdirSync(www, { recursive: true });
  for (const p of plans) {
    const os = osBase(catalog, p.release);
    if (os.upstream.signature) throw new Error(`${p.release.id}: the local mirror serves unsigned upstreams only (debian)`);
    await mirrorAs(www, os, p.arch, fixture);
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
      const out = JSON.parse(stdout) as { built: boolean; uploadedBytes: number };
      results.push({ image: plan.name, key: plan.artifactKey, built: out.built, uploadedBytes: out.uploadedBytes, seconds: (Date.now() - started) / 1000 });
    }
    const listed = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket }));
    process.stderr.write(`local: bucket ${settings.bucket} holds ${listed.KeyCount ?? 0} objects\n`);
  } finally {
    await mirror.close();
    await s3.stop();
  }
  return results;
}
