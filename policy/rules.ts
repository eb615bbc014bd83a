/**
 * The factory's preview-time rules, as plain functions over a resource's type and inputs, so tests call them
 * directly and the policy pack (pack.ts) only wires them to the engine. Each returns the violations it finds.
 *
 * At preview some inputs are unknown. @pulumi/policy hands a rule its inputs behind a proxy that throws
 * UnknownValueError when the rule reads an unknown value, and then reports that rule as an advisory, whatever its
 * level. So mandatory rules read only tags that are known (knownTags): every tag they need comes from the plan
 * (components/tags.ts), and only the build date, the artifact Command's output, can be unknown; its own rule is an
 * advisory.
 */
import { UnknownValueError } from "@pulumi/policy";
import { checkImageMetadata } from "../builder/core/scs-check";
import { scsFromTags } from "../builder/core/scs";

export const IMAGE = "scaleway:instance/image:Image";
export const SNAPSHOT = "scaleway:block/snapshot:Snapshot";
export const SERVER = "scaleway:instance/server:Server";

export interface Rule {
  name: string;
  description: string;
  /** Resource types the rule reads. */
  types: string[];
  /** mandatory blocks the preview or update; advisory only warns. */
  enforcementLevel: "mandatory" | "advisory";
  check(type: string, props: Record<string, unknown>): string[];
}

/**
 * The tags whose values are known, skipping the unknown elements one by one (a whole unknown list still throws,
 * so a rule cannot pass on nothing). Plain arrays, as the tests pass them, read the same.
 */
export function knownTags(props: Record<string, unknown>): string[] {
  const tags = props.tags;
  if (!Array.isArray(tags)) return [];
  const known: string[] = [];
  for (let i = 0; i < tags.length; i++) {
    try {
      const tag: unknown = tags[i];
      if (typeof tag === "string") known.push(tag);
    } catch (e) {
      if (!(e instanceof UnknownValueError)) throw e;
    }
  }
  return known;
}

/** Every tag, unknown ones included: reading an unknown element throws at preview, by design. */
const allTags = (props: Record<string, unknown>) =>
  Array.isArray(props.tags) ? (props.tags as unknown[]).filter((t): t is string => typeof t === "string") : [];

export const RULES: Rule[] = [
  {
    name: "scs-metadata-tags",
    description:
      "Images and their snapshots carry every mandatory SCS-0102 key as an scs:<key>=<value> tag, with a valid value.",
    types: [IMAGE, SNAPSHOT],
    enforcementLevel: "mandatory",
    check(_type, props) {
      const meta = scsFromTags(knownTags(props));
      return checkImageMetadata("", meta).map((f) => f.message);
    },
  },
  {
    name: "scs-image-build-date",
    description:
      "Images and their snapshots carry SCS-0102's image_build_date (YYYY-MM-DD), taken from the artifact's manifest.",
    types: [IMAGE, SNAPSHOT],
    // Unknown at preview while the artifact is built: a mandatory rule would be downgraded anyway, and must not
    // take the other keys with it.
    enforcementLevel: "advisory",
    check(_type, props) {
      const built = allTags(props).find((t) => t.startsWith("scs:image_build_date="));
      if (!built) return ["image_build_date is missing"];
      return checkImageMetadata("", { image_build_date: built.slice("scs:image_build_date=".length) })
        .filter((f) => f.rule === "SCS-0102 image_build_date")
        .map((f) => f.message);
    },
  },
  {
    name: "factory-provenance-tags",
    description: "Images and their snapshots name their release, content hash and release epoch.",
    types: [IMAGE, SNAPSHOT],
    enforcementLevel: "mandatory",
    check(_type, props) {
      const tags = knownTags(props);
      const value = (key: string) => tags.find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1);
      return [
        value("factory:release") ? "" : "no factory:release tag",
        /^[0-9a-f]{64}$/.test(value("factory:content-hash") ?? "") ? "" : "no factory:content-hash=<sha256> tag",
        /^\d{4}Q[1-4]$/.test(value("factory:release-epoch") ?? "") ? "" : "no factory:release-epoch=<YYYYQn> tag",
      ].filter(Boolean);
    },
  },
  {
    name: "test-server-hostname",
    description:
      "A test Instance's name is a valid hostname (Scaleway makes it the hostname; a guest cannot take an invalid one).",
    types: [SERVER],
    enforcementLevel: "mandatory",
    check(_type, props) {
      const name = String(props.name ?? "");
      return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)
        ? []
        : [`name "${name}" is not a valid hostname (lowercase letters, digits, inner hyphens, at most 63)`];
    },
  },
  {
    name: "content-addressed-qcow2-import",
    description:
      "Snapshots import a content-addressed qcow2 (images/<id>/<arch>/<sha256>.qcow2), which the block import accepts.",
    types: [SNAPSHOT],
    enforcementLevel: "mandatory",
    check(_type, props) {
      const key = String((props.import as { key?: unknown } | undefined)?.key ?? "");
      return /^images\/[a-z0-9.-]+\/(x86_64|arm64)\/[0-9a-f]{64}\.qcow2$/.test(key)
        ? []
        : [`import key "${key}" is not images/<id>/<arch>/<sha256>.qcow2`];
    },
  },
];

/** The violations of every rule that reads `type`, each prefixed with its rule's name. */
export function violations(type: string, props: Record<string, unknown>): string[] {
  return RULES.filter((r) => r.types.includes(type)).flatMap((r) => r.check(type, props).map((m) => `${r.name}: ${m}`));
}
