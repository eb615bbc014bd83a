import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { loadCatalog } from "../../images";
import { formatFinding } from "../../builder/cli/doctor-checks";
import { gatherFacts, LOCAL_NOTES, offlineReport, onlineTarget } from "../../builder/cli/doctor";

const ROOT = join(__dirname, "..", "..");
const EMPTY_HOME = mkdtempSync(join(tmpdir(), "doctor-home-"));
afterAll(() => rmSync(EMPTY_HOME, { recursive: true, force: true }));

const report = (projectDir: string, stack: string, env: Record<string, string>) => {
  const catalog = loadCatalog();
  return offlineReport(
    gatherFacts(projectDir, stack, { PULUMI_HOME: EMPTY_HOME, ...env }, catalog),
    catalog,
    () => false,
  );
};

describe("doctor on the project's stacks", () => {
  it("finds nothing wrong with the local stack, and says why it skips what the local job provides", () => {
    const r = report(ROOT, "local", {});
    expect(r.findings).toEqual([]);
    expect(r.notes).toEqual(LOCAL_NOTES);
  });

  it("finds on a prod stack without credentials exactly the credentials, the backend, the release key, and the real key and pin gaps", () => {
    const r = report(ROOT, "prod-fr-par-1", {});
    // The pins as images/pins.json holds them, read here without the catalog: every OS release's x86_64 pin is
    // recorded as unverified (the stack ships "*" on x86_64; apps add no upstream of their own).
    const pins = JSON.parse(readFileSync(join(ROOT, "images", "pins.json"), "utf8")) as Record<
      string,
      Record<string, { serial: string; provenance: unknown }>
    >;
    const unverified = Object.entries(pins).filter(([, p]) => p.x86_64 && p.x86_64.provenance === "unverified");
    expect(unverified.length).toBe(12);
    const lines = r.findings.map(formatFinding);
    expect(lines.slice(0, 5)).toEqual([
      "credentials: no Scaleway access key — fix: export SCW_ACCESS_KEY=SCW… (or pulumi config set scaleway:accessKey SCW…)",
      "credentials: no Scaleway secret key — fix: export SCW_SECRET_KEY=… (or pulumi config set --secret scaleway:secretKey)",
      "credentials: no Scaleway Project id (the test battery creates its resources in it) — fix: export SCW_DEFAULT_PROJECT_ID=… (or pulumi config set image-factory:projectId …)",
      "backend: no Pulumi backend: PULUMI_BACKEND_URL is not set and no `pulumi login` is recorded — fix: pulumi login (Pulumi Cloud), pulumi login s3://BUCKET… or pulumi login --local; or export PULUMI_BACKEND_URL",
      "release: image-factory:releaseKey is not set: artifacts would be published unsigned, their provenance unverifiable — fix: openssl genpkey -algorithm ed25519 | pulumi config set --secret image-factory:releaseKey, and its public part (openssl pkey -pubout) as image-factory:releasePublicKey",
    ]);
    const rest = lines.slice(5);
    // Each unverified pin once, named with its serial and the command that records it.
    for (const [id, p] of unverified)
      expect(rest).toContain(
        `pins: ${id} x86_64: serial ${p.x86_64!.serial} was pinned without reading upstream's listing: run image-factory check-upstream --release ${id} --write — fix: image-factory check-upstream --release ${id} --write, on a machine that reaches the upstream; review the diff of images/pins.json`,
      );
    // AlmaLinux 10 signs its checksum files, but no stored source gave its key's fingerprint: builds fail closed.
    expect(rest.filter((l) => l.startsWith("keys: ")).map((l) => l.split(":")[1]!.trim().split(" ")[0])).toEqual([
      "almalinux-10",
    ]);
    // Unsigned upstreams without a pinned checksum, and the ecosystem repository without its pinned key.
    expect(
      rest
        .filter((l) => !l.startsWith("keys: ") && !l.includes("was pinned without reading"))
        .map((l) => l.split(" — ")[0]),
    ).toEqual([
      ...[
        "debian-13",
        "debian-12",
        "rocky-10",
        "rocky-9",
        "centos-stream-10",
        "centos-stream-9",
        "archlinux-rolling",
      ].map((id) =>
        expect.stringMatching(
          new RegExp(`^pins: ${id.replace(".", "\\.")} x86_64: upstream signs nothing and no checksum is pinned`),
        ),
      ),
      "ecosystem: image-factory:ecosystemKeyFingerprint is not set: builds refuse https://scw-image-factory-packages.s3.fr-par.scw.cloud without its pinned signing key",
    ]);
  });

  it("keeps only the key and pin gaps once credentials and a backend are there", () => {
    const r = report(ROOT, "prod-nl-ams-2", {
      SCW_ACCESS_KEY: "SCWABCDEFGHJKMNPQRST",
      SCW_SECRET_KEY: "0c4a6f3e-2b1d-4c5e-9f7a-8b6d5e4c3b2a",
      SCW_DEFAULT_PROJECT_ID: "5d8e7f6a-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
      PULUMI_BACKEND_URL: "file:///srv/state",
      PULUMI_CONFIG_PASSPHRASE: "x",
    });
    expect([...new Set(r.findings.map((f) => f.check))].sort()).toEqual(["ecosystem", "keys", "pins", "release"]);
    expect(r.notes).toEqual([
      "zone: no stored list of nl-ams-2's Instance types: --online checks the test commercial types",
    ]);
  });
});

describe("doctor on crafted stacks", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  /** A project directory holding this project's Pulumi.yaml and one stack file. */
  const project = (stack: string, yaml: string) => {
    const dir = mkdtempSync(join(tmpdir(), "doctor-project-"));
    dirs.push(dir);
    mkdirSync(join(dir, "stacks"));
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    writeFileSync(join(dir, "stacks", `Pulumi.${stack}.yaml`), yaml);
    return dir;
  };
  const env = {
    SCW_ACCESS_KEY: "SCWABCDEFGHJKMNPQRST",
    SCW_SECRET_KEY: "0c4a6f3e-2b1d-4c5e-9f7a-8b6d5e4c3b2a",
    SCW_DEFAULT_PROJECT_ID: "5d8e7f6a-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
    PULUMI_ACCESS_TOKEN: "pul-x",
  };
  const stackYaml = (lines: string[]) =>
    [
      "config:",
      "  image-factory:environment: test",
      "  image-factory:images: [debian-13]",
      "  image-factory:releaseEpoch: 2026Q4",
      "  image-factory:ecosystemVersion: 1.0.0",
      ...lines.map((l) => `  ${l}`),
    ].join("\n");

  it.each([
    {
      name: "a zone without snapshot import",
      lines: [
        "image-factory:zone: it-mil-1",
        "image-factory:bucket: scw-image-factory-it-mil",
        "image-factory:ecosystemRepository: https://packages.example.org",
      ],
      expected: [
        "settings: image-factory:zone: it-mil-1 has no Block Storage snapshot import from Object Storage, which every image needs (artifact → block snapshot → Instance image); use a zone in fr-par, nl-ams, pl-waw — fix: edit stacks/Pulumi.test-x.yaml",
      ],
    },
    {
      name: "a misplaced bucket and a clear-text secret",
      lines: [
        "image-factory:zone: fr-par-3",
        "scaleway:bucket: scw-image-factory-fr-par",
        "image-factory:ecosystemRepository: https://packages.example.org",
        "scaleway:secretKey: 0c4a6f3e-2b1d-4c5e-9f7a-8b6d5e4c3b2a",
      ],
      expected: [
        "settings: scaleway:bucket: this project's settings are in the image-factory namespace: write it as image-factory:bucket — fix: edit stacks/Pulumi.test-x.yaml",
        "credentials: scaleway:secretKey is in clear text in the stack file — fix: pulumi config set --secret scaleway:secretKey (it is written as secure:), then revoke the exposed key",
      ],
    },
    {
      name: "plain http endpoints and an s3Endpoint in another region",
      lines: [
        "image-factory:zone: pl-waw-1",
        "image-factory:bucket: b-pl-waw",
        "image-factory:ecosystemRepository: http://packages.example.org",
        "image-factory:apiUrl: http://api.example.org",
        "image-factory:s3Endpoint: https://s3.fr-par.scw.cloud",
      ],
      expected: [
        "settings: image-factory:s3Endpoint: https://s3.fr-par.scw.cloud is Object Storage in fr-par, but zone pl-waw-1 is in pl-waw: the bucket must be in pl-waw (https://s3.pl-waw.scw.cloud, the default when unset) — fix: edit stacks/Pulumi.test-x.yaml",
      ],
    },
    {
      name: "plain http endpoints",
      lines: [
        "image-factory:zone: pl-waw-1",
        "image-factory:bucket: b-pl-waw",
        "image-factory:ecosystemRepository: http://packages.example.org",
        "image-factory:apiUrl: http://api.example.org",
      ],
      expected: [
        "endpoint: image-factory:apiUrl http://api.example.org is not https and not loopback — fix: use an https:// URL for image-factory:apiUrl",
        "ecosystem: image-factory:ecosystemRepository http://packages.example.org is not https — fix: serve the repository over https and set image-factory:ecosystemRepository to it",
        "ecosystem: image-factory:ecosystemKeyFingerprint is not set: builds refuse http://packages.example.org without its pinned signing key — fix: pulumi config set image-factory:ecosystemKeyFingerprint <the 40-hex fingerprint of the key at http://packages.example.org/scaleway-ecosystem.asc>",
      ],
    },
  ])("$name", ({ lines, expected }) => {
    const r = report(project("test-x", stackYaml(lines)), "test-x", env);
    // Pins, upstream keys and the release key are the same for every crafted stack: their own tests cover them.
    const own = r.findings.filter((f) => !["pins", "keys", "release"].includes(f.check));
    expect(own.map(formatFinding)).toEqual(expected);
  });

  it("goes online only with a readable key pair", () => {
    const catalog = loadCatalog();
    const dir = project(
      "test-y",
      stackYaml([
        "image-factory:zone: fr-par-2",
        "image-factory:bucket: b-fr-par",
        "image-factory:ecosystemRepository: https://p.example.org",
        "scaleway:secretKey:",
        "    secure: v1:abc",
      ]),
    );
    expect(onlineTarget(gatherFacts(dir, "test-y", { SCW_ACCESS_KEY: env.SCW_ACCESS_KEY }, catalog))).toBe(
      "online: not checked: needs the access key and secret key in SCW_ACCESS_KEY and SCW_SECRET_KEY",
    );
    expect(onlineTarget(gatherFacts(dir, "test-y", env, catalog))).toEqual({
      zone: "fr-par-2",
      region: "fr-par",
      bucket: "b-fr-par",
      s3Endpoint: "https://s3.fr-par.scw.cloud",
      apiUrl: undefined,
      accessKey: env.SCW_ACCESS_KEY,
      secretKey: env.SCW_SECRET_KEY,
      testTypes: { x86_64: { key: "testCommercialType", type: "DEV1-S" } },
    });
  });
});

describe("image-factory doctor", () => {
  afterEach(() => vi.unstubAllEnvs());
  async function run(args: string[]) {
    const out: string[] = [];
    const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
    const e = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      const { main } = await import("../../builder/cli.js");
      return { code: await main(args), stdout: out.join("") };
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  }
  const clear = () => {
    for (const v of [
      "SCW_ACCESS_KEY",
      "SCW_SECRET_KEY",
      "SCW_DEFAULT_PROJECT_ID",
      "PULUMI_BACKEND_URL",
      "PULUMI_ACCESS_TOKEN",
    ])
      vi.stubEnv(v, undefined);
    vi.stubEnv("PULUMI_HOME", EMPTY_HOME);
  };

  it("exits 0 on the local stack and 1 on a prod stack without credentials, --json listing the findings", async () => {
    clear();
    expect(await run(["doctor", "--stack", "local"])).toEqual({ code: 0, stdout: "stack local: no problem found\n" });
    const prod = await run(["doctor", "--stack", "prod-fr-par-1", "--json"]);
    expect(prod.code).toBe(1);
    const json = JSON.parse(prod.stdout) as { stack: string; findings: { check: string }[] };
    expect(json.stack).toBe("prod-fr-par-1");
    expect(json.findings.filter((f) => f.check === "credentials" || f.check === "backend")).toHaveLength(4);
  });

  it("reads the logged-in backend from PULUMI_HOME's credentials.json, and refuses a broken one", async () => {
    const home = mkdtempSync(join(tmpdir(), "doctor-pulumi-home-"));
    try {
      clear();
      vi.stubEnv("PULUMI_HOME", home);
      writeFileSync(
        join(home, "credentials.json"),
        JSON.stringify({ current: "file://~", accessTokens: { "file://~": "" } }),
      );
      vi.stubEnv("PULUMI_CONFIG_PASSPHRASE", "x");
      const json = JSON.parse((await run(["doctor", "--stack", "prod-fr-par-1", "--json"])).stdout) as {
        findings: { check: string }[];
      };
      expect(json.findings.filter((f) => f.check === "backend")).toEqual([]);
      writeFileSync(join(home, "credentials.json"), "{ not json");
      expect((await run(["doctor", "--stack", "prod-fr-par-1"])).code).toBe(2);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("refuses an unknown stack with a usage error", async () => {
    clear();
    expect((await run(["doctor", "--stack", "prod-xx-yyy-9"])).code).toBe(2);
  });
});
