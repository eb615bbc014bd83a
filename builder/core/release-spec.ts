/**
 * The release sequence of one planned image in one zone, as data: the block snapshot imported from the bucket, the
 * Instance image on it, the test Instance and the test Command's environment. The ZonalImage maps it to Pulumi
 * resources, the local job's emulated release to SDK calls: both read this, so the two cannot drift.
 * Pure: no Pulumi, no SDK, no I/O.
 */
import { TestInstanceContract, writeEnvironment, type Write } from "./contract";
import { testServerName, type PlannedImage } from "./plan";
import { statusTag, type ReleaseStatus } from "./retention";
import { SCS_TAG_PREFIX, scsTags } from "./scs";

/** What a release needs besides the plan: from the stack settings. */
export interface ReleaseSettings {
  /** Bucket in the zone's region holding the artifact. */
  bucket: string;
  /** Commercial type of the test Instance (for the plan's architecture). */
  testCommercialType: string;
  /** Extra tags, last on every resource (`factory:environment=prod`). */
  extraTags: string[];
  /**
   * `released` once this content hash passed its battery (or when tests are off), else `candidate`: the test
   * runner turns the image's tag to `released` when the battery passes, and the next `up` declares the same.
   */
  status?: ReleaseStatus;
}

export interface ReleaseSpec {
  zone: PlannedImage["zone"];
  /** Tags on the snapshot and the image (the test Instance adds its role); the build date joins them once known. */
  tags: string[];
  snapshot: { name: string; import: { bucket: string; key: string } };
  image: { name: string; architecture: PlannedImage["arch"] };
  server: {
    name: string;
    commercialType: string;
    rootVolume: { volumeType: "sbs_volume"; sizeInGb: number };
    /** Created stopped: the test runner authorises its ephemeral key, then makes the first boot itself. */
    state: "stopped";
    enableDynamicIp: true;
    bootType: "local";
    /** Added to `tags` on the test Instance. */
    roleTag: string;
  };
  /** The test Command's environment, besides the server id and the credentials. */
  test: { zone: PlannedImage["zone"]; release: string };
}

/** The stack's own tags, last on every resource. */
export function environmentTags(s: { environment: string }): string[] {
  return [`factory:environment=${s.environment}`];
}

/** The factory's tags of an image: provenance, the SCS-0102 metadata, then the stack's extra tags. */
export function releaseTags(plan: PlannedImage, extraTags: string[], status: ReleaseStatus = "candidate"): string[] {
  const factoryTags = [
    `factory:release=${plan.release.id}`,
    `factory:label=${plan.release.label}`,
    `factory:content-hash=${plan.contentHash}`,
    `factory:release-epoch=${plan.hashInputs.releaseEpoch}`,
    statusTag(status),
    ...scsTags(plan.scs),
  ];
  return [...factoryTags, ...extraTags];
}

/**
 * SCS-0102's image_build_date as a tag. `publish` always reports its manifest's date; an empty one means its
 * output was not what this code reads, and an image must not ship without the key, so it fails the release.
 */
export function buildDateTag(date: string, where: string): string {
  if (!date)
    throw new Error(
      `${where}: image-factory publish reported no imageBuildDate, so scs:image_build_date cannot be set`,
    );
  return `${SCS_TAG_PREFIX}image_build_date=${date}`;
}

/** The release's tags with the build date last, as the ZonalImage declares them once the artifact exists. */
export function withBuildDate(tags: string[], buildDate: string, where: string): string[] {
  return [...tags, buildDateTag(buildDate, where)];
}

export function releaseSpec(plan: PlannedImage, s: ReleaseSettings): ReleaseSpec {
  return {
    zone: plan.zone,
    tags: releaseTags(plan, s.extraTags, s.status),
    snapshot: {
      name: `${plan.name}-${plan.contentHash.slice(0, 12)}`,
      import: { bucket: s.bucket, key: plan.artifactKey },
    },
    image: { name: plan.imageName, architecture: plan.arch },
    server: {
      name: testServerName(plan),
      commercialType: s.testCommercialType,
      rootVolume: { volumeType: "sbs_volume", sizeInGb: Number(plan.scs.min_disk) },
      state: "stopped",
      enableDynamicIp: true,
      bootType: "local",
      roleTag: "factory:role=test-instance",
    },
    test: { zone: plan.zone, release: plan.release.id },
  };
}

/** What the test Command needs beyond the spec: the server and the API credentials (and the runner's options). */
export type TestRun<W> = Omit<Write<typeof TestInstanceContract, W>, "zone" | "release">;

/** The test Command's environment for a spec, through the contract the CLI reads. */
export function testEnvironment<W = never>(
  spec: ReleaseSpec,
  run: TestRun<W>,
  secret?: (v: string | W) => string | W,
): Record<string, string | W> {
  return writeEnvironment<typeof TestInstanceContract, W>(TestInstanceContract, { ...run, ...spec.test }, secret);
}

/** Scaleway counts volume sizes in bytes, GB being 10^9 (the provider's size_in_gb likewise). */
export const GB = 1_000_000_000;

/**
 * The emulated release's SDK requests (@scaleway/sdk-block and -instance), from the spec: the calls the provider
 * makes for the snapshot, image and server resources.
 */
export function sdkRequests(spec: ReleaseSpec, projectId: string, buildDate: string) {
  const tags = withBuildDate(spec.tags, buildDate, spec.image.name);
  return {
    importSnapshot: {
      zone: spec.zone,
      bucket: spec.snapshot.import.bucket,
      key: spec.snapshot.import.key,
      name: spec.snapshot.name,
      projectId,
      tags,
    },
    createImage: (snapshotId: string) => ({
      zone: spec.zone,
      name: spec.image.name,
      rootVolume: snapshotId,
      arch: spec.image.architecture,
      project: projectId,
      public: false,
      tags,
    }),
    createServer: (imageId: string) => ({
      zone: spec.zone,
      name: spec.server.name,
      commercialType: spec.server.commercialType,
      image: imageId,
      dynamicIpRequired: spec.server.enableDynamicIp,
      volumes: { "0": { volumeType: spec.server.rootVolume.volumeType, size: spec.server.rootVolume.sizeInGb * GB } },
      bootType: spec.server.bootType,
      project: projectId,
      protected: false,
      tags: [...tags, spec.server.roleTag],
    }),
    // Servers are created stopped, which is the spec's state: nothing to power on.
  };
}
