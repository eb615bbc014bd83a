/**
 * One image in one Availability Zone: build + upload (a Command running the image-factory CLI), the block
 * snapshot imported from Object Storage, the Instance image, and a test Instance with the test battery after it.
 * Triggers are content hashes, so a stack diff is exactly the set of images whose inputs changed.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as scaleway from "@pulumiverse/scaleway";
import { PublishContract, writeEnvironment } from "../builder/core/contract";
import type { BuildHost } from "../builder/core/build-hosts";
import type { PlannedImage } from "../builder/core/plan";
import type { StackSettings } from "../builder/core/settings";
import { releaseSpec, testEnvironment } from "../builder/core/release-spec";
import { imageTags } from "./tags";

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
  /** The release key (Ed25519 PKCS#8 PEM, stack config `releaseKey`) signing the provenance; must be a secret Output. */
  releaseKey?: pulumi.Input<string>;
  /**
   * The Object Storage key the artifact Command uses instead of `accessKey`/`secretKey` (stack config
   * `objectStorageAccessKey`/`objectStorageSecretKey`): it only builds and uploads, so it, and the build host it
   * runs on, need no Instance or Block rights. The secret key must be a secret Output.
   */
  objectStorage?: { accessKey: pulumi.Input<string>; secretKey: pulumi.Input<string> };
}

/** An SSH build host the artifact is built on, instead of this machine. */
export interface RemoteBuild {
  /** Address, port, user and the pinned host public key (stack config `buildHosts`). */
  host: BuildHost;
  /** The user's SSH private key; must be a secret Output. */
  privateKey: pulumi.Input<string>;
  /** How the host runs the CLI (`image-factory`, as the host preparation installs it). */
  cli: string;
}

/**
 * The artifact reference of a remote build differs from a local one's: switching hosts changes the Command's type
 * (local ↔ remote), so Pulumi creates the new Command before deleting the old one, whose `unpublish` must not drop
 * the reference the new one has just recorded.
 */
export const REMOTE_REF_SUFFIX = "@build-host";

export interface ZonalImageArgs {
  /** The planned image (release, architecture, zone, content hash, SCS metadata), from `planStack`. */
  plan: PlannedImage;
  /** Bucket in the zone's region holding the artifacts to import (stack config: part of the release spec). */
  bucket: string;
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
  testCommercialType?: string;
  /** Boot a test Instance and run the test battery; the image counts as released only when it passes. */
  runTests: boolean;
  /**
   * This content hash passed the battery in an earlier `up` (the stack's `testedContentHashes`): no test Instance
   * is declared, so Pulumi removes the one that ran, and the image is released.
   */
  testedAlready?: boolean;
  /** The command that runs the image-factory CLI (`node dist/builder/cli.js`). */
  cli: string;
  /**
   * Leave the snapshot and image in place when Pulumi replaces or deletes them, for the stack's retention Command
   * to keep (renamed, hidden) and delete as their SCS uuid_validity says. Off, a rebuild deletes what it replaces.
   */
  keepPreviousVersions?: boolean;
  /** Extra tags, merged last onto every Scaleway resource. */
  tags?: string[];
  /** Scaleway API endpoint the test runner calls; the public API when unset (the emulator in the `local` stack). */
  apiUrl?: pulumi.Input<string>;
  /** How long each waiting step may take (stack config, `90m`/`2h`); the provider's defaults and no bound when unset. */
  timeouts?: Partial<ReleaseTimeouts>;
  /** Build on this SSH host (a remote Command running the same CLI with the same environment); here when unset. */
  buildHost?: RemoteBuild;
}

/** The stack settings bounding each step that waits. */
export type ReleaseTimeouts = Pick<
  StackSettings,
  | "snapshotImportTimeout"
  | "imageTimeout"
  | "testServerTimeout"
  | "testServerDeleteTimeout"
  | "publishTimeout"
  | "testsTimeout"
>;

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
  /** The content hash once its battery passed (now or in an earlier `up`); undefined when tests are off. */
  public readonly testedContentHash: pulumi.Output<string | undefined>;

  constructor(name: string, args: ZonalImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:index:ZonalImage", name, {}, opts);
    const { plan } = args;
    if (args.runTests && !args.testCommercialType) {
      throw new pulumi.ResourceError(`${name}: testCommercialType is required when runTests is true`, this);
    }
    if (plan.release.architectures.indexOf(plan.arch) < 0) {
      throw new pulumi.ResourceError(`${name}: ${plan.release.id} is not built for ${plan.arch}`, this);
    }

    // The release sequence as data, shared with the local job's emulated release (builder/core/release-spec.ts).
    const t = args.timeouts ?? {};
    // A candidate until its battery passed (now, by the test runner's tag, or in an earlier up); released at once without tests.
    const status = !args.runTests || args.testedAlready ? "released" : "candidate";
    const spec = releaseSpec(plan, {
      bucket: args.bucket,
      testCommercialType: args.testCommercialType ?? "",
      extraTags: args.tags ?? [],
      status,
    });

    const remote = args.buildHost;
    const environment = writeEnvironment<typeof PublishContract, pulumi.Input<string>>(
      PublishContract,
      {
        accessKeyId: args.credentials.objectStorage?.accessKey ?? args.credentials.accessKey,
        secretAccessKey: args.credentials.objectStorage?.secretKey ?? args.credentials.secretKey,
        s3Endpoint: args.s3Endpoint ?? `https://s3.${plan.region}.scw.cloud`,
        s3Region: plan.region,
        bucket: args.bucket,
        key: plan.artifactKey,
        ref: `${pulumi.getStack()}/${name}${remote ? REMOTE_REF_SUFFIX : ""}`,
        release: plan.release.id,
        arch: plan.arch,
        contentHash: plan.contentHash,
        releaseEpoch: plan.hashInputs.releaseEpoch,
        securityEpoch: plan.hashInputs.securityEpoch,
        ecosystemVersion: args.ecosystemVersion,
        ecosystemRepository: args.ecosystemRepository,
        ecosystemKeyFingerprint: plan.hashInputs.ecosystemKeyFingerprint,
        mirror: args.mirror,
        releaseKey: args.credentials.releaseKey,
        ...plan.overrides,
        timeout: t.publishTimeout,
      },
      pulumi.secret,
    );
    const common = {
      environment,
      // The content hash is the only trigger: same inputs, same artifact, nothing runs again.
      triggers: [plan.contentHash],
      // Progress goes to stderr; stdout is the machine-readable manifest, not worth a log line per build.
      logging: "stderr" as const,
    };
    const artifact = remote
      ? new command.remote.Command(
          `${name}-artifact`,
          {
            ...common,
            create: `${remote.cli} publish`,
            delete: `${remote.cli} unpublish`,
            // The host key is compared with the pinned one, never accepted blindly; a dead host fails after a few
            // dials instead of the provider's 10 × 15 s. The environment needs `AcceptEnv FACTORY_* AWS_*` on the
            // host (the host preparation sets it): the provider passes it as SSH environment requests.
            connection: {
              host: remote.host.address,
              port: remote.host.port,
              user: remote.host.user,
              hostKey: remote.host.hostKey,
              privateKey: pulumi.secret(remote.privateKey),
              dialErrorLimit: 3,
              perDialTimeout: 15,
            },
          },
          { parent: this, additionalSecretOutputs: ["environment", "connection"] },
        )
      : new command.local.Command(
          `${name}-artifact`,
          { ...common, create: `${args.cli} publish`, delete: `${args.cli} unpublish` },
          { parent: this, additionalSecretOutputs: ["environment"] },
        );
    // SCS-0102's image_build_date is known once the artifact exists: publish reports its manifest's.
    // One element per tag (components/tags.ts): only the build date's may be unknown at preview.
    const tags = imageTags(spec.tags, artifact.stdout.apply(imageBuildDate), name);

    const snapshot = new scaleway.block.Snapshot(
      `${name}-snapshot`,
      {
        name: spec.snapshot.name,
        zone: spec.zone,
        projectId: args.projectId,
        import: spec.snapshot.import,
        tags,
      },
      {
        parent: this,
        dependsOn: [artifact],
        retainOnDelete: args.keepPreviousVersions === true,
        customTimeouts: { create: t.snapshotImportTimeout, update: t.snapshotImportTimeout },
      },
    );

    const image = new scaleway.instance.Image(
      `${name}-image`,
      {
        name: spec.image.name,
        zone: spec.zone,
        projectId: args.projectId,
        rootVolumeId: snapshot.id,
        architecture: spec.image.architecture,
        tags,
      },
      {
        parent: this,
        retainOnDelete: args.keepPreviousVersions === true,
        customTimeouts: { create: t.imageTimeout, update: t.imageTimeout, delete: t.imageTimeout },
      },
    );

    let testServerId: pulumi.Output<string | undefined> = pulumi.output(undefined);
    let released: pulumi.Output<string> = image.id;
    let tested: pulumi.Output<string | undefined> = pulumi.output(
      args.runTests && args.testedAlready ? plan.contentHash : undefined,
    );
    if (args.runTests && !args.testedAlready) {
      const server = new scaleway.instance.Server(
        `${name}-test-server`,
        {
          name: spec.server.name,
          type: spec.server.commercialType,
          zone: spec.zone,
          projectId: args.projectId,
          image: image.id,
          rootVolume: spec.server.rootVolume,
          enableDynamicIp: spec.server.enableDynamicIp,
          bootType: spec.server.bootType,
          state: spec.server.state,
          tags: [...tags, spec.server.roleTag],
        },
        // Deleting a server powers it on first (the provider's detach path), which a broken image can stall.
        {
          parent: this,
          customTimeouts: {
            create: t.testServerTimeout,
            update: t.testServerTimeout,
            delete: t.testServerDeleteTimeout,
          },
        },
      );
      const tests = new command.local.Command(
        `${name}-tests`,
        {
          create: `${args.cli} test-instance`,
          environment: testEnvironment<pulumi.Input<string>>(
            spec,
            {
              serverId: server.id,
              accessKey: args.credentials.accessKey,
              secretKey: args.credentials.secretKey,
              projectId: args.projectId,
              apiUrl: args.apiUrl,
              timeout: t.testsTimeout,
            },
            pulumi.secret,
          ),
          triggers: [server.id, plan.contentHash],
          // The results table goes to stderr, the JSON report to stdout.
          logging: "stderr",
        },
        { parent: this, dependsOn: [server], additionalSecretOutputs: ["environment"] },
      );
      testServerId = server.id;
      released = pulumi.all([image.id, tests.stdout]).apply(([id]) => id);
      tested = tests.stdout.apply(() => plan.contentHash);
    }

    this.artifactKey = pulumi.output(plan.artifactKey);
    this.contentHash = pulumi.output(plan.contentHash);
    this.snapshotId = snapshot.id;
    this.imageId = image.id;
    this.testServerId = testServerId;
    this.releasedImageId = released;
    this.testedContentHash = tested;
    this.registerOutputs({
      testedContentHash: this.testedContentHash,
      artifactKey: this.artifactKey,
      contentHash: this.contentHash,
      snapshotId: this.snapshotId,
      imageId: this.imageId,
      testServerId: this.testServerId,
      releasedImageId: this.releasedImageId,
    });
  }
}
