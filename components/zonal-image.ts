/**
 * One image in one Availability Zone: build + upload (a Command running the image-factory CLI), the block
 * snapshot imported from Object Storage, the Instance image, and a test Instance with the test battery after it.
 * Triggers are content hashes, so a stack diff is exactly the set of images whose inputs changed.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as scaleway from "@pulumiverse/scaleway";
import { overridesEnvironment, testServerName, type PlannedImage } from "../builder/plan";
import { SCS_TAG_PREFIX, scsTags } from "../builder/scs";

/** The build date in `image-factory publish`'s JSON result; empty while unknown (previews, a failed parse). */
export function imageBuildDate(publishOutput: string | undefined): string {
  try {
    const date = (JSON.parse(publishOutput ?? "") as { imageBuildDate?: unknown }).imageBuildDate;
    return typeof date === "string" && /^\d{4}-\d{2}-\d{2}$/.test(date) ? date : "";
  } catch {
    return "";
  }
}

/** Credentials the Commands need; passed through `environment` as secrets, never on a command line. */
export interface FactoryCredentials {
  /** Object Storage access key (S3 `AWS_ACCESS_KEY_ID`). */
  accessKey: pulumi.Input<string>;
  /** Object Storage secret key; must be a secret Output. */
  secretKey: pulumi.Input<string>;
}

export interface ZonalImageArgs {
  /** The planned image (release, architecture, zone, content hash, SCS metadata), from `planStack`. */
  plan: PlannedImage;
  /** Bucket in the zone's region holding the artifacts to import. */
  bucket: pulumi.Input<string>;
  /** S3 endpoint; defaults to the region's Object Storage endpoint. */
  s3Endpoint?: pulumi.Input<string>;
  /** Mirror to fetch upstream images through (`<mirror>/<host>/<path>`). */
  mirror?: pulumi.Input<string>;
  /** Repository serving the scaleway-ecosystem package. */
  ecosystemRepository: pulumi.Input<string>;
  /** The scaleway-ecosystem version to install. */
  ecosystemVersion: pulumi.Input<string>;
  credentials: FactoryCredentials;
  /** Scaleway Project owning the snapshot, image and test Instance; the provider's default when unset. */
  projectId?: pulumi.Input<string>;
  /** Commercial type of the test Instance (`DEV1-S`). Required when `runTests`. */
  testCommercialType?: pulumi.Input<string>;
  /** Boot a test Instance and run the test battery; the image counts as released only when it passes. */
  runTests: boolean;
  /** The command that runs the image-factory CLI (`node dist/builder/cli.js`). */
  cli: string;
  /**
   * Leave the snapshot and image in place when Pulumi replaces or deletes them, for the stack's retention Command
   * to keep (renamed, hidden) and delete as their SCS uuid_validity says. Off, a rebuild deletes what it replaces.
   */
  keepPreviousVersions?: boolean;
  /** Extra tags, merged last onto every Scaleway resource. */
  tags?: pulumi.Input<string>[];
  /** Scaleway API endpoint the test runner calls; the public API when unset (the emulator in the `local` stack). */
  apiUrl?: pulumi.Input<string>;
}

export class ZonalImage extends pulumi.ComponentResource {
  /** The artifact's object key (content-addressed). */
  public readonly artifactKey: pulumi.Output<string>;
  public readonly contentHash: pulumi.Output<string>;
  public readonly snapshotId: pulumi.Output<string>;
  public readonly imageId: pulumi.Output<string>;
  /** The test Instance's id, when tests run. */
  public readonly testServerId: pulumi.Output<string | undefined>;
  /** The image id once the test battery passed (or right away when tests are off): what a release publishes. */
  public readonly releasedImageId: pulumi.Output<string>;

  constructor(name: string, args: ZonalImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:index:ZonalImage", name, {}, opts);
    const { plan } = args;
    if (args.runTests && !args.testCommercialType) {
      throw new pulumi.ResourceError(`${name}: testCommercialType is required when runTests is true`, this);
    }
    if (plan.release.architectures.indexOf(plan.arch) < 0) {
      throw new pulumi.ResourceError(`${name}: ${plan.release.id} is not built for ${plan.arch}`, this);
    }

    const factoryTags = [
      `factory:release=${plan.release.id}`,
      `factory:label=${plan.release.label}`,
      `factory:content-hash=${plan.contentHash}`,
      `factory:release-epoch=${plan.hashInputs.releaseEpoch}`,
      ...scsTags(plan.scs),
    ];

    const s3Env = {
      AWS_ACCESS_KEY_ID: args.credentials.accessKey,
      AWS_SECRET_ACCESS_KEY: pulumi.secret(args.credentials.secretKey),
      FACTORY_S3_ENDPOINT: args.s3Endpoint ?? `https://s3.${plan.region}.scw.cloud`,
      FACTORY_S3_REGION: plan.region,
      FACTORY_BUCKET: args.bucket,
      FACTORY_KEY: plan.artifactKey,
      FACTORY_REF: `${pulumi.getStack()}/${name}`,
    };
    const artifact = new command.local.Command(
      `${name}-artifact`,
      {
        create: `${args.cli} publish`,
        delete: `${args.cli} unpublish`,
        environment: {
          ...s3Env,
          FACTORY_RELEASE: plan.release.id,
          FACTORY_ARCH: plan.arch,
          FACTORY_CONTENT_HASH: plan.contentHash,
          FACTORY_RELEASE_EPOCH: plan.hashInputs.releaseEpoch,
          FACTORY_SECURITY_EPOCH: String(plan.hashInputs.securityEpoch),
          FACTORY_ECOSYSTEM_VERSION: args.ecosystemVersion,
          FACTORY_ECOSYSTEM_REPOSITORY: args.ecosystemRepository,
          ...(plan.hashInputs.ecosystemKeyFingerprint ? { FACTORY_ECOSYSTEM_KEY_FINGERPRINT: plan.hashInputs.ecosystemKeyFingerprint } : {}),
          ...(args.mirror ? { FACTORY_MIRROR: args.mirror } : {}),
          ...overridesEnvironment(plan.overrides),
        },
        // The content hash is the only trigger: same inputs, same artifact, nothing runs again.
        triggers: [plan.contentHash],
        // Progress goes to stderr; stdout is the machine-readable manifest, not worth a log line per build.
        logging: "stderr",
      },
      { parent: this, additionalSecretOutputs: ["environment"] },
    );
    // SCS-0102's image_build_date is known once the artifact exists: publish reports its manifest's.
    const buildDate = artifact.stdout.apply(imageBuildDate);
    const tags = pulumi
      .all([args.tags ?? [], buildDate])
      .apply(([user, date]) => [...factoryTags, ...(date ? [`${SCS_TAG_PREFIX}image_build_date=${date}`] : []), ...user]);

    const snapshot = new scaleway.block.Snapshot(
      `${name}-snapshot`,
      {
        name: `${plan.name}-${plan.contentHash.slice(0, 12)}`,
        zone: plan.zone,
        projectId: args.projectId,
        import: { bucket: args.bucket, key: plan.artifactKey },
        tags,
      },
      { parent: this, dependsOn: [artifact], retainOnDelete: args.keepPreviousVersions === true },
    );

    const image = new scaleway.instance.Image(
      `${name}-image`,
      {
        name: plan.imageName,
        zone: plan.zone,
        projectId: args.projectId,
        rootVolumeId: snapshot.id,
        architecture: plan.arch,
        tags,
      },
      { parent: this, retainOnDelete: args.keepPreviousVersions === true },
    );

    let testServerId: pulumi.Output<string | undefined> = pulumi.output(undefined);
    let released: pulumi.Output<string> = image.id;
    if (args.runTests) {
      const server = new scaleway.instance.Server(
        `${name}-test-server`,
        {
          name: testServerName(plan),
          type: args.testCommercialType!,
          zone: plan.zone,
          projectId: args.projectId,
          image: image.id,
          rootVolume: { volumeType: "sbs_volume", sizeInGb: Number(plan.scs.min_disk) },
          enableDynamicIp: true,
          // Created stopped: the test runner authorises its ephemeral key, then makes the first boot itself.
          state: "stopped",
          tags: tags.apply((t) => [...t, "factory:role=test-instance"]),
        },
        { parent: this },
      );
      const tests = new command.local.Command(
        `${name}-tests`,
        {
          create: `${args.cli} test-instance`,
          environment: {
            FACTORY_SERVER_ID: server.id,
            FACTORY_ZONE: plan.zone,
            FACTORY_RELEASE: plan.release.id,
            SCW_ACCESS_KEY: args.credentials.accessKey,
            SCW_SECRET_KEY: pulumi.secret(args.credentials.secretKey),
            ...(args.projectId ? { SCW_DEFAULT_PROJECT_ID: args.projectId } : {}),
            ...(args.apiUrl ? { SCW_API_URL: args.apiUrl } : {}),
          },
          triggers: [server.id, plan.contentHash],
          // The results table goes to stderr, the JSON report to stdout.
          logging: "stderr",
        },
        { parent: this, dependsOn: [server], additionalSecretOutputs: ["environment"] },
      );
      testServerId = server.id;
      released = pulumi.all([image.id, tests.stdout]).apply(([id]) => id);
    }

    this.artifactKey = pulumi.output(plan.artifactKey);
    this.contentHash = pulumi.output(plan.contentHash);
    this.snapshotId = snapshot.id;
    this.imageId = image.id;
    this.testServerId = testServerId;
    this.releasedImageId = released;
    this.registerOutputs({
      artifactKey: this.artifactKey,
      contentHash: this.contentHash,
      snapshotId: this.snapshotId,
      imageId: this.imageId,
      testServerId: this.testServerId,
      releasedImageId: this.releasedImageId,
    });
  }
}
