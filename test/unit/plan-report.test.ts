import { describe, expect, it } from "vitest";
import { loadCatalog, type Catalog, type OsRelease } from "../../images";
import { planStack } from "../../builder/core/plan";
import { diffPlans, markdownReport, type PlanRow } from "../../builder/core/plan-report";
import { settingsFor } from "./helpers";

function rows(stack: string, over: Record<string, unknown>, catalog: Catalog = loadCatalog()): PlanRow[] {
  return planStack(catalog, settingsFor(over, stack)).map((p) => ({
    stack,
    name: p.name,
    zone: p.zone,
    release: p.release.id,
    arch: p.arch,
    contentHash: p.contentHash,
    artifactKey: p.artifactKey,
    hashInputs: p.hashInputs,
  }));
}

function withSerial(id: string, serial: string): Catalog {
  const base = loadCatalog();
  const copy = structuredClone(base.byId.get(id)) as OsRelease;
  copy.upstream.pins.x86_64!.serial = serial;
  const releases = base.releases.map((r) => (r.id === id ? copy : r));
  return { releases, byId: new Map(releases.map((r) => [r.id, r])) };
}

const images = ["debian-12", "ubuntu-24.04", "app-wordpress"];

describe("plan --against", () => {
  it.each([
    { change: "nothing", after: () => rows("prod-fr-par-2", { images }), expected: [] },
    {
      change: "a new Ubuntu build",
      after: () => rows("prod-fr-par-2", { images }, withSerial("ubuntu-24.04", "20261201")),
      expected: [
        [
          "app-wordpress-x86_64",
          "rebuild",
          "base ubuntu-24.04 rebuilt; new upstream build of ubuntu-24.04: 20261105 → 20261201",
        ],
        ["ubuntu-24.04-x86_64", "rebuild", "new upstream build: 20261105 → 20261201"],
      ],
    },
    {
      change: "the quarterly release",
      after: () => rows("prod-fr-par-2", { images, releaseEpoch: "2027Q1" }),
      // The app's base is rebuilt too, which the app's reasons name first.
      expected: images
        .map((id) => [
          `${id}-x86_64`,
          "rebuild",
          `${id.startsWith("app-") ? "base ubuntu-24.04 rebuilt; " : ""}quarterly release: 2026Q4 → 2027Q1`,
        ])
        .sort(),
    },
    {
      change: "a security rebuild of Debian and one image fewer",
      after: () => rows("prod-fr-par-2", { images: ["debian-12", "ubuntu-24.04"], securityRebuilds: ["debian-12:1"] }),
      expected: [
        ["app-wordpress-x86_64", "removed", "no longer shipped (deprecated or removed from the stack)"],
        ["debian-12-x86_64", "rebuild", "security rebuild #1"],
      ],
    },
  ])("$change", ({ after, expected }) => {
    const changes = diffPlans(rows("prod-fr-par-2", { images }), after()).filter((c) => c.change !== "unchanged");
    expect(changes.map((c) => [c.image, c.change, c.reasons.join("; ")])).toEqual(expected);
  });

  it.each([
    { why: "a rebuild", serial: "20261201-0000", says: true },
    { why: "no rebuild", serial: undefined, says: false },
  ])("says a rebuilt image starts as a candidate only when there is $why", ({ serial, says }) => {
    const before = rows("prod-fr-par-2", { images });
    const after = serial ? rows("prod-fr-par-2", { images }, withSerial("debian-12", serial)) : before;
    expect(markdownReport(diffPlans(before, after)).includes("starts as a candidate")).toBe(says);
  });

  it("names a new zone's images as such", () => {
    const changes = diffPlans(rows("prod-fr-par-2", { images }), [
      ...rows("prod-fr-par-2", { images }),
      ...rows("prod-pl-waw-3", { images: ["debian-12"], zone: "pl-waw-3" }),
    ]);
    expect(changes.filter((c) => c.change !== "unchanged")).toEqual([
      { stack: "prod-pl-waw-3", image: "debian-12-x86_64", change: "new", reasons: ["new zone"] },
    ]);
  });

  it("writes a pull request report with the reasons, and lists quiet stacks in one line", () => {
    const before = [...rows("prod-fr-par-2", { images }), ...rows("prod-nl-ams-1", { images, zone: "nl-ams-1" })];
    const after = [
      ...rows("prod-fr-par-2", { images }, withSerial("debian-12", "20261201-0000")),
      ...rows("prod-nl-ams-1", { images, zone: "nl-ams-1" }),
    ];
    expect(markdownReport(diffPlans(before, after))).toBe(
      [
        "## Image factory plan",
        "",
        "1 to rebuild, 0 new, 0 to remove, 5 unchanged, across 2 stacks.",
        "",
        "Each rebuilt image starts as a candidate (`factory:status=candidate`): the release's current `factory:status=released` image stays in place, and is what a lookup by name finds, until the new image's battery passes in its zone (at once where `runTests` is off); a failed battery leaves it in place.",
        "",
        "### prod-fr-par-2",
        "",
        "| image | change | why |",
        "| --- | --- | --- |",
        "| `debian-12-x86_64` | rebuild | new upstream build: 20261102-2314 → 20261201-0000 |",
        "",
        "No change in: `prod-nl-ams-1`.",
        "",
      ].join("\n"),
    );
  });
});
