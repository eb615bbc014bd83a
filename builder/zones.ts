/** Scaleway's Availability Zones for Instances and the region each belongs to. */
export const ZONES = [
  "fr-par-1", "fr-par-2", "fr-par-3",
  "nl-ams-1", "nl-ams-2", "nl-ams-3",
  "pl-waw-1", "pl-waw-2", "pl-waw-3",
] as const;
export type Zone = (typeof ZONES)[number];

/** `fr-par-2` → `fr-par`: Object Storage and the import bucket are regional. */
export function regionOf(zone: Zone): string {
  return zone.replace(/-\d+$/, "");
}
