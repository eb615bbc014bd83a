/**
 * SCS-0102 image metadata, derived from the catalog. On Scaleway an Instance image carries tags only, so the
 * metadata travels as `scs:<key>=<value>` tags (and in full in the build manifest).
 */
import { osBase, type Catalog } from "../../images";
import { SCS_ARCHITECTURE, type Architecture, type Release } from "../../images/schema";
import { upstreamLocation } from "./upstream-url";

/** The SCS-0102 keys every image carries, in the standard's spelling. */
export const SCS_KEYS = [
  "architecture",
  "os_distro",
  "os_version",
  "os_purpose",
  "image_source",
  "image_original_user",
  "image_description",
  "replace_frequency",
  "provided_until",
  "uuid_validity",
  "hw_disk_bus",
  "min_disk",
  "min_ram",
  "hash_algo",
] as const;
export type ScsKey = (typeof SCS_KEYS)[number];
export type ScsMetadata = Record<ScsKey, string | number>;

export function scsMetadata(catalog: Catalog, release: Release, arch: Architecture): ScsMetadata {
  const os = osBase(catalog, release);
  const { scs } = release;
  return {
    architecture: SCS_ARCHITECTURE[arch],
    os_distro: os.distro,
    os_version: os.version,
    os_purpose: scs.os_purpose,
    // The official upstream, never the mirror the build fetched through (SCS-0104).
    image_source: upstreamLocation(os, arch).image,
    image_original_user: scs.image_original_user,
    image_description: scs.image_description ?? release.title,
    replace_frequency: scs.replace_frequency,
    provided_until: release.eol ?? "none",
    uuid_validity: scs.uuid_validity,
    hw_disk_bus: scs.hw_disk_bus,
    min_disk: scs.min_disk,
    min_ram: scs.min_ram,
    hash_algo: scs.hash_algo,
  };
}

export const SCS_TAG_PREFIX = "scs:";

export function scsTags(metadata: ScsMetadata): string[] {
  return SCS_KEYS.map((key) => `${SCS_TAG_PREFIX}${key}=${metadata[key]}`);
}

/** Reads SCS metadata back from an image's tags; numbers come back as numbers. */
export function scsFromTags(tags: readonly string[]): Partial<ScsMetadata> {
  const out: Partial<ScsMetadata> = {};
  for (const tag of tags) {
    if (!tag.startsWith(SCS_TAG_PREFIX)) continue;
    const eq = tag.indexOf("=");
    const key = tag.slice(SCS_TAG_PREFIX.length, eq) as ScsKey;
    if (eq < 0 || !SCS_KEYS.includes(key)) continue;
    const value = tag.slice(eq + 1);
    out[key] = key === "min_disk" || key === "min_ram" ? Number(value) : value;
  }
  return out;
}
