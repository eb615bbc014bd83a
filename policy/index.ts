/**
 * The factory's policy pack: `pulumi preview --policy-pack dist/policy` (after `npm run build`) blocks a preview
 * whose images, snapshots or test Instances break the mandatory rules in rules.ts.
 */
import { PolicyPack } from "@pulumi/policy";
import { PACK_NAME, policies } from "./pack";

new PolicyPack(PACK_NAME, { policies });
