/**
 * Scaleway's Availability Zones for Instances, the region each belongs to, and what the pipeline needs of a zone:
 * Instances, Block Storage snapshot import from Object Storage, the test Instance's architectures and commercial
 * types. Each fact says where it comes from; one we could not check against a stored source is `verified: false`.
 */
export const ZONES = [
  "fr-par-1",
  "fr-par-2",
  "fr-par-3",
  "nl-ams-1",
  "nl-ams-2",
  "nl-ams-3",
  "pl-waw-1",
  "pl-waw-2",
  "pl-waw-3",
  "it-mil-1",
] as const;
export type Zone = (typeof ZONES)[number];

/** `fr-par-2` → `fr-par`: Object Storage and the import bucket are regional. */
export function regionOf(zone: Zone): string {
  return zone.replace(/-\d+$/, "");
}

/** Every region a zone above belongs to. */
export const REGIONS = [...new Set(ZONES.map(regionOf))];

export type Arch = "x86_64" | "arm64";

export interface ZoneCapabilities {
  instances: boolean;
  /** `POST /block/v1/zones/{zone}/snapshots/import-from-object-storage`: how every artifact becomes a snapshot. */
  blockSnapshotImport: boolean;
  /** Architectures of the Instance types offered; `undefined` when no stored source lists them. */
  architectures?: readonly Arch[];
  /** Commercial types known to be offered (with their architecture); `undefined` when no stored source lists them. */
  commercialTypes?: Readonly<Record<string, Arch>>;
  /** Commercial types a complete stored list of the zone's offer lacks (types this project names somewhere). */
  notOffered?: readonly string[];
  /** Where the facts come from. */
  source: string;
  verified: boolean;
}

// fr-par-1's Instance offer as `GET /instance/v1/zones/fr-par-1/products/servers` (all pages) answered on
// 2026-06-23 in terraform-provider-scaleway's recorded acceptance tests (instance testdata cassettes). Only the
// small general-purpose types a test Instance would use; test/unit/doctor-zones.test.ts checks them against the recording.
const FR_PAR_1_TYPES: Record<string, Arch> = {
  "DEV1-S": "x86_64",
  "DEV1-M": "x86_64",
  "DEV1-L": "x86_64",
  "DEV1-XL": "x86_64",
  "PLAY2-PICO": "x86_64",
  "PLAY2-NANO": "x86_64",
  "PLAY2-MICRO": "x86_64",
  "BASIC3-X2C-4G": "x86_64",
  "BASIC3-X2C-8G": "x86_64",
  "BASIC3-X4C-8G": "x86_64",
  "BASIC2-A2C-4G": "arm64",
  "BASIC2-A2C-8G": "arm64",
  "BASIC2-A4C-8G": "arm64",
  "BASIC2-A4C-16G": "arm64",
};

// Instances and Block Storage in every Paris, Amsterdam and Warsaw zone: Scaleway's "Product availability guide"
// (docs-content, pages/account/reference-content/products-availability.mdx, validated 2025-12-04). Snapshot import
// is a Block Storage API call; it is recorded working in fr-par-1 (block testdata snapshot-from-s3).
const BLOCK_DOC = "Scaleway product availability guide (validated 2025-12-04): Instances and Block Storage";
const standard = (zone: string): ZoneCapabilities =>
  zone === "fr-par-1"
    ? {
        instances: true,
        blockSnapshotImport: true,
        architectures: ["x86_64", "arm64"],
        commercialTypes: FR_PAR_1_TYPES,
        // The arm64 test type this project defaults to is not in the recorded list (which has BASIC2-A… for arm64).
        notOffered: ["COPARM1-2C-8G"],
        source: `${BLOCK_DOC}; snapshot import and the products/servers list recorded in fr-par-1 (2026-06-23)`,
        verified: true,
      }
    : { instances: true, blockSnapshotImport: true, source: `${BLOCK_DOC} in ${zone}`, verified: true };

export const ZONE_CAPABILITIES: Record<Zone, ZoneCapabilities> = {
  ...(Object.fromEntries(ZONES.filter((z) => z !== "it-mil-1").map((z) => [z, standard(z)])) as Record<
    Exclude<Zone, "it-mil-1">,
    ZoneCapabilities
  >),
  // Milan: issue #12 states it has Instances but no Block Storage snapshot import. The availability guide we hold
  // (validated 2025-12-04) does not list Milan at all, so neither fact is checked against a stored source.
  "it-mil-1": {
    instances: true,
    blockSnapshotImport: false,
    source: "issue #12 (not in the stored product availability guide, which lists Paris, Amsterdam and Warsaw only)",
    verified: false,
  },
};

/** What a zone lacks for the pipeline (snapshot import, Instances), as phrases; empty when it has everything. */
export function missingCapabilities(zone: Zone): string[] {
  const c = ZONE_CAPABILITIES[zone];
  return [
    ...(c.instances ? [] : ["Instances"]),
    ...(c.blockSnapshotImport ? [] : ["Block Storage snapshot import from Object Storage"]),
  ];
}
