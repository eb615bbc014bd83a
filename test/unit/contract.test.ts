import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { bounded } from "../../builder/cli/registry";
import { TEST_RELEASE_KEY } from "../../builder/local/test-keys";
import {
  ContractError,
  durationMs,
  PublishContract,
  readEnvironment,
  RetentionContract,
  secretVariables,
  TestInstanceContract,
  writeEnvironment,
} from "../../builder/core/contract";

const HASH = "a".repeat(64);
const publish = {
  accessKeyId: "SCWXXXXXXXXXXXXXXXXX",
  secretAccessKey: "s3cr3t",
  s3Region: "fr-par",
  bucket: "scw-image-factory-fr-par",
  key: `images/debian-12/x86_64/${HASH}.qcow2`,
  ref: "prod-fr-par-1/debian-12-x86_64",
  release: "debian-12",
  arch: "x86_64" as const,
  contentHash: HASH,
  releaseEpoch: "2026Q4",
  securityEpoch: 3,
  ecosystemVersion: "1.0.0",
  ecosystemRepository: "https://packages.example.org/scaleway",
  appBases: { "app-wordpress": "debian-12" },
  releaseKey: readFileSync(TEST_RELEASE_KEY.secret, "utf8"),
};

describe("the Commands' environment contract", () => {
  it("reads back exactly what it wrote, numbers and JSON included", () => {
    const env = writeEnvironment(PublishContract, publish);
    expect(env.FACTORY_SECURITY_EPOCH).toBe("3");
    expect(env.FACTORY_APP_BASES).toBe('{"app-wordpress":"debian-12"}');
    expect(env).not.toHaveProperty("FACTORY_MIRROR");
    expect(readEnvironment(PublishContract, env)).toEqual(publish);
  });

  it("wraps exactly the secret variables with the writer's secret function", () => {
    const env = writeEnvironment(PublishContract, publish, (v) => `<secret ${String(v)}>`);
    expect(Object.keys(env).filter((k) => String(env[k]).startsWith("<secret"))).toEqual([
      "AWS_SECRET_ACCESS_KEY",
      "FACTORY_RELEASE_KEY",
    ]);
    expect(secretVariables(PublishContract)).toEqual(["AWS_SECRET_ACCESS_KEY", "FACTORY_RELEASE_KEY"]);
    expect(secretVariables(TestInstanceContract)).toEqual(["SCW_SECRET_KEY"]);
    expect(secretVariables(RetentionContract)).toEqual(["SCW_SECRET_KEY"]);
  });

  it("passes wrapped values of text variables through untouched", () => {
    const wrapped = { output: "server id, known later" };
    const env = writeEnvironment<typeof TestInstanceContract, typeof wrapped>(TestInstanceContract, {
      serverId: wrapped,
      zone: "fr-par-1",
      release: "debian-12",
      accessKey: "SCWXXXXXXXXXXXXXXXXX",
      secretKey: "s",
    });
    expect(env.FACTORY_SERVER_ID).toBe(wrapped);
  });

  it.each([
    {
      what: "a required value",
      values: { ...publish, bucket: undefined },
      error: "FACTORY_BUCKET (bucket) is required",
    },
    {
      what: "a malformed hash",
      values: { ...publish, contentHash: "abc" },
      error: "FACTORY_CONTENT_HASH: expected 64 lowercase hex digits (sha256)",
    },
    {
      what: "a bad fingerprint",
      values: { ...publish, ecosystemKeyFingerprint: "1234" },
      error: "FACTORY_ECOSYSTEM_KEY_FINGERPRINT: expected 40 uppercase hex digits (an OpenPGP fingerprint)",
    },
  ])("refuses to write $what, naming the variable", ({ values, error }) => {
    expect(() => writeEnvironment(PublishContract, values as typeof publish)).toThrow(error);
  });

  it.each([
    {
      what: "a missing flag-backed variable",
      env: { FACTORY_BUCKET: "" },
      error: "missing --bucket (or FACTORY_BUCKET)",
    },
    {
      what: "a security epoch that is not a number",
      env: { FACTORY_SECURITY_EPOCH: "two" },
      error: '--security-epoch (FACTORY_SECURITY_EPOCH): expected a whole number (got "two")',
    },
    {
      what: "app bases that are not JSON",
      env: { FACTORY_APP_BASES: "{" },
      error: "--app-bases (FACTORY_APP_BASES): not JSON",
    },
    {
      what: "a bad timeout",
      env: { FACTORY_TIMEOUT: "soon" },
      error: 'FACTORY_TIMEOUT: expected a duration such as 90m, 2h or 45s (got "soon")',
    },
  ])("refuses to read $what, naming the variable", ({ env, error }) => {
    const good = writeEnvironment(PublishContract, publish);
    expect(() => readEnvironment(PublishContract, { ...good, ...env })).toThrow(ContractError);
    expect(() => readEnvironment(PublishContract, { ...good, ...env })).toThrow(error);
  });

  it("lets a flag win over its variable", () => {
    const env = writeEnvironment(RetentionContract, {
      zone: "fr-par-1",
      current: "debian-12/x86_64=" + HASH,
      accessKey: "a",
      secretKey: "b",
    });
    expect(readEnvironment(RetentionContract, env, { zone: "nl-ams-2" }).zone).toBe("nl-ams-2");
  });

  it.each([
    ["45s", 45_000],
    ["90m", 5_400_000],
    ["2h", 7_200_000],
  ])("reads the duration %s as %d ms", (d, ms) => {
    expect(durationMs(d)).toBe(ms);
  });
});

describe("FACTORY_TIMEOUT", () => {
  it("lets a run that finishes in time return its result", async () => {
    expect(await bounded(new Promise((done) => setTimeout(() => done(7), 50)), "1s", "image-factory publish")).toBe(7);
  });

  it("ends a run that outlives it, saying which and why", async () => {
    const started = Date.now();
    await expect(
      bounded(new Promise((done) => setTimeout(done, 5_000)), "1s", "image-factory publish"),
    ).rejects.toThrow("image-factory publish did not finish within FACTORY_TIMEOUT=1s");
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
