/**
 * The tags of a zonal image's snapshot, image and test Instance, as a list of separate elements.
 *
 * Why elements and not one Output: at preview the build date is unknown while the artifact Command is being
 * (re)created, and @pulumi/policy turns a mandatory rule that reads an unknown value into an advisory. One Output
 * for the whole list made every tag unknown, so the policy pack blocked nothing a pull request changed. Built
 * this way, every tag a mandatory rule reads comes from the plan (builder/core/release-spec.ts) and is known at
 * preview; only the build date's own element may be unknown, and only an advisory rule reads it (policy/rules.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import { buildDateTag } from "../builder/core/release-spec";

export { buildDateTag };

/**
 * The release's tags (known from the plan), then the build date: an Output of the artifact Command, unknown at
 * preview while it is created. Each element stays its own Input so the list itself is never unknown.
 */
export function imageTags(planned: string[], buildDate: pulumi.Output<string>, where: string): pulumi.Input<string>[] {
  return [...planned, buildDate.apply((d) => buildDateTag(d, where))];
}
