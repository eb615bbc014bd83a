/**
 * Retention of previous image versions (SCS-0102 `uuid_validity`). A rebuilt image is a new Instance image with a
 * new id; the one it replaces stays reachable by id for as long as its `uuid_validity` promised, renamed with its
 * build date (" YYYYMMDD") and hidden so that a lookup by name finds only the current one, then it is deleted.
 * Pure planning here; `applyRetention` carries a plan out through the Instance and Block APIs.
 */
import { SCS_TAG_PREFIX } from "./scs";

/** What retention needs of a live Instance image. */
export interface LiveImage {
  id: string;
  name: string;
  /** The API's architecture (`x86_64`, `arm64`), as the plan names it. */
  arch: string;
  tags: readonly string[];
  /** ISO creation time: orders versions built on the same day. */
  created: string;
  /** Block snapshots the image is made of (root first). */
  snapshotIds: readonly string[];
  /** Servers booted from it, by name, which must not lose it. */
  usedBy: readonly string[];
}

/** The current build of each `<release>/<arch>` in this zone, from the stack's plan. */
export type CurrentBuilds = ReadonlyMap<string, string>;

export type RetentionAction = "current" | "keep" | "mark" | "delete" | "leave";

export interface RetentionStep {
  action: RetentionAction;
  image: LiveImage;
  /** `<release>/<arch>` */
  key: string;
  /** For `mark`: the name it gets. */
  rename?: string;
  reason: string;
}

/** SCS-0102's `os_hidden`, as a tag (a Scaleway image has no properties); `public` is set to false too. */
export const HIDDEN_TAG = `${SCS_TAG_PREFIX}os_hidden=true`;
/** On a block snapshot whose image retention is deleting: lets a later run finish the job if this one is cut. */
export const RETIRED_SNAPSHOT_TAG = "factory:retired=true";
const DATE_SUFFIX = / \d{8}$/;
/**
 * `factory:status`: an image is a `candidate` from its creation until its test battery passes, then `released`.
 * Images made before the tag existed carry none and count as released (they were published only after passing).
 */
export const STATUS_TAG_KEY = "factory:status";
export type ReleaseStatus = "candidate" | "released";
export const statusTag = (status: ReleaseStatus) => `${STATUS_TAG_KEY}=${status}`;
/** The tags with their status set to `status`: any other status tag replaced, in place, or added last. */
export function withStatus(tags: readonly string[], status: ReleaseStatus): string[] {
  const at = tags.findIndex((t) => t.startsWith(`${STATUS_TAG_KEY}=`));
  const rest = tags.filter((t, i) => i === at || !t.startsWith(`${STATUS_TAG_KEY}=`));
  return at < 0
    ? [...rest, statusTag(status)]
    : rest.map((t) => (t.startsWith(`${STATUS_TAG_KEY}=`) ? statusTag(status) : t));
}

const tagValue = (tags: readonly string[], key: string) =>
  tags.find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1);

/** " 20261120": SCS-0102's rename of a superseded image, from its build date (its creation day when untagged). */
export function retiredName(image: LiveImage): string {
  const built = tagValue(image.tags, `${SCS_TAG_PREFIX}image_build_date`) ?? image.created.slice(0, 10);
  return `${image.name.replace(DATE_SUFFIX, "")} ${built.slice(0, 10).replaceAll("-", "")}`;
}

export const isHidden = (image: LiveImage) => image.tags.includes(HIDDEN_TAG);
export const isCandidate = (image: LiveImage) => tagValue(image.tags, STATUS_TAG_KEY) === "candidate";

/** Newest first: build date, then creation time. */
export function byAge(a: LiveImage, b: LiveImage): number {
  const date = (i: LiveImage) => `${tagValue(i.tags, `${SCS_TAG_PREFIX}image_build_date`) ?? ""} ${i.created}`;
  return date(b).localeCompare(date(a));
}

/**
 * What to do with each of the factory's images in a zone on day `at`. Per `<release>/<arch>`: images of the
 * current build stay as they are; previous versions are kept (renamed and hidden) while their own
 * `uuid_validity` holds — the promise made when they were published — and deleted after. Nothing is retired
 * before the current build exists in the zone, nothing a server boots from is deleted (it is hidden until it is
 * free), and an image that cannot be
 * judged (no `uuid_validity` tag) is left alone. Releases the stack no longer ships have no current build: all
 * their images are previous versions.
 * A candidate (its battery has not passed) is never current and never a previous version: with the planned hash it
 * is left to its battery, and until it passes every released version stays as it is, so a failed battery never
 * hides the last image that passed; an older candidate, never released nor promised to anyone, is deleted once no
 * server boots from it.
 */
export function planRetention(images: readonly LiveImage[], current: CurrentBuilds, at: string): RetentionStep[] {
  const groups = new Map<string, LiveImage[]>();
  for (const image of images) {
    const release = tagValue(image.tags, "factory:release");
    if (!release) continue;
    const key = `${release}/${image.arch}`;
    groups.set(key, [...(groups.get(key) ?? []), image]);
  }
  const steps: RetentionStep[] = [];
  for (const [key, group] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const hash = current.get(key);
    const planned = (i: LiveImage) => hash !== undefined && tagValue(i.tags, "factory:content-hash") === hash;
    const isCurrent = (i: LiveImage) => planned(i) && !isCandidate(i);
    const previous = group.filter((i) => !planned(i) && !isCandidate(i)).sort(byAge);
    for (const image of group.filter(isCurrent))
      steps.push({ action: "current", image, key, reason: `current build ${hash!.slice(0, 12)}` });
    for (const image of group.filter((i) => isCandidate(i))) {
      if (planned(image))
        steps.push({
          action: "leave",
          image,
          key,
          reason: `candidate of the current build ${hash!.slice(0, 12)}: its battery has not passed`,
        });
      else if (image.usedBy.length)
        steps.push({
          action: "leave",
          image,
          key,
          reason: `candidate never released, but servers still use it: ${image.usedBy.join(", ")}`,
        });
      else steps.push({ action: "delete", image, key, reason: "candidate never released, superseded" });
    }
    if (hash !== undefined && !group.some(isCurrent)) {
      for (const image of previous)
        steps.push({
          action: "leave",
          image,
          key,
          reason: `the current build ${hash.slice(0, 12)} is not released in this zone yet: nothing is retired before its successor is released`,
        });
      continue;
    }
    previous.forEach((image, age) => {
      const validity = tagValue(image.tags, `${SCS_TAG_PREFIX}uuid_validity`);
      const verdict = keepFor(validity, age, at);
      if (verdict === undefined) {
        steps.push({
          action: "leave",
          image,
          key,
          reason: `uuid_validity ${validity === undefined ? "is missing" : `"${validity}" is not understood`}: not judged`,
        });
        return;
      }
      // Expired but still booted from: hidden like a kept version, deleted by a later run once free.
      const inUse = !verdict.keep && image.usedBy.length > 0;
      if (verdict.keep || inUse) {
        const reason = inUse
          ? `${verdict.reason}, but servers still use it: ${image.usedBy.join(", ")}`
          : verdict.reason;
        const rename = retiredName(image);
        if (isHidden(image) && image.name === rename) steps.push({ action: "keep", image, key, reason });
        else steps.push({ action: "mark", image, key, rename, reason });
      } else {
        steps.push({ action: "delete", image, key, reason: verdict.reason });
      }
    });
  }
  return steps;
}

/** Whether the `age`-th previous version (0 = the one just replaced) is still promised on day `at`. */
function keepFor(validity: string | undefined, age: number, at: string): { keep: boolean; reason: string } | undefined {
  if (validity === undefined) return undefined;
  if (validity === "none") return { keep: false, reason: "uuid_validity none: valid only while it was current" };
  if (validity === "forever" || validity === "notice") return { keep: true, reason: `uuid_validity ${validity}` };
  const last = /^last-([1-9]\d*)$/.exec(validity);
  if (last) {
    const n = Number(last[1]);
    return age < n
      ? { keep: true, reason: `uuid_validity ${validity}: previous version ${age + 1} of ${n}` }
      : { keep: false, reason: `uuid_validity ${validity}: previous version ${age + 1}, beyond the last ${n}` };
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(validity))
    return at <= validity
      ? { keep: true, reason: `uuid_validity until ${validity}` }
      : { keep: false, reason: `uuid_validity ended ${validity}` };
  return undefined;
}

/** The tags a retired version carries: the hidden marker added once. */
export function hiddenTags(tags: readonly string[]): string[] {
  return tags.includes(HIDDEN_TAG) ? [...tags] : [...tags, HIDDEN_TAG];
}

/** `<release>/<arch>=<content hash>`, comma-separated: how the stack hands its current builds to the CLI. */
export function formatCurrentBuilds(
  plans: readonly { release: { id: string }; arch: string; contentHash: string }[],
): string {
  return plans
    .map((p) => `${p.release.id}/${p.arch}=${p.contentHash}`)
    .sort()
    .join(",");
}

export function parseCurrentBuilds(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [i, entry] of text
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean)
    .entries()) {
    const m = /^([a-z0-9][a-z0-9.-]*)\/(x86_64|arm64)=([0-9a-f]{64})$/.exec(entry);
    if (!m)
      throw new Error(`current build ${i + 1} "${entry}": expected <release>/<x86_64|arm64>=<sha256 content hash>`);
    const key = `${m[1]}/${m[2]}`;
    if (out.has(key)) throw new Error(`current build ${i + 1}: ${key} is given twice`);
    out.set(key, m[3]!);
  }
  return out;
}
