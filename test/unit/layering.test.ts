/** Layering an InstantApp on its base's artifact: which steps run, and which base artifact is accepted. */
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../images";
import type { Step } from "../../images/schema";
import { BaseMismatchError, buildSteps, checkBase, type Manifest } from "../../builder/pipeline/build";
import { layerDependencies, planStack } from "../../builder/core/plan";
import { settingsFor } from "./helpers";

const catalog = loadCatalog();
const eco: Step = { op: "scaleway-ecosystem" };
const kernel: Step = { op: "upgrade-kernel", package: "kernel" };
const relabel: Step = { op: "selinux-relabel" };
const uefi: Step = { op: "ensure-uefi" };
const app: Step = { op: "install", packages: ["openvpn"] };

describe("buildSteps", () => {
  it.each([
    {
      why: "from the upstream: the base's steps, then the app's",
      os: [eco, kernel],
      layered: false,
      steps: [eco, kernel, app],
    },
    { why: "on the base: only the app's", os: [eco, kernel], layered: true, steps: [app] },
    {
      why: "on an SELinux base: the app's, then a relabel again",
      os: [eco, kernel, uefi, relabel],
      layered: true,
      steps: [app, relabel],
    },
    {
      why: "an SELinux base from the upstream: all of it",
      os: [eco, uefi, relabel],
      layered: false,
      steps: [eco, uefi, relabel, app],
    },
  ])("$why", ({ os, layered, steps }) => expect(buildSteps(os, [app], layered)).toEqual(steps));
});

describe("checkBase", () => {
  const settings = settingsFor({ images: ["debian-12", "app-openvpn"], appBases: ["app-openvpn=debian-12"] });
  const [base, vpn] = planStack(catalog, settings);
  const manifest = (over: Partial<Manifest>) =>
    ({ release: "debian-12", arch: "x86_64", contentHash: base!.contentHash, ...over }) as Manifest;

  it("accepts the base the app's inputs name", () => {
    expect(vpn!.hashInputs.baseContentHash).toBe(base!.contentHash);
    const b = { artifact: "base.qcow2", manifest: manifest({}) };
    expect(checkBase(b, vpn!.hashInputs, "app-openvpn")).toBe(b);
  });

  it.each([
    { why: "another build of the base", over: { contentHash: "f".repeat(64) } },
    { why: "another release", over: { release: "ubuntu-24.04" } },
    { why: "another architecture", over: { arch: "arm64" as const } },
  ])("refuses $why, naming both", ({ over }) => {
    expect(() =>
      checkBase({ artifact: "base.qcow2", manifest: manifest(over) }, vpn!.hashInputs, "app-openvpn x86_64"),
    ).toThrow(BaseMismatchError);
    expect(() =>
      checkBase({ artifact: "base.qcow2", manifest: manifest(over) }, vpn!.hashInputs, "app-openvpn x86_64"),
    ).toThrow(/app-openvpn x86_64: base artifact base\.qcow2 .* the app's inputs name debian-12 x86_64/);
  });
});

describe("layerDependencies", () => {
  it.each([
    {
      why: "apps on a planned base wait for it",
      images: ["debian-12", "app-wordpress", "app-openvpn"],
      bases: ["app-wordpress=debian-12", "app-openvpn=debian-12"],
      deps: [
        ["app-wordpress-x86_64", "debian-12-x86_64"],
        ["app-openvpn-x86_64", "debian-12-x86_64"],
      ],
    },
    {
      why: "an app whose base is not planned waits for nothing",
      images: ["debian-12", "app-openvpn"],
      bases: [],
      deps: [],
    },
    { why: "OS images wait for nothing", images: ["debian-12", "ubuntu-24.04"], bases: [], deps: [] },
    {
      why: "the Ubuntu base, planned",
      images: ["app-openvpn", "ubuntu-24.04"],
      bases: [],
      deps: [["app-openvpn-x86_64", "ubuntu-24.04-x86_64"]],
    },
  ])("$why", ({ images, bases, deps }) => {
    const plans = planStack(catalog, settingsFor({ images, appBases: bases }));
    expect([...layerDependencies(plans)]).toEqual(deps);
  });
});
