import { describe, expect, it } from "vitest";
import {
  formatCurrentBuilds,
  hiddenTags,
  HIDDEN_TAG,
  parseCurrentBuilds,
  planRetention,
  retiredName,
  statusTag,
  withStatus,
  type LiveImage,
} from "../../builder/core/retention";

const hash = (c: string) => c.repeat(64);
const NAME = "Debian 12 Bookworm (x86_64)";

/** A factory image of debian-12 built on `built` with content hash `h`. */
function image(
  id: string,
  h: string,
  built: string,
  extra: Partial<LiveImage> & { validity?: string | null } = {},
): LiveImage {
  const { validity = "last-2", ...rest } = extra;
  return {
    id,
    name: NAME,
    arch: "x86_64",
    created: `${built}T10:00:00Z`,
    snapshotIds: [`snap-${id}`],
    usedBy: [],
    tags: [
      "factory:release=debian-12",
      `factory:content-hash=${hash(h)}`,
      `scs:image_build_date=${built}`,
      ...(validity === null ? [] : [`scs:uuid_validity=${validity}`]),
    ],
    ...rest,
  };
}
const candidate = (i: LiveImage): LiveImage => ({ ...i, tags: [...i.tags, statusTag("candidate")] });
const released = (i: LiveImage): LiveImage => ({ ...i, tags: [...i.tags, statusTag("released")] });
const current = (h: string) => new Map([["debian-12/x86_64", hash(h)]]);
const actions = (steps: ReturnType<typeof planRetention>) =>
  Object.fromEntries(steps.map((s) => [s.image.id, s.action]));

describe("planRetention", () => {
  it.each([
    {
      why: "last-2 keeps the two newest previous versions and deletes the third",
      images: [
        image("d", "d", "2026-11-20"),
        image("c", "c", "2026-08-20"),
        image("b", "b", "2026-05-20"),
        image("a", "a", "2026-02-20"),
      ],
      expected: { d: "current", c: "mark", b: "mark", a: "delete" },
    },
    {
      why: "none deletes every previous version",
      images: [
        image("b", "b", "2026-11-20", { validity: "none" }),
        image("a", "a", "2026-08-20", { validity: "none" }),
      ],
      expected: { b: "current", a: "delete" },
    },
    {
      why: "a date keeps a version until that day and deletes it after",
      images: [
        image("c", "c", "2026-11-20"),
        image("b", "b", "2026-08-20", { validity: "2026-11-23" }),
        image("a", "a", "2026-05-20", { validity: "2026-11-22" }),
      ],
      expected: { c: "current", b: "mark", a: "delete" },
    },
    {
      why: "forever and notice keep everything",
      images: [
        image("c", "c", "2026-11-20"),
        image("b", "b", "2025-01-01", { validity: "forever" }),
        image("a", "a", "2024-01-01", { validity: "notice" }),
      ],
      expected: { c: "current", b: "mark", a: "mark" },
    },
    {
      why: "each version is judged by the promise it was published with",
      images: [
        image("c", "c", "2026-11-20", { validity: "none" }),
        image("b", "b", "2026-08-20", { validity: "last-3" }),
      ],
      expected: { c: "current", b: "mark" },
    },
    {
      why: "an already hidden, renamed version is kept as it is",
      images: [image("b", "b", "2026-11-20"), image("a", "a", "2026-08-20", { name: `${NAME} 20260820` })].map((i) =>
        i.id === "a" ? { ...i, tags: hiddenTags(i.tags) } : i,
      ),
      expected: { b: "current", a: "keep" },
    },
    {
      why: "an expired version a server still boots from is hidden, not deleted",
      images: [
        image("b", "b", "2026-11-20", { validity: "none" }),
        image("a", "a", "2026-08-20", { validity: "none", usedBy: ["web-1 (s-1)"] }),
      ],
      expected: { b: "current", a: "mark" },
    },
    {
      why: "a version without uuid_validity cannot be judged and is left",
      images: [image("b", "b", "2026-11-20"), image("a", "a", "2026-08-20", { validity: null })],
      expected: { b: "current", a: "leave" },
    },
    {
      why: "nothing is retired before the current build exists in the zone",
      images: [
        image("b", "b", "2026-08-20", { validity: "none" }),
        image("a", "a", "2026-05-20", { validity: "none" }),
      ],
      current: current("z"),
      expected: { b: "leave", a: "leave" },
    },
    {
      why: "a release the stack no longer ships has no current build: all its versions are previous ones",
      images: [
        image("b", "b", "2026-08-20", { validity: "last-1" }),
        image("a", "a", "2026-05-20", { validity: "last-1" }),
      ],
      current: new Map<string, string>(),
      expected: { b: "mark", a: "delete" },
    },
    {
      why: "a candidate of the planned build is not current: with uuid_validity none the last released image stays",
      images: [candidate(image("c", "c", "2026-11-20")), image("b", "b", "2026-08-20", { validity: "none" })],
      current: current("c"),
      expected: { c: "leave", b: "leave" },
    },
    {
      why: "a failed battery keeps every released version as it is, the newest and the older ones",
      images: [
        candidate(image("c", "c", "2026-11-20")),
        image("b", "b", "2026-08-20", { validity: "last-1" }),
        image("a", "a", "2026-05-20", { validity: "last-1" }),
      ],
      current: current("c"),
      expected: { c: "leave", b: "leave", a: "leave" },
    },
    {
      why: "once released, the planned build is current and the previous ones are retired",
      images: [released(image("c", "c", "2026-11-20")), image("b", "b", "2026-08-20", { validity: "none" })],
      current: current("c"),
      expected: { c: "current", b: "delete" },
    },
    {
      why: "an older candidate takes no slot of last-N and, never released, is deleted",
      images: [
        image("d", "d", "2026-11-20"),
        candidate(image("c", "c", "2026-10-20")),
        image("b", "b", "2026-08-20", { validity: "last-1" }),
      ],
      current: current("d"),
      expected: { d: "current", c: "delete", b: "mark" },
    },
    {
      why: "an older candidate a server still boots from is left",
      images: [image("d", "d", "2026-11-20"), candidate(image("c", "c", "2026-10-20", { usedBy: ["test (s-9)"] }))],
      current: current("d"),
      expected: { d: "current", c: "leave" },
    },
    {
      why: "a release no longer shipped: its candidates are deleted, its released versions judged",
      images: [candidate(image("c", "c", "2026-11-20")), image("b", "b", "2026-08-20", { validity: "last-1" })],
      current: new Map<string, string>(),
      expected: { c: "delete", b: "mark" },
    },
    {
      why: "images that are not the factory's are not looked at",
      images: [image("b", "b", "2026-11-20"), { ...image("x", "x", "2020-01-01"), tags: ["other"] }],
      expected: { b: "current" },
    },
  ])("$why", ({ images, expected, current: builds }) => {
    expect(actions(planRetention(images, builds ?? current(images[0]!.id), "2026-11-23"))).toEqual(expected);
  });

  it("orders versions by build date, then creation time, whatever order the API lists them in", () => {
    const images = [
      image("a", "a", "2026-05-20"),
      image("c", "c", "2026-11-20"),
      image("b2", "b", "2026-08-20", { created: "2026-08-20T12:00:00Z" }),
      image("b1", "e", "2026-08-20"),
    ];
    const steps = planRetention(images, current("c"), "2026-11-23");
    expect(steps.map((s) => [s.image.id, s.action])).toEqual([
      ["c", "current"],
      ["b2", "mark"],
      ["b1", "mark"],
      ["a", "delete"],
    ]);
  });

  it("says why an expired version in use stays", () => {
    const images = [
      image("b", "b", "2026-11-20", { validity: "none" }),
      image("a", "a", "2026-08-20", { validity: "none", usedBy: ["web-1 (s-1)"] }),
    ];
    expect(planRetention(images, current("b"), "2026-11-23")[1]!.reason).toBe(
      "uuid_validity none: valid only while it was current, but servers still use it: web-1 (s-1)",
    );
  });

  it("renames with the build date and says why", () => {
    const [, step] = planRetention(
      [image("b", "b", "2026-11-20"), image("a", "a", "2026-08-20")],
      current("b"),
      "2026-11-23",
    );
    expect(step).toMatchObject({
      action: "mark",
      rename: `${NAME} 20260820`,
      reason: "uuid_validity last-2: previous version 1 of 2",
    });
  });

  it("keeps the arches apart", () => {
    const arm = { ...image("arm", "f", "2026-01-01", { validity: "none" }), arch: "arm64" };
    const steps = planRetention(
      [image("b", "b", "2026-11-20", { validity: "none" }), arm],
      new Map([
        ["debian-12/x86_64", hash("b")],
        ["debian-12/arm64", hash("f")],
      ]),
      "2026-11-23",
    );
    expect(actions(steps)).toEqual({ b: "current", arm: "current" });
  });
});

describe("retired names and tags", () => {
  it.each([
    { name: NAME, built: "2026-08-20", expected: `${NAME} 20260820` },
    { name: `${NAME} 20260101`, built: "2026-08-20", expected: `${NAME} 20260820` },
    { name: "Ubuntu 24.04", built: "2026-08-20 13:05", expected: "Ubuntu 24.04 20260820" },
  ])("$name built $built → $expected", ({ name, built, expected }) => {
    expect(retiredName({ ...image("a", "a", "2026-01-01"), name, tags: [`scs:image_build_date=${built}`] })).toBe(
      expected,
    );
  });

  it("falls back to the creation day without a build date", () => {
    expect(retiredName({ ...image("a", "a", "2026-03-04"), tags: [] })).toBe(`${NAME} 20260304`);
  });

  it("adds the hidden marker once", () => {
    expect(hiddenTags(["a"])).toEqual(["a", HIDDEN_TAG]);
    expect(hiddenTags(["a", HIDDEN_TAG])).toEqual(["a", HIDDEN_TAG]);
  });
});

describe("current builds, as the stack hands them to the CLI", () => {
  it("round-trips, sorted", () => {
    const plans = [
      { release: { id: "ubuntu-24.04" }, arch: "x86_64", contentHash: hash("b") },
      { release: { id: "debian-12" }, arch: "arm64", contentHash: hash("a") },
    ];
    const text = formatCurrentBuilds(plans);
    expect(text).toBe(`debian-12/arm64=${hash("a")},ubuntu-24.04/x86_64=${hash("b")}`);
    expect([...parseCurrentBuilds(text)]).toEqual([
      ["debian-12/arm64", hash("a")],
      ["ubuntu-24.04/x86_64", hash("b")],
    ]);
  });

  it.each([
    {
      text: "debian-12=abc",
      error: 'current build 1 "debian-12=abc": expected <release>/<x86_64|arm64>=<sha256 content hash>',
    },
    { text: `debian-12/x86_64=${hash("a")},debian-12/ppc64=${hash("a")}`, error: "current build 2" },
    {
      text: `debian-12/x86_64=${hash("a")},debian-12/x86_64=${hash("b")}`,
      error: "current build 2: debian-12/x86_64 is given twice",
    },
  ])("refuses $text", ({ text, error }) => {
    expect(() => parseCurrentBuilds(text)).toThrow(error);
  });
});

describe("release status tag", () => {
  it.each([
    {
      why: "added last when missing",
      tags: ["a", "b"],
      status: "released" as const,
      want: ["a", "b", "factory:status=released"],
    },
    {
      why: "replaced in place",
      tags: ["a", "factory:status=candidate", "b"],
      status: "released" as const,
      want: ["a", "factory:status=released", "b"],
    },
    {
      why: "kept once when repeated",
      tags: ["factory:status=candidate", "x", "factory:status=released"],
      status: "released" as const,
      want: ["factory:status=released", "x"],
    },
    {
      why: "set back to candidate",
      tags: ["factory:status=released"],
      status: "candidate" as const,
      want: ["factory:status=candidate"],
    },
  ])("$why", ({ tags, status, want }) => {
    expect(withStatus(tags, status)).toEqual(want);
  });
});
