import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadCatalog, Pin, pinProblems, withOverrides, type Catalog, type OsRelease } from "../../images";

const ROOT = join(__dirname, "..", "..");
const catalog = loadCatalog();

/** The catalog with one OS release edited. */
function edited(id: string, edit: (r: OsRelease) => void): Catalog {
  const r = structuredClone(catalog.byId.get(id) as OsRelease);
  edit(r);
  const releases = catalog.releases.map((x) => (x.id === id ? r : x));
  return { releases, byId: new Map(releases.map((x) => [x.id, x])) };
}
const RECORDED = {
  recordedBy: "check-upstream --write",
  date: "2026-12-01",
  listing: "https://cloud.debian.org/images/cloud/bookworm/",
} as const;

describe("pins provenance", () => {
  it("is read from images/pins.json in the source tree, every pin saying where it came from", () => {
    const file = JSON.parse(readFileSync(join(ROOT, "images", "pins.json"), "utf8")) as Record<string, unknown>;
    for (const r of catalog.releases) if (r.kind === "os") expect(r.upstream.pins, r.id).toEqual(file[r.id]);
    // None of today's pins was recorded from an upstream listing.
    for (const r of catalog.releases)
      if (r.kind === "os")
        for (const pin of Object.values(r.upstream.pins)) expect(pin!.provenance, r.id).toBe("unverified");
  });

  it.each([
    {
      name: "an unverified pin of an unsigned upstream",
      catalog: () => catalog,
      select: ["debian-12", "x86_64"],
      kinds: ["unverified-pin", "no-pinned-checksum"],
    },
    {
      name: "a recorded pin with its checksum",
      catalog: () =>
        edited(
          "debian-12",
          (r) =>
            (r.upstream.pins.x86_64 = { serial: "20261201-0001", checksum: "b".repeat(128), provenance: RECORDED }),
        ),
      select: ["debian-12", "x86_64"],
      kinds: [],
    },
    {
      name: "a recorded pin of a signed upstream whose fingerprint is unverified",
      catalog: () =>
        edited(
          "almalinux-10",
          (r) =>
            (r.upstream.pins.x86_64 = {
              serial: "10.1-20261201",
              provenance: { ...RECORDED, listing: "https://repo.almalinux.org/almalinux/10/cloud/x86_64/images/" },
            }),
        ),
      select: ["almalinux-10", "x86_64"],
      kinds: ["unverified-signature"],
    },
    {
      name: "a recorded pin of Ubuntu, whose cloud image key is pinned",
      catalog: () =>
        edited(
          "ubuntu-24.04",
          (r) =>
            (r.upstream.pins.x86_64 = {
              serial: "20261201",
              provenance: { ...RECORDED, listing: "https://cloud-images.ubuntu.com/releases/noble/" },
            }),
        ),
      select: ["ubuntu-24.04", "x86_64"],
      kinds: [],
    },
    {
      name: "an unverified pin of AlmaLinux 9, whose key is pinned",
      catalog: () => catalog,
      select: ["almalinux-9", "x86_64"],
      kinds: ["unverified-pin"],
    },
    {
      name: "an app, judged by its base (once per base and architecture)",
      catalog: () => withOverrides(catalog, { appBases: { "app-wordpress": "debian-12" } }),
      select: ["app-wordpress", "x86_64", "debian-12", "x86_64"],
      kinds: ["unverified-pin", "no-pinned-checksum"],
    },
  ])("$name", ({ catalog: make, select, kinds }) => {
    const c = make();
    const selection = [];
    for (let i = 0; i < select.length; i += 2)
      selection.push({ release: c.byId.get(select[i]!)!, arch: select[i + 1] as "x86_64" });
    const problems = pinProblems(c, selection);
    expect(problems.map((p) => p.kind)).toEqual(kinds);
    for (const p of problems) expect(p.message).toMatch(new RegExp(`^${p.release} ${p.arch}: `));
  });

  it("covers every release and architecture of the catalog by default", () => {
    const all = pinProblems(catalog);
    const pins = catalog.releases.flatMap((r) => (r.kind === "os" ? r.architectures.map((a) => `${r.id} ${a}`) : []));
    expect(new Set(all.filter((p) => p.kind === "unverified-pin").map((p) => `${p.release} ${p.arch}`))).toEqual(
      new Set(pins),
    );
    // Once per architecture: AlmaLinux 10's key is the one signing key no stored source gave.
    expect(new Set(all.filter((p) => p.kind === "unverified-signature").map((p) => p.release))).toEqual(
      new Set(["almalinux-10"]),
    );
    expect(all.some((p) => p.release === "almalinux-9" && p.kind !== "unverified-pin")).toBe(false);
  });

  it("rejects a pin without provenance, or with a provenance that names no listing", () => {
    expect(Pin.safeParse({ serial: "1" }).success).toBe(false);
    expect(
      Pin.safeParse({ serial: "1", provenance: { recordedBy: "check-upstream --write", date: "2026-12-01" } }).success,
    ).toBe(false);
    expect(Pin.safeParse({ serial: "1", provenance: RECORDED }).success).toBe(true);
  });
});
