/**
 * The factory's policy pack: `pulumi preview --policy-pack dist/policy` (after `npm run build`) blocks a preview
 * whose images, snapshots or test Instances break the rules in rules.ts.
 */
import { PolicyPack } from "@pulumi/policy";
import { RULES } from "./rules";

new PolicyPack("scw-image-factory", {
  policies: RULES.map((rule) => ({
    name: rule.name,
    description: rule.description,
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
      if (!rule.types.includes(args.type)) return;
      for (const message of rule.check(args.type, args.props)) reportViolation(message);
    },
  })),
});
