/**
 * The tags of a zonal image's snapshot, image and test Instance, as a list of separate elements.
 *
 * Why elements and not one Output: at preview the build date is unknown while the artifact Command is being
 * (re)created, and @pulumi/policy turns a mandatory rule that reads an unknown value into an advisory. One Output
 * for the whole list made every tag unknown, so the policy pack blocked nothing a pull request changed. Built
 * this way, every tag a mandatory rule reads comes from the plan and is known at preview; only the build date's
 * own element may be unknown, and only an advisory rule reads it (policy/rules.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import type { PlannedImage } from "../builder/plan";
import { SCS_TAG_PREFIX, scsTags } from "../builder/scs";

/** The role tag that tells the test Instance apart from the images it boots. */
export const TEST_INSTANCE_TAG = "factory:role=test-instance";

/** Provenance and SCS-0102 tags: a pure function of the plan, so known at preview. */
export function planTags(plan: Pick<PlannedImage, "release" | "contentHash" | "hashInputs" | "scs">): string[] {
  return [
    `factory:release=${plan.release.id}`,
    `factory:label=${plan.release.label}`,
    `factory:content-hash=${plan.contentHash}`,
    `factory:release-epoch=${plan.hashInputs.releaseEpoch}`,
    ...scsTags(plan.scs),
  ];
}

/**
 * SCS-0102's image_build_date as a tag. `publish` always reports its manifest's date; an empty one means its
 * output was not what this code reads, and an image must not ship without the key, so it fails the update.
 */
export function buildDateTag(date: string, where: string): string {
  if (!date) throw new Error(`${where}: image-factory publish reported no imageBuildDate, so scs:image_build_date cannot be set`);
  return `${SCS_TAG_PREFIX}image_build_date=${date}`;
}

/**
 * The tag list: the plan's tags, the build date (an Output of the artifact Command, unknown at preview while it is
 * created), then the user's tags last. Each element stays its own Input so the list itself is never unknown.
 */
export function imageTags(
  plan: Pick<PlannedImage, "name" | "release" | "contentHash" | "hashInputs" | "scs">,
  buildDate: pulumi.Output<string>,
  user: pulumi.Input<string>[] = [],
): pulumi.Input<string>[] {
  return [...planTags(plan), buildDate.apply((d) => buildDateTag(d, plan.name)), ...user];
}
