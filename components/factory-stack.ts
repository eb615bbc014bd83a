/** Composes a zone stack: one ZonalImage per planned image. No config reading here: the caller parses it. */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { cliFile } from "../builder/build-stamp";
import { projectRoot } from "../builder/system/paths";
import type { PlannedImage } from "../builder/core/plan";
import { environmentTags } from "../builder/core/release-spec";
import { formatCurrentBuilds } from "../builder/core/retention";
import { testCommercialType, type StackSettings } from "../builder/core/settings";
import { routeBuilds, type BuildPlace } from "../builder/core/build-hosts";
import { Retention } from "./retention";
import { ZonalImage, type FactoryCredentials, type RemoteBuild } from "./zonal-image";

/**
 * How the Commands start the image-factory CLI that `npm run build` compiled: by absolute path, derived from the
 * program's own location, so `pulumi up` may run from any directory. (Moving the checkout changes the Commands'
 * inputs, which re-runs them: publish then finds its artifact in the bucket.)
 */
export function factoryCli(root = projectRoot()): string {
  return `node '${cliFile(root).replace(/'/g, "'\\''")}'`;
}

/**
 * The content hashes whose battery passed, from the stack's previous `testedContentHashes` output (anything else,
 * e.g. no previous `up`, is none): their test Instances are not declared again.
 */
export function passedEarlier(previous: unknown): Set<string> {
  const r = z.array(z.string().regex(/^[0-9a-f]{64}$/)).safeParse(previous);
  return new Set(r.success ? r.data : []);
}

/** What the stack exports as `testedContentHashes`: every image's hash whose battery passed, sorted. */
export function testedContentHashes(images: ZonalImage[]): pulumi.Output<string[]> {
  return pulumi
    .all(images.map((i) => i.testedContentHash))
    .apply((h) => [...new Set(h.filter((x): x is string => !!x))].sort());
}

/**
 * Where each plan builds, or a ResourceError before anything is declared: a build with no host of its
 * architecture (arm64 on an x86_64 machine) must fail the preview, not halfway through `up`.
 */
export function buildPlaces(
  plans: PlannedImage[],
  settings: StackSettings,
  machine?: Parameters<typeof routeBuilds>[2],
): Map<string, BuildPlace> {
  const routing = routeBuilds(plans, settings.buildHosts, ...(machine ? [machine] : []));
  const problems = [...routing.problems];
  const remote = [...routing.byHash.values()].some((p) => p.kind === "remote");
  if (remote && typeof settings.buildHostPrivateKey !== "string")
    problems.push(
      "image-factory:buildHostPrivateKey: a build host is remote, but no private key is set: pulumi config set --secret buildHostPrivateKey < <key file>",
    );
  if (remote && settings.objectStorageSecretKey === undefined)
    problems.push(
      "image-factory:objectStorageSecretKey: a build host is remote and would hold the Scaleway API key: give the artifact Command an Object Storage key of its own (objectStorageAccessKey, and pulumi config set --secret objectStorageSecretKey)",
    );
  if ((settings.objectStorageAccessKey === undefined) !== (settings.objectStorageSecretKey === undefined))
    problems.push(
      "image-factory:objectStorageAccessKey and objectStorageSecretKey: set both or neither (they are one API key)",
    );
  if (problems.length)
    throw new pulumi.ResourceError(
      `stack ${pulumi.getStack()}: builds without a host:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
      undefined,
    );
  return routing.byHash;
}

/** The remote Command's view of a build place; undefined builds here. */
function remoteBuild(place: BuildPlace | undefined, settings: StackSettings): RemoteBuild | undefined {
  if (place?.kind !== "remote") return undefined;
  return { host: place.host, privateKey: pulumi.secret(settings.buildHostPrivateKey as string), cli: "image-factory" };
}

export function zonalImages(
  plans: PlannedImage[],
  settings: StackSettings,
  credentials: FactoryCredentials,
  opts?: pulumi.ComponentResourceOptions,
  passed: Set<string> = new Set(),
): ZonalImage[] {
  const places = buildPlaces(plans, settings);
  return plans.map(
    (plan) =>
      new ZonalImage(
        plan.name,
        {
          plan,
          bucket: settings.bucket,
          s3Endpoint: settings.s3Endpoint,
          apiUrl: settings.apiUrl,
          mirror: settings.mirror,
          ecosystemRepository: settings.ecosystemRepository,
          ecosystemVersion: settings.ecosystemVersion,
          credentials,
          projectId: settings.projectId,
          testCommercialType: testCommercialType(settings, plan.arch),
          runTests: settings.runTests,
          testedAlready: passed.has(plan.contentHash),
          keepPreviousVersions: settings.keepPreviousVersions,
          cli: factoryCli(),
          tags: environmentTags(settings),
          timeouts: settings,
          buildHost: remoteBuild(places.get(plan.contentHash), settings),
        },
        opts,
      ),
  );
}

/**
 * The stack's retention of previous versions (components/retention.ts), after every image of the stack; none
 * when the stack does not keep previous versions (a rebuild then deletes what it replaces).
 */
export function retention(
  plans: PlannedImage[],
  settings: StackSettings,
  credentials: FactoryCredentials,
  images: ZonalImage[],
  opts?: pulumi.ComponentResourceOptions,
): Retention | undefined {
  if (!settings.keepPreviousVersions) return undefined;
  // Named from the stack's zone, which never changes for a stack (a stack rename would otherwise move it).
  return new Retention(
    `retention-${settings.zone}`,
    {
      zone: settings.zone,
      current: formatCurrentBuilds(plans),
      credentials,
      projectId: settings.projectId,
      apiUrl: settings.apiUrl,
      timeout: settings.retentionTimeout,
      cli: factoryCli(),
      after: images,
    },
    opts,
  );
}
