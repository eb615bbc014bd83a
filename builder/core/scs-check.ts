/**
 * SCS conformance of the catalog and of live images: SCS-0102 (image metadata: mandatory keys, allowed values,
 * date forms, recency against replace_frequency, one generic image per distribution, version and architecture)
 * and SCS-0104 (permissible image_source forms, the mandatory Ubuntu LTS, the recommended images). Pure
 * functions: the CLI feeds them the catalog, or the tags of the images a zone holds.
 */
import { OS_PURPOSES, REPLACE_FREQUENCIES } from "../../images/schema";
import type { Catalog } from "../../images";
import { SCS_KEYS, scsMetadata } from "./scs";

export type Severity = "error" | "warning";
export interface Finding {
  severity: Severity;
  /** The image or release the finding is about. */
  subject: string;
  /** The standard and rule, e.g. `SCS-0102 mandatory key`. */
  rule: string;
  message: string;
}

/** Metadata as SCS-0102 sees one image: the derived keys plus the build date (from the manifest or a tag). */
export type ImageMetadata = Partial<Record<(typeof SCS_KEYS)[number] | "image_build_date", string | number>>;

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const BUILD_DATE = /^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$/;

/** How old an image may be for its replace_frequency (days, with SCS-0102's allowance for the release process). */
export const MAX_AGE_DAYS: Partial<Record<(typeof REPLACE_FREQUENCIES)[number], number>> = {
  yearly: 365 + 30,
  quarterly: 92 + 14,
  monthly: 31 + 7,
  weekly: 7 + 2,
  daily: 1 + 1,
};

const days = (from: string, to: string) =>
  (Date.parse(`${to.slice(0, 10)}T00:00:00Z`) - Date.parse(`${from.slice(0, 10)}T00:00:00Z`)) / 86_400_000;

/**
 * SCS-0102 rules for one image's metadata, judged on day `at` (YYYY-MM-DD). A built image (`built: true`: a
 * live image or a manifest) must also carry its build date, which must be recent enough for its
 * replace_frequency; a catalog entry has none yet. A hidden image (a previous version kept for its
 * uuid_validity) is not what its name refers to any more: replace_frequency and provided_until do not apply.
 */
export function checkImageMetadata(
  subject: string,
  meta: ImageMetadata,
  opts: { at?: string; built?: boolean; hidden?: boolean } = {},
): Finding[] {
  const { at } = opts;
  const out: Finding[] = [];
  const err = (rule: string, message: string) =>
    out.push({ severity: "error", subject, rule: `SCS-0102 ${rule}`, message });
  for (const key of [
    ...SCS_KEYS.filter((k) => k !== "image_description"),
    ...(opts.built ? (["image_build_date"] as const) : []),
  ])
    if (meta[key] === undefined || meta[key] === "") err("mandatory key", `${key} is missing`);
  const v = (k: keyof ImageMetadata) => (meta[k] === undefined ? undefined : String(meta[k]));
  if (v("os_purpose") && !(OS_PURPOSES as readonly string[]).includes(v("os_purpose")!))
    err("os_purpose", `os_purpose "${v("os_purpose")}" is not one of ${OS_PURPOSES.join(", ")}`);
  if (v("replace_frequency") && !(REPLACE_FREQUENCIES as readonly string[]).includes(v("replace_frequency")!))
    err(
      "replace_frequency",
      `replace_frequency "${v("replace_frequency")}" is not one of ${REPLACE_FREQUENCIES.join(", ")}`,
    );
  if (v("provided_until") && !DATE.test(v("provided_until")!) && !["none", "notice"].includes(v("provided_until")!))
    err("provided_until", `provided_until "${v("provided_until")}" is neither YYYY-MM-DD, none nor notice`);
  if (v("uuid_validity") && !/^(none|notice|forever|last-[1-9]\d*|\d{4}-\d{2}-\d{2})$/.test(v("uuid_validity")!))
    err("uuid_validity", `uuid_validity "${v("uuid_validity")}" is not none, notice, forever, last-N or a date`);
  if (v("hash_algo") && !["sha256", "sha512"].includes(v("hash_algo")!))
    err("hash_algo", `hash_algo "${v("hash_algo")}" is not sha256 or sha512`);
  for (const k of ["min_disk", "min_ram"] as const)
    if (meta[k] !== undefined && !(Number.isInteger(Number(meta[k])) && Number(meta[k]) > 0))
      err(k, `${k} "${meta[k]}" is not a positive whole number`);
  if (v("image_source") && !/^https:\/\/\S+$/.test(v("image_source")!))
    err("image_source", `image_source "${v("image_source")}" is not an https URL`);
  const built = v("image_build_date");
  if (built !== undefined && !BUILD_DATE.test(built))
    err("image_build_date", `image_build_date "${built}" is not YYYY-MM-DD[ hh:mm[:ss]]`);
  else if (built && at && !opts.hidden) {
    const limit = MAX_AGE_DAYS[v("replace_frequency") as keyof typeof MAX_AGE_DAYS];
    const age = days(built, at);
    if (age < 0) err("image_build_date", `image_build_date ${built} is after ${at}`);
    else if (limit !== undefined && age > limit)
      err(
        "recency",
        `built ${built}, ${age} days before ${at}: older than replace_frequency ${v("replace_frequency")} allows (${limit} days)`,
      );
  }
  const until = v("provided_until");
  if (at && until && DATE.test(until) && until < at && !opts.hidden)
    err("provided_until", `provided_until ${until} has passed (${at}): the image should be deprecated`);
  return out;
}

/** SCS-0104's permissible image_source forms for generic images, by os_distro. */
const SOURCE_FORMS: Record<string, ((codename: string) => RegExp)[]> = {
  debian: [
    (c) => new RegExp(`^https://cloud\\.debian\\.org/images/cloud/${c}/`),
    (c) => new RegExp(`^https://cdimage\\.debian\\.org/cdimage/cloud/${c}/`),
  ],
  ubuntu: [
    (c) => new RegExp(`^https://cloud-images\\.ubuntu\\.com/releases/${c}/`),
    (c) => new RegExp(`^https://cloud-images\\.ubuntu\\.com/${c}/`),
  ],
};

/** The Ubuntu LTS SCS-0104 requires on `at`: the newest YY.04 (even YY) whose April 30 has passed. */
export function requiredUbuntuLts(at: string): string {
  let year = Number(at.slice(0, 4));
  const afterDeadline = at.slice(5) >= "04-30";
  if (year % 2 === 1 || !afterDeadline) year = year % 2 === 1 ? year - 1 : year - 2;
  return `${String(year % 100).padStart(2, "0")}.04`;
}

export interface CatalogImage {
  /** `<release id> <arch>` or a live image's name. */
  subject: string;
  meta: ImageMetadata;
  /** Upstream codename, where the catalog knows it (SCS-0104 source forms). */
  codename?: string;
  /** A live previous version, hidden by retention (`scs:os_hidden=true`): not offered under its name. */
  hidden?: boolean;
  /** A live image whose battery has not passed (`factory:status=candidate`): not what its name refers to. */
  candidate?: boolean;
}

/** SCS-0104 and the cross-image SCS-0102 rule over a set of images (a catalog, or what a zone offers). */
export function checkImageSet(images: CatalogImage[], at: string): Finding[] {
  const out: Finding[] = [];
  const generic = images.filter((i) => i.meta.os_purpose === "generic" && !i.hidden && !i.candidate);
  for (const img of generic) {
    const forms = SOURCE_FORMS[String(img.meta.os_distro)];
    const source = String(img.meta.image_source ?? "");
    if (forms && img.codename && !forms.some((f) => f(img.codename!).test(source)))
      out.push({
        severity: "error",
        subject: img.subject,
        rule: "SCS-0104 image_source",
        message: `image_source ${source} is not a permissible ${img.meta.os_distro} form (${forms.map((f) => f(img.codename!).source).join(" or ")})`,
      });
  }
  const seen = new Map<string, string>();
  for (const img of generic) {
    const key = `${img.meta.os_distro} ${img.meta.os_version} ${img.meta.architecture}`;
    const other = seen.get(key);
    if (other)
      out.push({
        severity: "error",
        subject: img.subject,
        rule: "SCS-0102 generic uniqueness",
        message: `a second generic image for ${key} (also ${other})`,
      });
    else seen.set(key, img.subject);
  }
  const has = (distro: string, version: (v: string) => boolean) =>
    generic.some((i) => i.meta.os_distro === distro && version(String(i.meta.os_version)));
  const lts = requiredUbuntuLts(at);
  if (!has("ubuntu", (v) => v === lts))
    out.push({
      severity: "error",
      subject: "catalog",
      rule: "SCS-0104 mandatory image",
      message: `no generic Ubuntu ${lts} (the latest LTS on ${at}) image`,
    });
  const previous = `${String(Number(lts.slice(0, 2)) - 2).padStart(2, "0")}.04`;
  if (!has("ubuntu", (v) => v === previous))
    out.push({
      severity: "warning",
      subject: "catalog",
      rule: "SCS-0104 recommended image",
      message: `no generic Ubuntu ${previous} (the previous LTS) image`,
    });
  const debian = [
    ...new Set(generic.filter((i) => i.meta.os_distro === "debian").map((i) => Number(i.meta.os_version))),
  ].sort((a, b) => b - a);
  if (debian.length < 2)
    out.push({
      severity: "warning",
      subject: "catalog",
      rule: "SCS-0104 recommended image",
      message: `SCS-0104 recommends the latest and the previous Debian stable; the catalog has ${debian.join(", ") || "none"}`,
    });
  return out;
}

/** The catalog as SCS sees it: every release × architecture with its derived metadata. */
export function catalogImages(catalog: Catalog): CatalogImage[] {
  return catalog.releases.flatMap((r) =>
    r.architectures.map((arch) => ({
      subject: `${r.id} ${arch}`,
      meta: scsMetadata(catalog, r, arch),
      codename: r.kind === "os" ? r.codename : undefined,
    })),
  );
}

/** Every finding for the catalog on day `at`: per image (no build date yet: live images have one), then the set. */
export function checkCatalog(catalog: Catalog, at: string): Finding[] {
  const images = catalogImages(catalog);
  return [...images.flatMap((i) => checkImageMetadata(i.subject, i.meta, { at })), ...checkImageSet(images, at)];
}
