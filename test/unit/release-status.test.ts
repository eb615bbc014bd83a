/** factory:status as the zone's readers see it: the newest released image is the release's, never a candidate. */
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../images";
import { checkLiveImages, lifecycleImages, releasedImage, releaseViews } from "../../builder/core/release-status";
import { HIDDEN_TAG, statusTag, type LiveImage, type ReleaseStatus } from "../../builder/core/retention";
import { scsMetadata, scsTags } from "../../builder/core/scs";

const catalog = loadCatalog();
const AT = "2026-11-23";

/** One of the factory's debian-12 x86_64 images, built on `built`; `status` undefined: made before the tag. */
function image(id: string, built: string, status?: ReleaseStatus, extra: string[] = []): LiveImage {
  const release = catalog.byId.get("debian-12")!;
  return {
    id,
    name: "Debian 12 Bookworm (x86_64)",
    arch: "x86_64",
    tags: [
      "factory:release=debian-12",
      ...(status ? [statusTag(status)] : []),
      ...scsTags(scsMetadata(catalog, release, "x86_64")),
      `scs:image_build_date=${built}`,
      ...extra,
    ],
    created: `${built}T10:00:00Z`,
    snapshotIds: [],
    usedBy: [],
  };
}

describe("releasedImage: what a lookup of the release returns", () => {
  it.each([
    {
      why: "a newer candidate (battery running or failed) does not replace the released one",
      images: [image("old", "2026-11-01", "released"), image("new", "2026-11-20", "candidate")],
      found: "old",
    },
    {
      why: "the newest released wins over an older released one not hidden yet",
      images: [image("a", "2026-10-01", "released"), image("b", "2026-11-01", "released")],
      found: "b",
    },
    {
      why: "an image made before the tag existed counts as released",
      images: [image("legacy", "2026-10-01"), image("cand", "2026-11-20", "candidate")],
      found: "legacy",
    },
    {
      why: "a hidden previous version is not found, even when it is the only released one",
      images: [image("hidden", "2026-10-01", "released", [HIDDEN_TAG]), image("cand", "2026-11-20", "candidate")],
      found: undefined,
    },
    {
      why: "only candidates: nothing is released yet",
      images: [image("c1", "2026-11-19", "candidate"), image("c2", "2026-11-20", "candidate")],
      found: undefined,
    },
    {
      why: "a candidate that passed (now released) becomes the release's image",
      images: [image("old", "2026-11-01", "released"), image("new", "2026-11-20", "released")],
      found: "new",
    },
  ])("$why", ({ images, found }) => {
    expect(releasedImage(images, "debian-12", "x86_64")?.id).toBe(found);
    expect(releasedImage(images, "debian-12", "arm64")).toBeUndefined();
  });

  it("lists a release's candidates newest first and leaves images without factory:release out", () => {
    const foreign = { ...image("x", "2026-11-21", "candidate"), tags: ["team=other"] };
    const views = releaseViews([
      image("c1", "2026-11-19", "candidate"),
      foreign,
      image("r", "2026-11-01", "released"),
      image("c2", "2026-11-20", "candidate"),
    ]);
    expect(views.map((v) => [v.key, v.released?.id, v.candidates.map((c) => c.id)])).toEqual([
      ["debian-12/x86_64", "r", ["c2", "c1"]],
    ]);
  });
});

describe("scs-check --live and factory:status", () => {
  const own = (findings: ReturnType<typeof checkLiveImages>) =>
    findings
      .filter((f) => f.subject !== "catalog")
      .map((f) => [f.severity, f.subject.replace(/^.* \((\w+)\)$/, "$1"), f.rule]);

  it.each([
    {
      why: "a released image and a newer candidate: the candidate is reported as such, not as a second generic image",
      images: [image("rel", "2026-11-01", "released"), image("cand", "2026-11-20", "candidate")],
      findings: [["warning", "cand", "factory:status candidate"]],
      names: "the current one is Debian 12 Bookworm (x86_64) (rel)",
    },
    {
      why: "two released images, neither hidden: two generic images under one name",
      images: [image("a", "2026-11-01", "released"), image("b", "2026-11-20", "released")],
      findings: [["error", "b", "SCS-0102 generic uniqueness"]],
    },
    {
      why: "the released image is judged for recency even when a fresh candidate exists",
      images: [image("stale", "2026-05-01", "released"), image("cand", "2026-11-20", "candidate")],
      findings: [
        ["error", "stale", "SCS-0102 recency"],
        ["warning", "cand", "factory:status candidate"],
      ],
    },
    {
      why: "a candidate with nothing released says so",
      images: [image("cand", "2026-11-20", "candidate")],
      findings: [["warning", "cand", "factory:status candidate"]],
      names: "no image of it is released in this zone yet",
    },
  ])("$why", ({ images, findings, names }) => {
    const out = checkLiveImages(images, catalog, AT);
    expect(own(out)).toEqual(findings);
    if (names) expect(out.find((f) => f.rule === "factory:status candidate")!.message).toContain(names);
  });
});

describe("lifecycleImages: what a lifecycle state applies to in a zone", () => {
  const arm = (i: LiveImage): LiveImage => ({ ...i, arch: "arm64", name: i.name.replace("x86_64", "arm64") });
  it.each([
    {
      why: "a newer candidate leaves the released image as the one the state and notice speak of",
      images: [image("rel", "2026-11-01", "released"), image("cand", "2026-11-20", "candidate")],
      want: [{ arch: "x86_64", released: "rel", candidates: ["cand"] }],
    },
    {
      why: "per architecture, and none released where only a candidate exists",
      images: [image("rel", "2026-11-01", "released"), arm(image("armcand", "2026-11-20", "candidate"))],
      want: [
        { arch: "arm64", released: undefined, candidates: ["armcand"] },
        { arch: "x86_64", released: "rel", candidates: [] },
      ],
    },
    { why: "a release without images in the zone", images: [], want: [] },
  ])("$why", ({ images, want }) => {
    expect(
      lifecycleImages("debian-12", releaseViews(images)).map((z) => ({
        arch: z.arch,
        released: z.released?.id,
        candidates: z.candidates,
      })),
    ).toEqual(want);
    // Another release sharing the prefix is not mixed in.
    expect(lifecycleImages("debian-1", releaseViews(images))).toEqual([]);
  });
});
