/**
 * The rules of rules.ts as @pulumi/policy resource policies, apart from index.ts (whose PolicyPack starts the
 * analyzer server) so tests can hand them to the library's own analyzer code.
 */
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { RULES } from "./rules";

export const PACK_NAME = "scw-image-factory";

export const policies: ResourceValidationPolicy[] = RULES.map((rule) => ({
  name: rule.name,
  description: rule.description,
  enforcementLevel: rule.enforcementLevel,
  validateResource: (args, reportViolation) => {
    if (!rule.types.includes(args.type)) return;
    for (const message of rule.check(args.type, args.props)) reportViolation(message);
  },
}));
