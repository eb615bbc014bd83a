/**
 * InstantApps as data: their place in the catalog, the stack-level overrides that re-base them or replace their
 * pinned downloads, and how both reach the plan, the content hash and the build Command.
 */
import { describe, expect, it } from "vitest";
import {
  CatalogError,
  loadCatalog,
  overrideProblems,
  withOverrides,
  type AppRelease,
  type CatalogOverrides,
} from "../../images";
import { WORDPRESS, WORDPRESS_TARBALL } from "../../images/apps";
import { Step } from "../../images/schema";
import {
  contentHash,
  dialsFor,
  hashInputs,
  overridesEnvironment,
  planStack,
  rebuildReasons,
  withBaseEpoch,
} from "../../builder/core/plan";
import { scsMetadata } from "../../builder/core/scs";
import { settingsFor } from "./helpers";

const catalog = loadCatalog();
const app = (id: string) => catalog.byId.get(id) as AppRelease;
const STAND_IN = "a".repeat(64);

describe("InstantApps in the catalog", () => {
  it.each(["app-wordpress", "app-openvpn"])("%s layers on Ubuntu 24.04 LTS and follows its end of life", (id) => {
    const r = app(id);
    expect(r.kind).toBe("app");
    expect(r.base).toBe("ubuntu-24.04");
    expect(r.eol).toBe(catalog.byId.get("ubuntu-24.04")!.eol);
  });

  it("pins WordPress's tarball by version and the sha1 wordpress.org publishes", () => {
    const fetch = app("app-wordpress").recipe.find((s) => s.op === "fetch-file");
    expect(fetch).toEqual({
      op: "fetch-file",
      url: `https://wordpress.org/wordpress-${WORDPRESS.version}.tar.gz`,
      sha1: WORDPRESS.sha1,
      path: "/var/tmp/wordpress.tar.gz",
    });
  });

  it("ships the boot-time scripts as files, executable where they run", () => {
    const files = (id: string) =>
      Object.fromEntries(app(id).recipe.flatMap((s) => (s.op === "write-file" ? [[s.path, s.mode]] : [])));
    expect(files("app-wordpress")).toMatchObject({
      "/usr/sbin/scw-wordpress-firstboot": "0755",
      "/lib/systemd/system/scw-wordpress-firstboot.service": "0644",
      "/etc/apache2/sites-available/wordpress.conf": "0644",
    });
    expect(files("app-openvpn")).toMatchObject({
      "/usr/sbin/scw-openvpn-firstboot": "0755",
      "/usr/sbin/scw-openvpn-nat": "0755",
      "/etc/sysctl.d/60-scw-openvpn.conf": "0644",
    });
  });

  it("writes none of the secret-bearing files at build time: first-boot units make them", () => {
    const SECRET_PATHS = /^(\/var\/www\/wordpress\/wp-config\.php|\/root\/|\/etc\/openvpn\/(server|easy-rsa)\/)/;
    for (const id of ["app-wordpress", "app-openvpn"]) {
      const written = app(id).recipe.flatMap((s) => (s.op === "write-file" || s.op === "fetch-file" ? [s.path] : []));
      expect(
        written.filter((p) => SECRET_PATHS.test(p)),
        id,
      ).toEqual([]);
      expect(app(id).recipe).toContainEqual({
        op: "enable-service",
        name: id === "app-wordpress" ? "scw-wordpress-firstboot.service" : "scw-openvpn-firstboot.service",
      });
    }
  });

  it.each([
    { id: "app-wordpress", os_purpose: "custom", os_distro: "ubuntu", os_version: "24.04" },
    { id: "app-openvpn", os_purpose: "network", os_distro: "ubuntu", os_version: "24.04" },
  ])("$id carries SCS metadata of its base with os_purpose $os_purpose", ({ id, ...expected }) => {
    expect(scsMetadata(catalog, app(id), "x86_64")).toMatchObject(expected);
  });
});

describe("fetch-file pins", () => {
  it.each([
    { pin: { sha1: "f".repeat(40) }, ok: true },
    { pin: { sha256: "f".repeat(64) }, ok: true },
    { pin: {}, ok: false },
    { pin: { sha1: "f".repeat(40), sha256: "f".repeat(64) }, ok: false },
    { pin: { sha1: "F".repeat(40) }, ok: false },
  ])("$pin is accepted: $ok", ({ pin, ok }) => {
    const r = Step.safeParse({ op: "fetch-file", url: "https://example.org/x.tar.gz", path: "/x", ...pin });
    expect(r.success).toBe(ok);
  });

  it("refuses a download over plain http", () => {
    expect(
      Step.safeParse({ op: "fetch-file", url: "http://example.org/x", path: "/x", sha1: "f".repeat(40) }).success,
    ).toBe(false);
  });
});

describe("catalog overrides", () => {
  it.each<{ overrides: CatalogOverrides; problems: string[] }>([
    { overrides: { appBases: { "app-wordpress": "debian-12" } }, problems: [] },
    {
      overrides: { appBases: { "debian-12": "debian-13" } },
      problems: ['appBases.debian-12: "debian-12" is an OS release, not an app'],
    },
    {
      overrides: { appBases: { "app-wordpress": "app-openvpn" } },
      problems: ['appBases.app-wordpress: "app-openvpn" is an app, not an OS release'],
    },
    {
      overrides: { appBases: { "app-nope": "debian-12" } },
      problems: ['appBases.app-nope: no release "app-nope" in the catalog'],
    },
    { overrides: { appBases: { "app-openvpn": "archlinux-rolling" } }, problems: [] },
    { overrides: { sourceOverrides: { [WORDPRESS_TARBALL]: { sha256: STAND_IN } } }, problems: [] },
    {
      overrides: { sourceOverrides: { "https://example.org/other.tgz": { sha256: STAND_IN } } },
      problems: ["sourceOverrides: no fetch-file step downloads https://example.org/other.tgz"],
    },
  ])("$overrides → $problems", ({ overrides, problems }) => {
    expect(overrideProblems(catalog, overrides)).toEqual(problems);
  });

  it("re-bases an app and swaps a pinned download for the stand-in's digest, leaving the published catalog alone", () => {
    const local = withOverrides(catalog, {
      appBases: { "app-wordpress": "debian-12" },
      sourceOverrides: { [WORDPRESS_TARBALL]: { sha256: STAND_IN } },
    });
    const wp = local.byId.get("app-wordpress") as AppRelease;
    expect(wp.base).toBe("debian-12");
    expect(wp.recipe.find((s) => s.op === "fetch-file")).toEqual({
      op: "fetch-file",
      url: WORDPRESS_TARBALL,
      sha256: STAND_IN,
      path: "/var/tmp/wordpress.tar.gz",
    });
    expect(app("app-wordpress").base).toBe("ubuntu-24.04");
    expect(withOverrides(catalog, {})).toBe(catalog);
  });

  it("throws a CatalogError naming every misfit", () => {
    expect(() => withOverrides(catalog, { appBases: { "app-nope": "nope" } })).toThrow(CatalogError);
    expect(() => withOverrides(catalog, { appBases: { "app-nope": "nope" } })).toThrow(
      /appBases.app-nope: no release "nope"/,
    );
  });
});

describe("planning InstantApps", () => {
  const plan = (over: Record<string, unknown>) =>
    planStack(catalog, settingsFor({ images: ["app-wordpress", "app-openvpn"], ...over }));

  it("hashes an app over its base: the plan names the base and the upstream is the base's", () => {
    const [wp] = plan({});
    expect(wp!.hashInputs.base).toBe("ubuntu-24.04");
    expect(wp!.hashInputs.upstream.image).toMatch(/^https:\/\/cloud-images\.ubuntu\.com\/releases\/noble\//);
    expect(wp!.overrides).toEqual({});
  });

  it("rebuilds an app on a new base, and says why", () => {
    const [before] = plan({});
    const [after] = plan({ appBases: ["app-wordpress=debian-12"] });
    expect(after!.contentHash).not.toBe(before!.contentHash);
    expect(rebuildReasons(before!.hashInputs, after!.hashInputs)).toEqual([
      "new base: ubuntu-24.04 → debian-12",
      "new upstream build of debian-12: 20261105 → 20261102-2314",
      "base recipe changed",
    ]);
    expect(after!.overrides).toEqual({ appBases: { "app-wordpress": "debian-12" } });
  });

  it("gives each image only the overrides that concern it, as the build Command's environment", () => {
    const [wp, vpn] = plan({
      appBases: ["app-wordpress=debian-12", "app-openvpn=debian-12"],
      sourceOverrides: [`${WORDPRESS_TARBALL} sha256:${STAND_IN}`],
    });
    expect(overridesEnvironment(wp!.overrides)).toEqual({
      FACTORY_APP_BASES: JSON.stringify({ "app-wordpress": "debian-12" }),
      FACTORY_SOURCE_OVERRIDES: JSON.stringify({ [WORDPRESS_TARBALL]: { sha256: STAND_IN } }),
    });
    expect(overridesEnvironment(vpn!.overrides)).toEqual({
      FACTORY_APP_BASES: JSON.stringify({ "app-openvpn": "debian-12" }),
    });
    expect(overridesEnvironment({})).toEqual({});
  });

  it("changes only WordPress's hash when its download is replaced", () => {
    const before = plan({});
    const after = plan({ sourceOverrides: [`${WORDPRESS_TARBALL} sha256:${STAND_IN}`] });
    expect(after.map((p, i) => p.contentHash !== before[i]!.contentHash)).toEqual([true, false]);
    expect(rebuildReasons(before[0]!.hashInputs, after[0]!.hashInputs)).toEqual(["app recipe changed"]);
  });

  it("rebuilds the apps when their base rebuilds, whatever the cause, and names the base first", () => {
    const before = plan({ appBases: ["app-wordpress=debian-12"] });
    const after = plan({ appBases: ["app-wordpress=debian-12"], securityRebuilds: ["debian-12:1"] });
    const base = planStack(catalog, settingsFor({ images: ["debian-12"], securityRebuilds: ["debian-12:1"] }))[0]!;
    expect(after[0]!.hashInputs.baseContentHash).toBe(base.contentHash);
    expect(rebuildReasons(before[0]!.hashInputs, after[0]!.hashInputs)).toEqual([
      "base debian-12 rebuilt",
      "security rebuild #1",
    ]);
    // OpenVPN stays on Ubuntu: untouched.
    expect(after[1]!.contentHash).toBe(before[1]!.contentHash);
  });

  it("names its base by the base's own security counter, even when the app's is higher", () => {
    const [wp] = plan({ securityRebuilds: ["app-wordpress:2"] });
    const [ubuntu] = planStack(
      catalog,
      settingsFor({ images: ["ubuntu-24.04"], securityRebuilds: ["app-wordpress:2"] }),
    );
    expect(wp!.hashInputs.securityEpoch).toBe(2);
    expect(wp!.hashInputs.baseContentHash).toBe(ubuntu!.contentHash);
  });

  it.each([
    { rules: [] as string[] },
    { rules: ["app-wordpress:2"] },
    { rules: ["ubuntu-24.04:3"] },
    { rules: ["*:1", "app-wordpress:4"] },
  ])("finds the base's security counter from the planned hash alone ($rules)", ({ rules }) => {
    const [wp] = plan({ securityRebuilds: rules });
    const { baseSecurityEpoch: _, ...cli } = dialsFor(wp!.release, catalog, settingsFor({ securityRebuilds: rules }));
    const found = withBaseEpoch(catalog, wp!.release, "x86_64", cli, wp!.contentHash);
    expect(contentHash(hashInputs(catalog, wp!.release, "x86_64", found))).toBe(wp!.contentHash);
    // Another planned hash matches no counter: the dials stay as given, for the build to refuse.
    expect(withBaseEpoch(catalog, wp!.release, "x86_64", cli, "0".repeat(64))).toEqual(cli);
  });
});

describe("stack settings for apps", () => {
  it.each([
    {
      over: { appBases: ["app-wordpress:debian-12"] },
      message: /image-factory:appBases\.0: expected <app-id>=<os-release-id>/,
    },
    {
      over: { appBases: ["app-wordpress=debian-99"] },
      message: /image-factory:appBases\.app-wordpress: no release "debian-99" in the catalog/,
    },
    {
      over: { sourceOverrides: [`${WORDPRESS_TARBALL} sha1:${"a".repeat(40)}`] },
      message: /image-factory:sourceOverrides\.0: expected <official url> sha256:<64 hex digits>/,
    },
    {
      over: { sourceOverrides: [`https://example.org/x.tgz sha256:${STAND_IN}`] },
      message: /image-factory:sourceOverrides: no fetch-file step downloads https:\/\/example\.org\/x\.tgz/,
    },
  ])("rejects $over", ({ over, message }) => {
    expect(() => settingsFor(over)).toThrow(message);
  });

  it("reads a replacement URL after the digest", () => {
    const s = settingsFor({
      sourceOverrides: [`${WORDPRESS_TARBALL} sha256:${STAND_IN} https://mirror.example/wp.tgz`],
    });
    expect(s.sourceOverrides).toEqual({
      [WORDPRESS_TARBALL]: { sha256: STAND_IN, url: "https://mirror.example/wp.tgz" },
    });
  });
});
