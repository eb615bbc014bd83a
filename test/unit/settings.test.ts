import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../images";
import {
  parseStackSettings,
  PROJECT,
  StackConfigError,
  StackSettings,
  scalewayS3Region,
} from "../../builder/core/settings";
import { projectDefaults, readStackSettings, stackNames } from "../../builder/system/stack-files";
import { missingCapabilities, ZONES } from "../../builder/core/zones";
import { settingsFor } from "./helpers";

const ROOT = `${__dirname}/../..`;

describe("stack settings", () => {
  it("parses every stack file in stacks/", () => {
    for (const stack of stackNames(ROOT))
      expect(() => readStackSettings(ROOT, stack, loadCatalog()), stack).not.toThrow();
  });

  it("has one prod stack per Availability Zone the pipeline runs in, each holding its own zone", () => {
    const prod = stackNames(ROOT).filter((s) => s.startsWith("prod-"));
    expect(prod.map((s) => s.slice(5)).sort()).toEqual(ZONES.filter((z) => missingCapabilities(z).length === 0).sort());
    for (const stack of prod) expect(readStackSettings(ROOT, stack, loadCatalog()).zone).toBe(stack.slice(5));
  });

  it("declares in Pulumi.yaml the same defaults the parser applies", () => {
    const parsed = StackSettings.parse({
      environment: "x",
      zone: "fr-par-1",
      images: ["*"],
      bucket: "abc",
      releaseEpoch: "2026Q4",
      ecosystemVersion: "1",
      ecosystemRepository: "https://x.example",
    }) as Record<string, unknown>;
    for (const [key, value] of Object.entries(projectDefaults(ROOT))) {
      const name = key.split(":")[1]! as keyof typeof StackSettings.shape;
      // Pulumi hands defaults over as text; the field's own parser must turn it into the parser's default.
      const declared = typeof parsed[name] === "string" ? value : JSON.parse(value);
      expect(StackSettings.shape[name].parse(declared), name).toEqual(parsed[name]);
    }
  });

  it.each([
    {
      overrides: { zone: "fr-par-4" },
      message: /stack test-fr-par-2: invalid configuration:\n  - image-factory:zone: Invalid option/,
    },
    {
      overrides: { images: ["ubuntu-99.04"] },
      message: /image-factory:images: no release "ubuntu-99.04" in the catalog/,
    },
    { overrides: { images: ["*", "debian-12"] }, message: /image-factory:images: "\*" cannot be combined with ids/ },
    {
      overrides: { releaseEpoch: "2026-10" },
      message: /image-factory:releaseEpoch: expected a quarter such as 2026Q4/,
    },
    { overrides: { bucket: "Not A Bucket" }, message: /image-factory:bucket: expected an S3 bucket name/ },
    {
      overrides: { securityRebuilds: ["debian-12"] },
      message: /image-factory:securityRebuilds\.0: expected <image-id>:<n> or \*:<n>/,
    },
    { overrides: { securityRebuilds: ["nope-1:1"] }, message: /image-factory:securityRebuilds: no release "nope-1"/ },
    { overrides: { architectures: ["riscv64"] }, message: /image-factory:architectures\.0: Invalid option/ },
    { overrides: { zonee: "fr-par-1" }, message: /unknown config keys: image-factory:zonee/ },
    { overrides: { runTests: "yes" }, message: /image-factory:runTests: Invalid input: expected boolean/ },
    {
      overrides: { zone: "it-mil-1", bucket: "scw-image-factory-it-mil" },
      message:
        /image-factory:zone: it-mil-1 has no Block Storage snapshot import from Object Storage, which every image needs/,
    },
    {
      overrides: { s3Endpoint: "https://s3.nl-ams.scw.cloud" },
      message:
        /image-factory:s3Endpoint: https:\/\/s3\.nl-ams\.scw\.cloud is Object Storage in nl-ams, but zone fr-par-2 is in fr-par: the bucket must be in fr-par \(https:\/\/s3\.fr-par\.scw\.cloud/,
    },
  ])("rejects $overrides", ({ overrides, message }) => {
    expect(() => settingsFor(overrides)).toThrow(StackConfigError);
    expect(() => settingsFor(overrides)).toThrow(message);
  });

  it.each([
    { endpoint: "https://s3.fr-par.scw.cloud", zone: "fr-par-2" },
    { endpoint: "https://my-bucket.s3.fr-par.scw.cloud", zone: "fr-par-2" },
    { endpoint: "http://127.0.0.1:18681", zone: "fr-par-2" },
    { endpoint: "https://objects.example.org", zone: "pl-waw-1" },
  ])("accepts s3Endpoint $endpoint in $zone", ({ endpoint, zone }) => {
    expect(settingsFor({ s3Endpoint: endpoint, zone }).s3Endpoint).toBe(endpoint);
  });

  it.each([
    { url: "https://s3.fr-par.scw.cloud", region: "fr-par" },
    { url: "https://bucket.s3.pl-waw.scw.cloud/key", region: "pl-waw" },
    { url: "https://s3.fr-par.scw.cloud.example.org", region: undefined },
    { url: "not a url", region: undefined },
  ])("reads region $region from $url", ({ url, region }) => {
    expect(scalewayS3Region(url)).toBe(region);
  });
});

describe("config keys in the wrong namespace", () => {
  /** A valid stack's keys with some moved into another namespace. */
  const config = (moves: Record<string, string | undefined>): Record<string, string> => {
    const base: Record<string, string> = {
      environment: "test",
      zone: "fr-par-2",
      images: '["debian-12"]',
      bucket: "scw-image-factory-fr-par",
      releaseEpoch: "2026Q4",
      ecosystemVersion: "1.0.0",
      ecosystemRepository: "https://packages.example.org/scaleway",
    };
    return Object.fromEntries(
      Object.entries(base).map(([k, v]) => [moves[k] ? `${moves[k]}:${k}` : `${PROJECT}:${k}`, v]),
    );
  };
  const problems = (cfg: Record<string, string>): string[] => {
    try {
      parseStackSettings("test-fr-par-2", cfg, loadCatalog());
    } catch (err) {
      return (err as Error).message
        .split("\n")
        .slice(1)
        .map((l) => l.replace(/^  - /, ""));
    }
    return [];
  };

  it.each([
    {
      moves: { bucket: "imagefactory" },
      expected: [
        "imagefactory:bucket: this project's settings are in the image-factory namespace: write it as image-factory:bucket",
      ],
    },
    {
      moves: { zone: "image_factory" },
      expected: [
        "image_factory:zone: this project's settings are in the image-factory namespace: write it as image-factory:zone",
      ],
    },
    {
      moves: { bucket: "scaleway" },
      expected: [
        "scaleway:bucket: this project's settings are in the image-factory namespace: write it as image-factory:bucket",
      ],
    },
    {
      moves: { releaseEpoch: "Image-Factory", bucket: "scaleway" },
      expected: [
        "scaleway:bucket: this project's settings are in the image-factory namespace: write it as image-factory:bucket",
        "Image-Factory:releaseEpoch: this project's settings are in the image-factory namespace: write it as image-factory:releaseEpoch",
      ],
    },
    // The provider reads scaleway:zone itself: not misplaced, but the missing key says whose it is.
    {
      moves: { zone: "scaleway" },
      expected: [
        'image-factory:zone: Invalid option: expected one of "fr-par-1"|"fr-par-2"|"fr-par-3"|"nl-ams-1"|"nl-ams-2"|"nl-ams-3"|"pl-waw-1"|"pl-waw-2"|"pl-waw-3"|"it-mil-1" (scaleway:zone is another provider\'s setting, not this one)',
      ],
    },
    { moves: {}, expected: [] },
  ])("names $moves as misplaced, not missing", ({ moves, expected }) => {
    expect(problems(config(moves))).toEqual(expected);
  });

  it("leaves the providers' own keys alone", () => {
    expect(
      problems({
        ...config({}),
        "scaleway:accessKey": "SCWXXXXXXXXXXXXXXXXX",
        "scaleway:region": "fr-par",
        "aws:region": "eu-west-1",
      }),
    ).toEqual([]);
  });

  it("reports a misplaced key even when the right one is there too", () => {
    expect(problems({ ...config({}), "scaleway:bucket": "other" })).toEqual([
      "scaleway:bucket: this project's settings are in the image-factory namespace: write it as image-factory:bucket",
    ]);
  });
});
