import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../images";
import { scsFromTags, scsMetadata, scsTags } from "../../builder/core/scs";

describe("SCS tags", () => {
  it("round-trip every release's metadata", () => {
    const catalog = loadCatalog();
    for (const r of catalog.releases)
      for (const arch of r.architectures) {
        const meta = scsMetadata(catalog, r, arch);
        expect(scsFromTags(scsTags(meta))).toEqual(meta);
      }
  });

  it("ignores tags that are not SCS keys", () => {
    expect(scsFromTags(["factory:release=x", "scs:unknown=1", "scs:min_ram=512", "scs:os_distro"])).toEqual({
      min_ram: 512,
    });
  });
});
