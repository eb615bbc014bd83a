import { describe, expect, it } from "vitest";
import { CATALOG_SOURCES, CatalogError, loadCatalog, parseCatalog, type CatalogSource } from "../../images";
import { SCS_KEYS, scsMetadata } from "../../builder/core/scs";

const REQUIRED = [
  "ubuntu-26.04",
  "ubuntu-24.04",
  "ubuntu-22.04",
  "debian-13",
  "debian-12",
  "almalinux-10",
  "almalinux-9",
  "rocky-10",
  "rocky-9",
  "centos-stream-10",
  "centos-stream-9",
  "archlinux-rolling",
];

const ubuntu = () => structuredClone(CATALOG_SOURCES[0]!.releases as Record<string, unknown>[])[1]!;

function problemsOf(sources: CatalogSource[]): string[] {
  try {
    parseCatalog(sources);
  } catch (err) {
    expect(err).toBeInstanceOf(CatalogError);
    return (err as CatalogError).problems;
  }
  throw new Error("catalog unexpectedly valid");
}

describe("catalog", () => {
  const catalog = loadCatalog();

  it("has every required release with complete SCS-0102 metadata", () => {
    expect(catalog.releases.map((r) => r.id)).toEqual(expect.arrayContaining(REQUIRED));
    for (const release of catalog.releases) {
      expect(release.architectures).toContain("x86_64");
      for (const arch of release.architectures) {
        const meta = scsMetadata(catalog, release, arch);
        expect(Object.keys(meta).sort()).toEqual([...SCS_KEYS].sort());
        for (const key of SCS_KEYS) expect(meta[key], `${release.id} ${arch} ${key}`).not.toBe("");
      }
    }
  });

  it("names the official upstream as image_source even for arm64", () => {
    const noble = catalog.byId.get("ubuntu-24.04")!;
    expect(scsMetadata(catalog, noble, "arm64").image_source).toBe(
      "https://cloud-images.ubuntu.com/releases/noble/release-20261105/ubuntu-24.04-server-cloudimg-arm64.img",
    );
    expect(scsMetadata(catalog, noble, "arm64").architecture).toBe("aarch64");
  });

  it("gives RHEL-family releases an SELinux relabel as the last step", () => {
    for (const r of catalog.releases.filter((r) => r.kind === "os" && r.family === "rhel"))
      expect(r.recipe.at(-1), r.id).toEqual({ op: "selinux-relabel" });
  });

  const cases: { name: string; mutate: (r: Record<string, unknown>) => void; problem: RegExp }[] = [
    {
      name: "a bad label",
      mutate: (r) => (r.label = "Ubuntu Noble"),
      problem: /^images\/test\.ts: entry 0 \(ubuntu-24\.04\): label: expected a label such as ubuntu_noble$/,
    },
    {
      name: "a missing SCS key",
      mutate: (r) => delete (r.scs as Record<string, unknown>).image_original_user,
      problem: /^images\/test\.ts: entry 0 \(ubuntu-24\.04\): scs\.image_original_user: /,
    },
    {
      name: "a bad replace_frequency",
      mutate: (r) => ((r.scs as Record<string, unknown>).replace_frequency = "sometimes"),
      problem: /entry 0 \(ubuntu-24\.04\): scs\.replace_frequency: /,
    },
    {
      name: "a date in the wrong format",
      mutate: (r) => (r.eol = "31/05/2029"),
      problem: /entry 0 \(ubuntu-24\.04\): eol: expected a date as YYYY-MM-DD/,
    },
    {
      name: "an unknown recipe step",
      mutate: (r) => (r.recipe as unknown[]).push({ op: "reboot" }),
      problem: /entry 0 \(ubuntu-24\.04\): recipe\.3\.op: /,
    },
    {
      name: "an http upstream",
      mutate: (r) => ((r.upstream as Record<string, unknown>).image = "http://example.org/x.img"),
      problem: /entry 0 \(ubuntu-24\.04\): upstream\.image: expected an https:\/\/ URL/,
    },
    {
      name: "a misspelled field",
      mutate: (r) => (r.eoll = "2029-05-31"),
      problem: /entry 0 \(ubuntu-24\.04\): \(entry\): Unrecognized key: "eoll"/,
    },
    {
      name: "an architecture without a pin",
      mutate: (r) => delete (r.upstream as Record<string, Record<string, unknown>>).pins!.arm64,
      problem: /^images\/test\.ts: ubuntu-24\.04: upstream\.pins\.arm64: missing \(architecture arm64 is declared\)$/,
    },
    {
      name: "an end of life before the release",
      mutate: (r) => (r.eol = "2020-01-01"),
      problem: /ubuntu-24\.04: eol: 2020-01-01 is not after released 2024-04-25/,
    },
    {
      name: "a sha512 pin for a sha256 checksum file",
      mutate: (r) =>
        ((r.upstream as { pins: Record<string, Record<string, unknown>> }).pins.x86_64!.checksum = "a".repeat(128)),
      problem: /ubuntu-24\.04: upstream\.pins\.x86_64\.checksum: length does not match sha256sums/,
    },
  ];

  it.each(cases)("rejects $name, naming file, entry and field", ({ mutate, problem }) => {
    const entry = ubuntu();
    mutate(entry);
    const problems = problemsOf([{ file: "images/test.ts", releases: [entry] }]);
    expect(
      problems.some((p) => problem.test(p)),
      problems.join("\n"),
    ).toBe(true);
  });

  it("rejects duplicate ids and labels across files", () => {
    const problems = problemsOf([
      { file: "images/a.ts", releases: [ubuntu()] },
      { file: "images/b.ts", releases: [ubuntu()] },
    ]);
    expect(problems).toContain('images/b.ts: id "ubuntu-24.04" is already used in images/a.ts');
    expect(problems).toContain('images/b.ts: label "ubuntu_noble" (ubuntu-24.04) is already used in images/a.ts');
  });

  it("rejects an app whose base is missing", () => {
    const { kind: _k, distro: _d, version: _v, codename: _c, family: _f, upstream: _u, ...common } = ubuntu();
    const app = { ...common, kind: "app", id: "wordpress-1", label: "wordpress", base: "ubuntu-99.04" };
    const problems = problemsOf([{ file: "images/apps.ts", releases: [app] }]);
    expect(problems).toContain('images/apps.ts: wordpress-1: base: no release "ubuntu-99.04" in the catalog');
  });
});
