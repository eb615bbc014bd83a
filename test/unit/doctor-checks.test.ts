import { describe, expect, it } from "vitest";
import {
  backendFindings,
  credentialFindings,
  endpointFindings,
  isLoopback,
  releaseKeyFindings,
  zoneFindings,
  type Env,
  type PulumiCredentials,
  type StackFile,
} from "../../builder/cli/doctor-checks";
import { bucketLocationFinding, headBucketFinding, serverTypeFindings } from "../../builder/cli/doctor-online";
import { settingsFor } from "./helpers";

const ACCESS = "SCWABCDEFGHJKMNPQRST";
const SECRET = "0c4a6f3e-2b1d-4c5e-9f7a-8b6d5e4c3b2a";
const PROJECT_ID = "5d8e7f6a-1b2c-4d3e-8f9a-0b1c2d3e4f5a";
const file = (config: Record<string, unknown> = {}, extra: Partial<StackFile> = {}): StackFile => ({
  config,
  ...extra,
});
const problems = (fs: { problem: string }[]) => fs.map((f) => f.problem);

describe("doctor: credentials", () => {
  it.each<{ name: string; file: StackFile; env: Env; projectId?: string; expected: string[] }>([
    {
      name: "all three from the environment",
      file: file(),
      env: { SCW_ACCESS_KEY: ACCESS, SCW_SECRET_KEY: SECRET, SCW_DEFAULT_PROJECT_ID: PROJECT_ID },
      expected: [],
    },
    {
      name: "nothing",
      file: file(),
      env: {},
      expected: [
        "no Scaleway access key",
        "no Scaleway secret key",
        "no Scaleway Project id (the test battery creates its resources in it)",
      ],
    },
    {
      name: "keys in the stack file, the secret secure, the Project in settings",
      file: file({ "scaleway:accessKey": ACCESS, "scaleway:secretKey": { secure: "v1:abc" } }),
      env: {},
      projectId: PROJECT_ID,
      expected: [],
    },
    {
      name: "a clear-text secret in the stack file",
      file: file({ "scaleway:secretKey": SECRET }),
      env: { SCW_ACCESS_KEY: ACCESS, SCW_DEFAULT_PROJECT_ID: PROJECT_ID },
      expected: ["scaleway:secretKey is in clear text in the stack file"],
    },
    {
      name: "malformed values",
      file: file(),
      env: { SCW_ACCESS_KEY: "SCW123", SCW_SECRET_KEY: "not-a-uuid", SCW_DEFAULT_PROJECT_ID: "prod" },
      expected: [
        "SCW_ACCESS_KEY is not an access key (expected SCW followed by 17 letters or digits)",
        "SCW_SECRET_KEY is not a secret key (expected a UUID)",
        "SCW_DEFAULT_PROJECT_ID is not a Project id (expected a UUID)",
      ],
    },
    {
      name: "a malformed access key in config wins over a good one in env",
      file: file({ "scaleway:accessKey": "AKIA123" }),
      env: { SCW_ACCESS_KEY: ACCESS, SCW_SECRET_KEY: SECRET, SCW_DEFAULT_PROJECT_ID: PROJECT_ID },
      expected: ["scaleway:accessKey is not an access key (expected SCW followed by 17 letters or digits)"],
    },
  ])("$name", ({ file: f, env, projectId, expected }) => {
    expect(problems(credentialFindings(f, env, { projectId }))).toEqual(expected);
  });
});

describe("doctor: release signing key", () => {
  const secure = { secure: "v1:AAAA" };
  const pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n";
  it.each([
    {
      name: "a secret key and its public part",
      config: { "image-factory:releaseKey": secure, "image-factory:releasePublicKey": "MCowBQ" },
      want: [],
    },
    {
      name: "no key",
      config: {},
      want: [
        "image-factory:releaseKey is not set: artifacts would be published unsigned, their provenance unverifiable",
      ],
    },
    {
      name: "the key in clear text",
      config: { "image-factory:releaseKey": pem, "image-factory:releasePublicKey": "MCowBQ" },
      want: ["image-factory:releaseKey is in clear text in the stack file"],
    },
    {
      name: "a secret key without its public part",
      config: { "image-factory:releaseKey": secure },
      want: ["image-factory:releasePublicKey is not set: operators cannot verify what the stack signs"],
    },
  ])("$name", ({ config, want }) => {
    const found = releaseKeyFindings(config);
    expect(found.map((f) => f.problem)).toEqual(want);
    for (const f of found) expect(f.check).toBe("release");
  });
});

describe("doctor: endpoints", () => {
  it.each([
    { url: "http://127.0.0.1:18681", loopback: true },
    { url: "http://127.9.0.1", loopback: true },
    { url: "http://localhost:8080/x", loopback: true },
    { url: "http://[::1]:9000", loopback: true },
    { url: "http://127.0.0.1.example.org", loopback: false },
    { url: "http://10.0.0.1", loopback: false },
  ])("$url is loopback: $loopback", ({ url, loopback }) => expect(isLoopback(url)).toBe(loopback));

  it.each([
    {
      settings: {
        apiUrl: "http://127.0.0.1:4000",
        s3Endpoint: "http://127.0.0.1:18681",
        mirror: "http://localhost:1/u",
      },
      expected: [],
    },
    { settings: { apiUrl: "https://api.scaleway.com", s3Endpoint: "https://s3.fr-par.scw.cloud" }, expected: [] },
    {
      settings: {
        apiUrl: "http://api.example.org",
        s3Endpoint: "http://s3.example.org",
        mirror: "http://mirror.example.org",
      },
      expected: [
        "image-factory:apiUrl http://api.example.org is not https and not loopback",
        "image-factory:s3Endpoint http://s3.example.org is not https and not loopback",
        "image-factory:mirror http://mirror.example.org is not https and not loopback",
      ],
    },
  ])("$settings", ({ settings, expected }) => expect(problems(endpointFindings(settings))).toEqual(expected));
});

describe("doctor: zone and test Instances", () => {
  it.each([
    { overrides: { zone: "fr-par-1" }, expected: [] },
    {
      overrides: { zone: "fr-par-1", architectures: ["x86_64", "arm64"] },
      expected: [
        "image-factory:testCommercialTypeArm64 COPARM1-2C-8G is not offered in fr-par-1 (Scaleway product availability guide (validated 2025-12-04): Instances and Block Storage; snapshot import and the products/servers list recorded in fr-par-1 (2026-06-23))",
      ],
    },
    {
      overrides: { zone: "fr-par-1", architectures: ["x86_64", "arm64"], testCommercialTypeArm64: "BASIC2-A2C-4G" },
      expected: [],
    },
    { overrides: { zone: "fr-par-1", architectures: ["x86_64", "arm64"], runTests: false }, expected: [] },
    {
      overrides: { zone: "fr-par-1", testCommercialType: "BASIC2-A2C-4G" },
      expected: ["image-factory:testCommercialType BASIC2-A2C-4G is an arm64 type, not x86_64"],
    },
    // No stored list for nl-ams-2: nothing to contradict offline (--online asks the API).
    { overrides: { zone: "nl-ams-2", architectures: ["x86_64", "arm64"], testCommercialType: "NOPE-1" }, expected: [] },
  ])("$overrides", ({ overrides, expected }) => {
    expect(problems(zoneFindings(settingsFor({ ...overrides, bucket: "scw-image-factory" })))).toEqual(expected);
  });
});

describe("doctor: Pulumi backend and passphrase", () => {
  const cloud: PulumiCredentials = {
    current: "https://api.pulumi.com",
    accessTokens: { "https://api.pulumi.com": "pul-x" },
  };
  const none = () => false;
  it.each<{
    name: string;
    file: StackFile;
    env: Env;
    creds?: PulumiCredentials;
    exists?: (p: string) => boolean;
    expected: string[];
  }>([
    {
      name: "nothing at all",
      file: file(),
      env: {},
      expected: ["no Pulumi backend: PULUMI_BACKEND_URL is not set and no `pulumi login` is recorded"],
    },
    { name: "logged in to Pulumi Cloud", file: file(), env: {}, creds: cloud, expected: [] },
    { name: "Pulumi Cloud from the environment", file: file(), env: { PULUMI_ACCESS_TOKEN: "pul-x" }, expected: [] },
    {
      name: "a Cloud backend without its token",
      file: file(),
      env: { PULUMI_BACKEND_URL: "https://pulumi.example.org" },
      creds: cloud,
      expected: ["no access token for https://pulumi.example.org"],
    },
    {
      name: "a self-managed backend defaults to a passphrase",
      file: file(),
      env: { PULUMI_BACKEND_URL: "s3://state?region=fr-par&endpoint=s3.fr-par.scw.cloud" },
      expected: [
        "the stack's secrets are encrypted with a passphrase, and neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set",
      ],
    },
    {
      name: "--local logged in, passphrase set",
      file: file(),
      env: { PULUMI_CONFIG_PASSPHRASE: "" },
      creds: { current: "file://~" },
      expected: [],
    },
    {
      name: "an encryption salt means a passphrase, even on Pulumi Cloud",
      file: file({}, { encryptionsalt: "v1:abc" }),
      env: {},
      creds: cloud,
      expected: [
        "the stack's secrets are encrypted with a passphrase, and neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set",
      ],
    },
    {
      name: "a passphrase file that is missing",
      file: file({}, { secretsprovider: "passphrase" }),
      env: { PULUMI_CONFIG_PASSPHRASE_FILE: "/nonexistent/pass" },
      creds: cloud,
      exists: none,
      expected: ["PULUMI_CONFIG_PASSPHRASE_FILE names /nonexistent/pass, which does not exist"],
    },
    {
      name: "a passphrase file that exists",
      file: file({}, { secretsprovider: "passphrase" }),
      env: { PULUMI_CONFIG_PASSPHRASE_FILE: "/p" },
      creds: cloud,
      exists: (p) => p === "/p",
      expected: [],
    },
    {
      name: "a KMS provider needs no passphrase",
      file: file({}, { secretsprovider: "awskms://alias/x" }),
      env: { PULUMI_BACKEND_URL: "file:///state" },
      expected: [],
    },
  ])("$name", ({ file: f, env, creds, exists, expected }) => {
    expect(problems(backendFindings(f, env, creds, exists ?? none))).toEqual(expected);
  });
});

describe("doctor --online: reading the answers", () => {
  it.each([
    { outcome: undefined, expected: [] },
    {
      outcome: { status: 404, error: "NotFound" },
      expected: ["bucket b at https://s3.fr-par.scw.cloud does not exist"],
    },
    {
      outcome: { status: 403, error: "Forbidden" },
      expected: ["bucket b at https://s3.fr-par.scw.cloud: access denied to this key"],
    },
    {
      outcome: { status: 301, error: "PermanentRedirect" },
      expected: [
        "bucket b at https://s3.fr-par.scw.cloud: HeadBucket answered 301, as S3 answers a request signed for fr-par that reaches another region",
      ],
    },
    {
      outcome: { error: "ECONNREFUSED" },
      expected: ["bucket b at https://s3.fr-par.scw.cloud: HeadBucket failed (no answer: ECONNREFUSED)"],
    },
  ])("HeadBucket $outcome", ({ outcome, expected }) => {
    expect(problems(headBucketFinding("b", "https://s3.fr-par.scw.cloud", "fr-par", outcome))).toEqual(expected);
  });

  it.each([
    { location: "fr-par", expected: [] },
    { location: "", expected: [] },
    { location: undefined, expected: [] },
    { location: "nl-ams", expected: ["bucket b is in nl-ams, not in fr-par where the zone imports from"] },
  ])("GetBucketLocation $location", ({ location, expected }) => {
    expect(problems(bucketLocationFinding("b", "fr-par", location))).toEqual(expected);
  });

  it("checks each tested type against the zone's offer", () => {
    const offer = { "DEV1-S": { arch: "x86_64" }, "BASIC2-A2C-4G": { arch: "arm64" } };
    expect(
      problems(serverTypeFindings("fr-par-1", offer, { x86_64: { key: "testCommercialType", type: "DEV1-S" } })),
    ).toEqual([]);
    expect(
      problems(
        serverTypeFindings("fr-par-1", offer, {
          x86_64: { key: "testCommercialType", type: "BASIC2-A2C-4G" },
          arm64: { key: "testCommercialTypeArm64", type: "COPARM1-2C-8G" },
        }),
      ),
    ).toEqual([
      "image-factory:testCommercialType BASIC2-A2C-4G is arm64 in fr-par-1, not x86_64",
      "image-factory:testCommercialTypeArm64 COPARM1-2C-8G is not offered in fr-par-1",
    ]);
  });
});
