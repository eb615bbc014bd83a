import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../images";
import { StackConfigError, StackSettings } from "../../builder/settings";
import { projectDefaults, readStackSettings, stackNames } from "../../builder/stack-files";
import { ZONES } from "../../builder/zones";
import { settingsFor } from "./helpers";

const ROOT = `${__dirname}/../..`;

describe("stack settings", () => {
  it("parses every stack file in stacks/", () => {
    for (const stack of stackNames(ROOT)) expect(() => readStackSettings(ROOT, stack, loadCatalog()), stack).not.toThrow();
  });

  it("has one prod stack per Availability Zone, each holding its own zone", () => {
    const prod = stackNames(ROOT).filter((s) => s.startsWith("prod-"));
    expect(prod.map((s) => s.slice(5)).sort()).toEqual([...ZONES].sort());
    for (const stack of prod) expect(readStackSettings(ROOT, stack, loadCatalog()).zone).toBe(stack.slice(5));
  });

  it("declares in Pulumi.yaml the same defaults the parser applies", () => {
    const parsed = StackSettings.parse({
      environment: "x", zone: "fr-par-1", images: ["*"], bucket: "abc", releaseEpoch: "2026Q4",
      ecosystemVersion: "1", ecosystemRepository: "https://x.example",
    }) as Record<string, unknown>;
    for (const [key, value] of Object.entries(projectDefaults(ROOT))) {
      const name = key.split(":")[1]! as keyof typeof StackSettings.shape;
      // Pulumi hands defaults over as text; the field's own parser must turn it into the parser's default.
      const declared = typeof parsed[name] === "string" ? value : JSON.parse(value);
      expect(StackSettings.shape[name].parse(declared), name).toEqual(parsed[name]);
    }
  });

  it.each([
    { overrides: { zone: "fr-par-4" }, message: /stack test-fr-par-2: invalid configuration:\n  - image-factory:zone: Invalid option/ },
    { overrides: { images: ["ubuntu-99.04"] }, message: /image-factory:images: no release "ubuntu-99.04" in the catalog/ },
    { overrides: { images: ["*", "debian-12"] }, message: /image-factory:images: "\*" cannot be combined with ids/ },
    { overrides: { releaseEpoch: "2026-10" }, message: /image-factory:releaseEpoch: expected a quarter such as 2026Q4/ },
    { overrides: { bucket: "Not A Bucket" }, message: /image-factory:bucket: expected an S3 bucket name/ },
    { overrides: { securityRebuilds: ["debian-12"] }, message: /image-factory:securityRebuilds\.0: expected <image-id>:<n> or \*:<n>/ },
    { overrides: { securityRebuilds: ["nope-1:1"] }, message: /image-factory:securityRebuilds: no release "nope-1"/ },
    { overrides: { architectures: ["riscv64"] }, message: /image-factory:architectures\.0: Invalid option/ },
    { overrides: { zonee: "fr-par-1" }, message: /unknown config keys: image-factory:zonee/ },
    { overrides: { runTests: "yes" }, message: /image-factory:runTests: Invalid input: expected boolean/ },
  ])("rejects $overrides", ({ overrides, message }) => {
    expect(() => settingsFor(overrides)).toThrow(StackConfigError);
    expect(() => settingsFor(overrides)).toThrow(message);
  });
});
