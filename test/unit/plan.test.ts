import { describe, expect, it } from "vitest";
import { loadCatalog, type Catalog, type OsRelease } from "../../images";
import { canonicalJson } from "../../builder/core/canonical";
import { planStack, rebuildReasons, securityEpoch, type HashInputs } from "../../builder/core/plan";
import { throughMirror } from "../../builder/core/upstream-url";
import { settingsFor } from "./helpers";

/** A catalog where one release's pin or recipe differs, to see which hashes move. */
function withRelease(id: string, change: (r: OsRelease) => void): Catalog {
  const catalog = loadCatalog();
  const releases = catalog.releases.map((r) => {
    if (r.id !== id) return r;
    const copy = structuredClone(r) as OsRelease;
    change(copy);
    return copy;
  });
  return { releases, byId: new Map(releases.map((r) => [r.id, r])) };
}

describe("securityEpoch", () => {
  it.each([
    { rules: [], id: "debian-12", epoch: 0 },
    { rules: ["debian-12:2"], id: "debian-12", epoch: 2 },
    { rules: ["debian-12:2"], id: "debian-13", epoch: 0 },
    { rules: ["*:1", "debian-12:3"], id: "debian-12", epoch: 3 },
    { rules: ["*:4", "debian-12:3"], id: "debian-12", epoch: 4 },
  ])("$rules → $id = $epoch", ({ rules, id, epoch }) => expect(securityEpoch(id, rules)).toBe(epoch));
});

describe("planStack", () => {
  it("plans each selected release for each architecture it and the stack share", () => {
    const plans = planStack(
      loadCatalog(),
      settingsFor({ images: ["ubuntu-24.04", "archlinux-rolling"], architectures: ["x86_64", "arm64"] }),
    );
    expect(plans.map((p) => p.name)).toEqual(["ubuntu-24.04-x86_64", "ubuntu-24.04-arm64", "archlinux-rolling-x86_64"]);
    for (const p of plans) {
      expect(p.zone).toBe("fr-par-2");
      expect(p.region).toBe("fr-par");
      expect(p.artifactKey).toBe(`images/${p.release.id}/${p.arch}/${p.contentHash}.qcow2`);
      expect(p.contentHash).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('ships the whole catalog for ["*"]', () => {
    expect(planStack(loadCatalog(), settingsFor({ images: ["*"] }))).toHaveLength(loadCatalog().releases.length);
  });

  it("gives every zone of a region the same content hash and artifact key", () => {
    const a = planStack(loadCatalog(), settingsFor({ zone: "fr-par-1" }));
    const b = planStack(loadCatalog(), settingsFor({ zone: "fr-par-3" }));
    expect(a.map((p) => p.artifactKey)).toEqual(b.map((p) => p.artifactKey));
  });

  const all = settingsFor({ images: ["*"] });
  const base = new Map(planStack(loadCatalog(), all).map((p) => [p.name, p.contentHash]));
  const changed = (catalog: Catalog, settings = all) =>
    planStack(catalog, settings)
      .filter((p) => base.get(p.name) !== p.contentHash)
      .map((p) => p.name);

  it.each([
    {
      change: "a new upstream serial",
      catalog: () => withRelease("debian-12", (r) => (r.upstream.pins.x86_64!.serial = "20261201-0000")),
      expected: ["debian-12-x86_64"],
    },
    {
      change: "a pinned checksum",
      catalog: () => withRelease("rocky-9", (r) => (r.upstream.pins.x86_64!.checksum = "b".repeat(64))),
      expected: ["rocky-9-x86_64"],
    },
    {
      change: "a recipe step",
      catalog: () => withRelease("ubuntu-22.04", (r) => r.recipe.push({ op: "install", packages: ["htop"] })),
      expected: ["ubuntu-22.04-x86_64"],
    },
    { change: "nothing", catalog: () => loadCatalog(), expected: [] },
  ])("$change rebuilds exactly the affected images", ({ catalog, expected }) => {
    expect(changed(catalog())).toEqual(expected);
  });

  it.each([
    { dial: "releaseEpoch", value: "2027Q1", count: loadCatalog().releases.length },
    { dial: "ecosystemVersion", value: "1.1.0", count: loadCatalog().releases.length },
    { dial: "securityRebuilds", value: ["almalinux-9:1"], count: 1 },
    // An app inherits its base's security rebuilds.
    { dial: "securityRebuilds", value: ["ubuntu-24.04:1"], count: 3 },
    { dial: "securityRebuilds", value: ["*:1"], count: loadCatalog().releases.length },
    { dial: "zone", value: "nl-ams-1", count: 0 },
  ])("$dial = $value rebuilds $count images", ({ dial, value, count }) => {
    expect(changed(loadCatalog(), settingsFor({ images: ["*"], [dial]: value }))).toHaveLength(count);
  });
});

describe("rebuildReasons", () => {
  const inputs: HashInputs = planStack(loadCatalog(), settingsFor({ images: ["debian-12"] }))[0]!.hashInputs;
  const edit = (change: (i: HashInputs) => void) => {
    const copy = structuredClone(inputs);
    change(copy);
    return copy;
  };
  it.each([
    { why: "first build", prev: undefined, next: inputs, reasons: ["new image in this zone"] },
    { why: "unchanged", prev: inputs, next: inputs, reasons: [] },
    {
      why: "serial",
      prev: inputs,
      next: edit((i) => (i.upstream.serial = "20261201-0000")),
      reasons: ["new upstream build: 20261102-2314 → 20261201-0000"],
    },
    {
      why: "recipe",
      prev: inputs,
      next: edit((i) => i.recipe.push({ op: "upgrade-cloud-init" })),
      reasons: ["recipe changed"],
    },
    {
      why: "epoch and security",
      prev: inputs,
      next: edit((i) => {
        i.releaseEpoch = "2027Q1";
        i.securityEpoch = 2;
      }),
      reasons: ["quarterly release: 2026Q4 → 2027Q1", "security rebuild #2"],
    },
    {
      why: "ecosystem",
      prev: inputs,
      next: edit((i) => (i.ecosystemVersion = "1.1.0")),
      reasons: ["new scaleway-ecosystem: 1.0.0 → 1.1.0"],
    },
  ])("$why", ({ prev, next, reasons }) => expect(rebuildReasons(prev, next)).toEqual(reasons));
});

describe("throughMirror", () => {
  it.each([
    {
      url: "https://cloud.debian.org/images/cloud/x.qcow2",
      mirror: undefined,
      out: "https://cloud.debian.org/images/cloud/x.qcow2",
    },
    {
      url: "https://cloud.debian.org/images/cloud/x.qcow2",
      mirror: "http://127.0.0.1:9/up",
      out: "http://127.0.0.1:9/up/cloud.debian.org/images/cloud/x.qcow2",
    },
    { url: "https://a.example/b?c=d", mirror: "http://m/", out: "http://m/a.example/b?c=d" },
  ])("$url via $mirror", ({ url, mirror, out }) => expect(throughMirror(url, mirror)).toBe(out));
});

describe("canonicalJson", () => {
  it("sorts keys at every depth", () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}',
    );
  });
});
