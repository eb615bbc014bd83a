import { describe, expect, it } from "vitest";
import { loadCatalog, type Catalog, type Release } from "../../images";
import { lifecycle } from "../../builder/core/lifecycle";
import { planStack } from "../../builder/core/plan";
import { epochStart, retiredBy } from "../../builder/core/end-of-life";
import { settingsFor } from "./helpers";

const catalog = loadCatalog();
const entry = (at: string, id: string, grace = 90) => lifecycle(catalog, at, grace, 60).find((e) => e.id === id)!;

/** The catalog with one release's end of life moved. */
function withEol(id: string, eol: string | null): Catalog {
  const releases = catalog.releases.map((r) => (r.id === id ? ({ ...structuredClone(r), eol } as Release) : r));
  return { releases, byId: new Map(releases.map((r) => [r.id, r])) };
}

describe("lifecycle", () => {
  it.each([
    // Ubuntu 22.04: end of life 2027-06-01, deprecated 90 days later, announced 60 days before that.
    { at: "2026-11-23", state: "supported", daysLeft: 280 },
    { at: "2027-07-01", state: "notice", daysLeft: 60 },
    { at: "2027-08-29", state: "notice", daysLeft: 1 },
    { at: "2027-08-30", state: "deprecated", daysLeft: 0 },
  ])("ubuntu-22.04 on $at is $state", ({ at, state, daysLeft }) => {
    expect(entry(at, "ubuntu-22.04")).toMatchObject({ eol: "2027-06-01", deprecates: "2027-08-30", state, daysLeft });
  });

  it("announces a deprecation with its date, its successor, and that running Instances are not affected", () => {
    const e = entry("2027-07-01", "ubuntu-22.04");
    expect(e.successor).toBe("ubuntu-26.04");
    expect(e.notice).toBe(
      "Ubuntu 22.04 Jammy Jellyfish (image label ubuntu_jammy) reached its upstream end of life on 2027-06-01. " +
        "From 2027-08-30 it will be deprecated on Scaleway: it can no longer be used to create new Instances. " +
        "Running Instances are not affected and keep working. Please move new Instances to Ubuntu 26.04 Resolute Raccoon (image label ubuntu_resolute).",
    );
    expect(entry("2026-11-23", "ubuntu-22.04").notice).toBeUndefined();
  });

  it("keeps a rolling release supported and lets an InstantApp live as long as its base", () => {
    expect(entry("2040-01-01", "archlinux-rolling")).toMatchObject({ state: "supported", eol: null, daysLeft: null });
    expect(entry("2029-07-01", "app-wordpress")).toMatchObject({
      state: "notice",
      eol: "2029-05-31",
      deprecates: "2029-08-29",
    });
    const earlyBase = lifecycle(withEol("ubuntu-24.04", "2027-01-31"), "2027-05-01", 90, 60).find(
      (e) => e.id === "app-openvpn",
    )!;
    expect(earlyBase).toMatchObject({ eol: "2027-01-31", state: "deprecated" });
  });

  it("applies the grace period given", () => {
    expect(entry("2027-07-01", "ubuntu-22.04", 0).state).toBe("deprecated");
  });
});

describe("deprecation in stacks", () => {
  it.each([
    { epoch: "2026Q4", start: "2026-10-01" },
    { epoch: "2027Q1", start: "2027-01-01" },
    { epoch: "2027Q3", start: "2027-07-01" },
  ])("$epoch starts on $start", ({ epoch, start }) => {
    expect(epochStart(epoch)).toBe(start);
  });

  it("drops a release from ['*'] stacks with the first release epoch after its deprecation", () => {
    const ids = (epoch: string) =>
      planStack(catalog, settingsFor({ images: ["*"], releaseEpoch: epoch })).map((p) => p.release.id);
    expect(ids("2027Q3")).toContain("ubuntu-22.04");
    expect(ids("2027Q4")).not.toContain("ubuntu-22.04");
    const jammy = catalog.byId.get("ubuntu-22.04")!;
    expect(retiredBy(catalog, jammy, { releaseEpoch: "2027Q4", deprecationGraceDays: 90 })).toBe("2027-08-30");
  });

  it("refuses a stack that still names a deprecated release, saying what to do", () => {
    expect(() => settingsFor({ images: ["ubuntu-22.04"], releaseEpoch: "2027Q4" })).toThrow(
      "image-factory:images: ubuntu-22.04 was deprecated on 2027-08-30 (end of life + 90 days), before release epoch 2027Q4 began: remove it from this stack",
    );
  });
});
