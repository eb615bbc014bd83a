/**
 * The factory's preview-time rules, as plain functions over a resource's type and inputs, so tests call them
 * directly and the policy pack (index.ts) only wires them to the engine. Each returns the violations it finds.
 */
import { checkImageMetadata } from "../builder/scs-check";
import { scsFromTags } from "../builder/scs";

export const IMAGE = "scaleway:instance/image:Image";
export const SNAPSHOT = "scaleway:block/snapshot:Snapshot";
export const SERVER = "scaleway:instance/server:Server";

export interface Rule {
  name: string;
  description: string;
  /** Resource types the rule reads. */
  types: string[];
  check(type: string, props: Record<string, unknown>): string[];
}

const tagsOf = (props: Record<string, unknown>) => (Array.isArray(props.tags) ? (props.tags as unknown[]).filter((t): t is string => typeof t === "string") : []);

export const RULES: Rule[] = [
  {
    name: "scs-metadata-tags",
    description: "Images and their snapshots carry every mandatory SCS-0102 key as an scs:<key>=<value> tag, with a valid value.",
    types: [IMAGE, SNAPSHOT],
    check(_type, props) {
      const meta = scsFromTags(tagsOf(props));
      const built = tagsOf(props).find((t) => t.startsWith("scs:image_build_date="));
      return checkImageMetadata("", { ...meta, ...(built ? { image_build_date: built.split("=")[1] } : {}) }).map((f) => f.message);
    },
  },
  {
    name: "factory-provenance-tags",
    description: "Images and their snapshots name their release, content hash and release epoch.",
    types: [IMAGE, SNAPSHOT],
    check(_type, props) {
      const tags = tagsOf(props);
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
    description: "A test Instance's name is a valid hostname (Scaleway makes it the hostname; a guest cannot take an invalid one).",
    types: [SERVER],
    check(_type, props) {
      const name = String(props.name ?? "");
      return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name) ? [] : [`name "${name}" is not a valid hostname (lowercase letters, digits, inner hyphens, at most 63)`];
    },
  },
  {
    name: "content-addressed-qcow2-import",
    description: "Snapshots import a content-addressed qcow2 (images/<id>/<arch>/<sha256>.qcow2), which the block import accepts.",
    types: [SNAPSHOT],
    check(_type, props) {
      const key = String((props.import as { key?: unknown } | undefined)?.key ?? "");
      return /^images\/[a-z0-9.-]+\/(x86_64|arm64)\/[0-9a-f]{64}\.qcow2$/.test(key) ? [] : [`import key "${key}" is not images/<id>/<arch>/<sha256>.qcow2`];
    },
  },
];

/** The violations of every rule that reads `type`, each prefixed with its rule's name. */
export function violations(type: string, props: Record<string, unknown>): string[] {
  return RULES.filter((r) => r.types.includes(type)).flatMap((r) => r.check(type, props).map((m) => `${r.name}: ${m}`));
}

