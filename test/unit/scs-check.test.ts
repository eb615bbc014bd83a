import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../images";
import { scsFromTags, scsMetadata, scsTags } from "../../builder/core/scs";
import {
  catalogImages,
  checkCatalog,
  checkImageMetadata,
  checkImageSet,
  requiredUbuntuLts,
  type CatalogImage,
} from "../../builder/core/scs-check";

const catalog = loadCatalog();
const AT = "2026-11-23";
const rules = (findings: { rule: string; severity: string }[], severity = "error") =>
  findings.filter((f) => f.severity === severity).map((f) => f.rule);

describe("scs-check on the catalog", () => {
  it("finds no error in the catalog as shipped", () => {
    expect(checkCatalog(catalog, AT).filter((f) => f.severity === "error")).toEqual([]);
  });

  it.each([
    { at: "2026-04-29", lts: "24.04" },
    { at: "2026-04-30", lts: "26.04" },
    { at: "2027-03-01", lts: "26.04" },
    { at: "2028-05-01", lts: "28.04" },
  ])("requires Ubuntu $lts on $at", ({ at, lts }) => {
    expect(requiredUbuntuLts(at)).toBe(lts);
  });

  const noble = () => catalogImages(catalog).find((i) => i.subject === "ubuntu-24.04 x86_64")!;
  const bookworm = () => catalogImages(catalog).find((i) => i.subject === "debian-12 x86_64")!;
  const withImage = (id: string, change: (i: CatalogImage) => void) =>
    catalogImages(catalog).map((i) => {
      if (i.subject !== id) return i;
      const copy = structuredClone(i);
      change(copy);
      return copy;
    });

  it.each([
    {
      what: "a mirror as image_source",
      change: (i: CatalogImage) => (i.meta.image_source = "https://mirror.example/debian-12.qcow2"),
      rule: "SCS-0104 image_source",
    },
    {
      what: "another codename's path",
      change: (i: CatalogImage) => (i.meta.image_source = "https://cloud.debian.org/images/cloud/trixie/x.qcow2"),
      rule: "SCS-0104 image_source",
    },
    {
      what: "a second generic debian 12",
      change: (i: CatalogImage) => (i.meta.os_version = "12"),
      rule: "SCS-0102 generic uniqueness",
      id: "debian-13 x86_64",
    },
  ])("fails $what", ({ change, rule, id }) => {
    expect(rules(checkImageSet(withImage(id ?? "debian-12 x86_64", change), AT))).toEqual([rule]);
  });

  it("fails when the latest Ubuntu LTS is missing, and warns when the previous one is", () => {
    const without = (version: string) =>
      catalogImages(catalog).filter((i) => !(i.meta.os_distro === "ubuntu" && i.meta.os_version === version));
    const missingLatest = checkImageSet(without("26.04"), AT);
    expect(rules(missingLatest)).toEqual(["SCS-0104 mandatory image"]);
    expect(missingLatest[0]!.message).toBe("no generic Ubuntu 26.04 (the latest LTS on 2026-11-23) image");
    expect(
      rules(
        checkImageSet(
          without("24.04").filter((i) => i.meta.os_purpose === "generic"),
          AT,
        ),
        "warning",
      ),
    ).toEqual(["SCS-0104 recommended image"]);
  });

  it.each([
    { change: { os_distro: undefined }, message: "os_distro is missing" },
    { change: { min_ram: 0 }, message: 'min_ram "0" is not a positive whole number' },
    {
      change: { replace_frequency: "sometimes" },
      message:
        'replace_frequency "sometimes" is not one of yearly, quarterly, monthly, weekly, daily, critical_bug, never',
    },
    { change: { provided_until: "2030" }, message: 'provided_until "2030" is neither YYYY-MM-DD, none nor notice' },
    {
      change: { uuid_validity: "last-0" },
      message: 'uuid_validity "last-0" is not none, notice, forever, last-N or a date',
    },
    {
      change: { os_purpose: "desktop" },
      message: 'os_purpose "desktop" is not one of generic, minimal, k8snode, gpu, network, custom',
    },
    { change: { hash_algo: "md5" }, message: 'hash_algo "md5" is not sha256 or sha512' },
    { change: { hash_algo: "sha1" }, message: 'hash_algo "sha1" is not sha256 or sha512' },
    {
      change: { provided_until: "2026-01-31" },
      message: "provided_until 2026-01-31 has passed (2026-11-23): the image should be deprecated",
    },
  ])("flags $message", ({ change, message }) => {
    const meta = { ...bookworm().meta, ...change };
    expect(checkImageMetadata("debian-12 x86_64", meta, { at: AT }).map((f) => f.message)).toEqual([message]);
  });

  it.each([
    { built: "2026-11-01", frequency: "quarterly", ok: true },
    { built: "2026-08-01", frequency: "quarterly", ok: false },
    { built: "2026-08-01", frequency: "yearly", ok: true },
    { built: "2026-08-01", frequency: "critical_bug", ok: true },
    { built: "2026-11-10", frequency: "weekly", ok: false },
    { built: "2026-11-23 10:15", frequency: "daily", ok: true },
  ])("an image built $built is recent enough for $frequency: $ok", ({ built, frequency, ok }) => {
    const meta = { ...noble().meta, image_build_date: built, replace_frequency: frequency };
    expect(rules(checkImageMetadata("live", meta, { at: AT, built: true }))).toEqual(ok ? [] : ["SCS-0102 recency"]);
  });

  it("holds a hidden previous version to its keys, not to recency, provided_until or uniqueness", () => {
    const old = { ...noble().meta, image_build_date: "2026-02-01", provided_until: "2026-06-01", os_distro: undefined };
    expect(checkImageMetadata("old", old, { at: AT, built: true, hidden: true }).map((f) => f.message)).toEqual([
      "os_distro is missing",
    ]);
    expect(rules(checkImageMetadata("old", old, { at: AT, built: true }))).toEqual([
      "SCS-0102 mandatory key",
      "SCS-0102 recency",
      "SCS-0102 provided_until",
    ]);
    const twice = [
      ...catalogImages(catalog),
      { ...bookworm(), subject: "Debian 12 Bookworm (x86_64) 20260820", hidden: true },
    ];
    expect(rules(checkImageSet(twice, AT))).toEqual([]);
    expect(
      rules(
        checkImageSet(
          twice.map((i) => ({ ...i, hidden: false })),
          AT,
        ),
      ),
    ).toEqual(["SCS-0102 generic uniqueness"]);
  });

  it("requires a built image to carry its build date", () => {
    expect(checkImageMetadata("live", noble().meta, { at: AT, built: true }).map((f) => f.message)).toEqual([
      "image_build_date is missing",
    ]);
  });
});

describe("SCS metadata as Scaleway image tags", () => {
  it.each(catalog.releases.map((r) => r.id))("%s round-trips through scs:<key>=<value> tags", (id) => {
    const meta = scsMetadata(catalog, catalog.byId.get(id)!, "x86_64");
    expect(scsFromTags([...scsTags(meta), "factory:release=x", "other"])).toEqual(meta);
  });
});
