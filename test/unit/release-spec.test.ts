import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../images";
import { planStack } from "../../builder/core/plan";
import { GB, releaseSpec, sdkRequests, testEnvironment, withBuildDate } from "../../builder/core/release-spec";
import { readEnvironment, TestInstanceContract } from "../../builder/core/contract";
import { settingsFor } from "./helpers";

const PROJECT = "11111111-2222-4333-8444-555555555555";

describe("the release spec", () => {
  const catalog = loadCatalog();
  const plans = planStack(
    catalog,
    settingsFor({
      images: ["debian-12", "ubuntu-24.04"],
      architectures: ["x86_64", "arm64"],
      zone: "pl-waw-2",
      bucket: "scw-image-factory-pl-waw",
    }),
  );

  it.each(plans.map((p) => [p.name, p] as const))("of %s: names, zone, architecture and disk from the plan", (_, p) => {
    const spec = releaseSpec(p, { bucket: "b", testCommercialType: "DEV1-S", extraTags: ["factory:environment=test"] });
    expect(spec.zone).toBe("pl-waw-2");
    expect(spec.snapshot).toEqual({
      name: `${p.name}-${p.contentHash.slice(0, 12)}`,
      import: { bucket: "b", key: p.artifactKey },
    });
    expect(spec.image).toEqual({ name: p.imageName, architecture: p.arch });
    expect(spec.server.rootVolume).toEqual({ volumeType: "sbs_volume", sizeInGb: Number(p.scs.min_disk) });
    expect(spec.server.name).toMatch(/^test-[a-z0-9-]+-[0-9a-f]{8}$/);
    expect(spec.tags[0]).toBe(`factory:release=${p.release.id}`);
    expect(spec.tags.at(-1)).toBe("factory:environment=test");
  });

  it("maps to the SDK requests the emulated release sends, field by field", () => {
    const p = plans.find((x) => x.arch === "arm64")!;
    const spec = releaseSpec(p, {
      bucket: "scw-image-factory-pl-waw",
      testCommercialType: "COPARM1-2C-8G",
      extraTags: [],
    });
    const r = sdkRequests(spec, PROJECT, "2026-11-20");
    const tags = withBuildDate(spec.tags, "2026-11-20", spec.image.name);
    expect(tags.at(-1)).toBe("scs:image_build_date=2026-11-20");
    expect(r.importSnapshot).toEqual({
      zone: "pl-waw-2",
      bucket: "scw-image-factory-pl-waw",
      key: p.artifactKey,
      name: spec.snapshot.name,
      projectId: PROJECT,
      tags,
    });
    expect(r.createImage("snap-1")).toEqual({
      zone: "pl-waw-2",
      name: p.imageName,
      rootVolume: "snap-1",
      arch: "arm64",
      project: PROJECT,
      public: false,
      tags,
    });
    expect(r.createServer("img-1")).toEqual({
      zone: "pl-waw-2",
      name: spec.server.name,
      commercialType: "COPARM1-2C-8G",
      image: "img-1",
      dynamicIpRequired: true,
      volumes: { "0": { volumeType: "sbs_volume", size: Number(p.scs.min_disk) * GB } },
      bootType: "local",
      project: PROJECT,
      protected: false,
      tags: [...tags, "factory:role=test-instance"],
    });
  });

  it("refuses to release without a build date, naming the image", () => {
    expect(() => withBuildDate(["a"], "", "Debian 12 Bookworm (x86_64)")).toThrow(
      /Debian 12 Bookworm \(x86_64\): image-factory publish reported no imageBuildDate/,
    );
  });

  it("gives the test Command the spec's zone and release, through the contract", () => {
    const spec = releaseSpec(plans[0]!, { bucket: "b", testCommercialType: "DEV1-S", extraTags: [] });
    const env = testEnvironment(spec, {
      serverId: "srv",
      accessKey: "SCWXXXXXXXXXXXXXXXXX",
      secretKey: "s",
      dnsNames: ["deb.example.org"],
    });
    expect(readEnvironment(TestInstanceContract, env)).toEqual({
      serverId: "srv",
      zone: "pl-waw-2",
      release: plans[0]!.release.id,
      accessKey: "SCWXXXXXXXXXXXXXXXXX",
      secretKey: "s",
      dnsNames: ["deb.example.org"],
    });
  });
});
