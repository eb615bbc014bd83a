import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { missingCapabilities, regionOf, ZONE_CAPABILITIES, ZONES } from "../../builder/core/zones";

const RECORDINGS = join(__dirname, "..", "..", "..", "shared", "scaleway-api-recordings");

/** Every `/products/servers` page a recording holds for a zone: commercial type → architecture. */
function recordedServerTypes(file: string, zone: string): Record<string, string> {
  const cassette = parse(readFileSync(join(RECORDINGS, file), "utf8")) as {
    interactions: { request: { url: string }; response: { body: string } }[];
  };
  const out: Record<string, string> = {};
  for (const { request, response } of cassette.interactions)
    if (request.url.includes(`/instance/v1/zones/${zone}/products/servers`))
      for (const [name, spec] of Object.entries(
        (JSON.parse(response.body) as { servers: Record<string, { arch: string }> }).servers,
      ))
        out[name] = spec.arch;
  return out;
}

describe("zone capabilities", () => {
  it("lists fr-par-1's commercial types as the recorded API offered them, with their architecture", () => {
    const recorded = recordedServerTypes("instance_testdata_action-server-basic.cassette.yaml", "fr-par-1");
    expect(Object.keys(recorded).length).toBeGreaterThan(50);
    const table = ZONE_CAPABILITIES["fr-par-1"].commercialTypes!;
    for (const [name, arch] of Object.entries(table)) expect(recorded[name], name).toBe(arch);
    for (const name of ZONE_CAPABILITIES["fr-par-1"].notOffered!) expect(recorded[name], name).toBeUndefined();
    expect([...new Set(Object.values(recorded))].sort()).toEqual(
      [...ZONE_CAPABILITIES["fr-par-1"].architectures!].sort(),
    );
  });

  it("records snapshot import where the recordings show it", () => {
    const text = readFileSync(join(RECORDINGS, "block_testdata_snapshot-from-s3.cassette.yaml"), "utf8");
    expect(text).toContain("/block/v1/zones/fr-par-1/snapshots/import-from-object-storage");
    expect(ZONE_CAPABILITIES["fr-par-1"].blockSnapshotImport).toBe(true);
  });

  it.each([
    { zone: "fr-par-1", region: "fr-par", missing: [] },
    { zone: "pl-waw-3", region: "pl-waw", missing: [] },
    { zone: "it-mil-1", region: "it-mil", missing: ["Block Storage snapshot import from Object Storage"] },
  ] as const)("$zone is in $region and lacks $missing", ({ zone, region, missing }) => {
    expect(regionOf(zone)).toBe(region);
    expect(missingCapabilities(zone)).toEqual(missing);
  });

  it("says where every zone's facts come from, and marks Milan's unverified", () => {
    for (const zone of ZONES) expect(ZONE_CAPABILITIES[zone].source, zone).not.toBe("");
    expect(ZONE_CAPABILITIES["it-mil-1"].verified).toBe(false);
  });
});
