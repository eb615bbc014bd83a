/** Composes a zone stack: one ZonalImage per planned image. No config reading here: the caller parses it. */
import * as pulumi from "@pulumi/pulumi";
import type { PlannedImage } from "../builder/plan";
import { testCommercialType, type StackSettings } from "../builder/settings";
import { ZonalImage, type FactoryCredentials } from "./zonal-image";

/** How the Commands start the image-factory CLI; `npm run build` (or `prepare`) produced it. */
export const FACTORY_CLI = "node dist/builder/cli.js";

export function zonalImages(
  plans: PlannedImage[],
  settings: StackSettings,
  credentials: FactoryCredentials,
  opts?: pulumi.ComponentResourceOptions,
): ZonalImage[] {
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
          cli: FACTORY_CLI,
          tags: [`factory:environment=${settings.environment}`],
        },
        opts,
      ),
  );
}
