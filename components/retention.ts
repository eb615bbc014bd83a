/**
 * The stack's retention of previous image versions, as a component: after every image of the zone is released,
 * keep the versions they replaced as their SCS uuid_validity promises (renamed with their build date, hidden) and
 * delete the expired ones, through `image-factory retention --apply`. Runs again whenever the set of current
 * builds changes; date-bound validity also needs the scheduled `image-factory retention --apply`.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { RetentionContract, writeEnvironment } from "../builder/core/contract";
import type { Zone } from "../builder/core/zones";
import type { FactoryCredentials } from "./zonal-image";

/** The Command's name as shipped: kept, so stacks that ran it keep their resource (see `aliases` below). */
export const RETENTION_COMMAND = "retention";

export interface RetentionArgs {
  /** The stack's Availability Zone, whose factory images retention reads and retires. */
  zone: Zone;
  /**
   * The stack's current builds, `<release>/<arch>=<content hash>,…` (`formatCurrentBuilds` of the plan): every
   * other factory image in the zone is a previous version. A change re-runs retention.
   */
  current: pulumi.Input<string>;
  /** The Scaleway API key pair; the secret key must be a secret Output (it is written as one regardless). */
  credentials: FactoryCredentials;
  /** Scaleway Project owning the images; the credentials' default when unset. */
  projectId?: pulumi.Input<string>;
  /** Scaleway API endpoint; the public API when unset (the emulator in the `local` stack). */
  apiUrl?: pulumi.Input<string>;
  /** How long the CLI may run before it ends itself (`30m`), as `FACTORY_TIMEOUT`. */
  timeout?: string;
  /** The command that runs the image-factory CLI (`node dist/builder/cli.js`). */
  cli: pulumi.Input<string>;
  /** The zone's images: retention runs only once every one of them is released. */
  after: pulumi.Input<pulumi.Resource>[];
}

export class Retention extends pulumi.ComponentResource {
  /** What `image-factory retention --apply` printed: the steps it took. */
  public readonly stdout: pulumi.Output<string>;

  constructor(name: string, args: RetentionArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:index:Retention", name, {}, opts);
    const cmd = new command.local.Command(
      RETENTION_COMMAND,
      {
        create: pulumi.interpolate`${args.cli} retention --apply`,
        environment: writeEnvironment<typeof RetentionContract, pulumi.Input<string>>(
          RetentionContract,
          {
            zone: args.zone,
            current: args.current,
            accessKey: args.credentials.accessKey,
            secretKey: args.credentials.secretKey,
            projectId: args.projectId,
            apiUrl: args.apiUrl,
            timeout: args.timeout,
          },
          pulumi.secret,
        ),
        triggers: [args.current],
        logging: "stderr",
      },
      {
        parent: this,
        dependsOn: args.after,
        additionalSecretOutputs: ["environment"],
        // Shipped as a root-level Command of the same name: the alias keeps that resource rather than creating a
        // new one (which would run retention again) and deleting the old.
        aliases: [{ parent: pulumi.rootStackResource }],
      },
    );
    this.stdout = cmd.stdout;
    this.registerOutputs({ stdout: this.stdout });
  }
}
