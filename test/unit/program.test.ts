/**
 * The program's shape under Pulumi mocks: which resources a zone stack declares, their inputs, names, tags and
 * ordering. Mocks answer resource registrations only; any provider function call fails the test.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadCatalog, type Catalog, type OsRelease } from "../../images";
import { planStack } from "../../builder/core/plan";
import { factoryCli, passedEarlier, retention, testedContentHashes, zonalImages } from "../../components/factory-stack";
import { formatCurrentBuilds } from "../../builder/core/retention";
import { ARM64_BUILD_HOST, settingsFor } from "./helpers";
import { localReleaseSpec } from "../../builder/local/local-job";
import { testEnvironment, withBuildDate } from "../../builder/core/release-spec";
import {
  PublishContract,
  readEnvironment,
  RetentionContract,
  secretVariables,
  TestInstanceContract,
  type Contract,
} from "../../builder/core/contract";
import { IMAGE, SERVER, SNAPSHOT, violations } from "../../policy/rules";

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, any>;
  parent?: string;
  dependsOn: string[];
  retainOnDelete?: boolean;
  customTimeouts?: pulumi.CustomTimeouts;
}

let registered: Registered[] = [];
const BUILD_DATE = "2026-11-20";
const opts = new Map<
  string,
  { parent?: string; dependsOn: string[]; retainOnDelete?: boolean; customTimeouts?: pulumi.CustomTimeouts }
>();
/** Each Command's environment as the program passed it (values still Outputs), by resource name. */
const rawEnvironment = new Map<string, Record<string, unknown>>();

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const o = opts.get(args.name) ?? { dependsOn: [] };
        registered.push({ type: args.type, name: args.name, inputs: args.inputs, ...o });
        // A Command's stdout is what the CLI prints: publish reports the artifact's build date.
        const stdout = args.name.endsWith("-artifact") ? JSON.stringify({ imageBuildDate: BUILD_DATE }) : undefined;
        return {
          id: `${args.inputs.zone ?? "fr-par-2"}/${args.name}-id`,
          state: { ...args.inputs, ...(stdout ? { stdout } : {}) },
        };
      },
      call: (args) => {
        throw new Error(`unmocked provider call ${args.token}`);
      },
    },
    "image-factory",
    "test-fr-par-2",
    false,
  );
});

/** Records each resource's parent and dependsOn as the program passed them. */
const recordOptions: pulumi.ResourceTransformation = (args) => {
  const dependsOn = ([] as unknown[]).concat(args.opts.dependsOn ?? []) as pulumi.Resource[];
  opts.set(args.name, {
    parent: (args.opts.parent as { __name?: string } | undefined)?.__name,
    dependsOn: dependsOn.map((r) => (r as unknown as { __name: string }).__name),
    retainOnDelete: (args.opts as pulumi.CustomResourceOptions).retainOnDelete,
    customTimeouts: (args.opts as pulumi.CustomResourceOptions).customTimeouts,
  });
  if (args.props.environment) rawEnvironment.set(args.name, args.props.environment as Record<string, unknown>);
  return undefined;
};

beforeEach(() => {
  registered = [];
});

const credentials = {
  accessKey: "SCWXXXXXXXXXXXXXXXXX",
  secretKey: pulumi.secret("00000000-0000-0000-0000-000000000000"),
};

async function declare(
  overrides: Record<string, unknown> = {},
  catalog: Catalog = loadCatalog(),
  passed = new Set<string>(),
) {
  const settings = settingsFor(overrides);
  const plans = planStack(catalog, settings);
  const images = zonalImages(plans, settings, credentials, { transformations: [recordOptions] }, passed);
  // Wait for every output so all registrations have happened.
  await new Promise<void>((done) => pulumi.all(images.map((i) => i.releasedImageId)).apply(() => done()));
  return { plans, images };
}

/** Pulumi's wire marker for a secret value, as mocks receive it. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const isSecret = (v: unknown): v is { value: unknown } => typeof v === "object" && v !== null && SECRET_SIG in v;
const reveal = (v: any) => (isSecret(v) ? v.value : v);

const byType = (type: string) => registered.filter((r) => r.type === type);
const named = (name: string) => {
  const r = registered.find((x) => x.name === name);
  if (!r) throw new Error(`no resource ${name}; have ${registered.map((x) => x.name).join(", ")}`);
  return r;
};

describe("a zone stack", () => {
  it("declares exactly one ZonalImage per selected image, each with its five children", async () => {
    const { plans } = await declare();
    expect(byType("image-factory:index:ZonalImage").map((r) => r.name)).toEqual([
      "ubuntu-24.04-x86_64",
      "debian-12-x86_64",
    ]);
    for (const p of plans) {
      const children = registered.filter((r) => r.parent === p.name).map((r) => `${r.type} ${r.name}`);
      expect(children.sort()).toEqual(
        [
          `command:local:Command ${p.name}-artifact`,
          `scaleway:block/snapshot:Snapshot ${p.name}-snapshot`,
          `scaleway:instance/image:Image ${p.name}-image`,
          `scaleway:instance/server:Server ${p.name}-test-server`,
          `command:local:Command ${p.name}-tests`,
        ].sort(),
      );
    }
    expect(registered).toHaveLength(2 * 6);
  });

  it("puts every Scaleway resource in the stack's zone and the artifact in its region", async () => {
    await declare({ zone: "nl-ams-3", bucket: "scw-image-factory-nl-ams" });
    for (const r of registered.filter((r) => r.type.startsWith("scaleway:")))
      expect(r.inputs.zone, r.name).toBe("nl-ams-3");
    const env = reveal(named("debian-12-x86_64-artifact").inputs.environment);
    expect(env.FACTORY_S3_REGION).toBe("nl-ams");
    expect(env.FACTORY_S3_ENDPOINT).toBe("https://s3.nl-ams.scw.cloud");
    expect(env.FACTORY_BUCKET).toBe("scw-image-factory-nl-ams");
  });

  it("imports the content-addressed artifact and builds image and test Instance on it", async () => {
    const { plans } = await declare();
    const p = plans.find((x) => x.name === "debian-12-x86_64")!;
    const artifact = named(`${p.name}-artifact`);
    expect(artifact.inputs.triggers).toEqual([p.contentHash]);
    expect(artifact.inputs.create).toBe(`${factoryCli()} publish`);
    expect(artifact.inputs.delete).toBe(`${factoryCli()} unpublish`);
    expect(reveal(artifact.inputs.environment).FACTORY_KEY).toBe(p.artifactKey);
    expect(artifact.inputs.logging).toBe("stderr");

    const snapshot = named(`${p.name}-snapshot`);
    expect(snapshot.inputs.import).toEqual({ bucket: "scw-image-factory-fr-par", key: p.artifactKey });
    expect(snapshot.inputs.name).toBe(`debian-12-x86_64-${p.contentHash.slice(0, 12)}`);
    expect(snapshot.dependsOn).toEqual([`${p.name}-artifact`]);

    const image = named(`${p.name}-image`);
    expect(image.inputs.rootVolumeId).toBe(`fr-par-2/${p.name}-snapshot-id`);
    expect(image.inputs.name).toBe("Debian 12 Bookworm (x86_64)");
    expect(image.inputs.architecture).toBe("x86_64");

    const server = named(`${p.name}-test-server`);
    expect(server.inputs.image).toBe(`fr-par-2/${p.name}-image-id`);
    expect(server.inputs.type).toBe("DEV1-S");
    expect(server.inputs.rootVolume).toEqual({ volumeType: "sbs_volume", sizeInGb: 10 });

    const tests = named(`${p.name}-tests`);
    expect(tests.dependsOn).toEqual([`${p.name}-test-server`]);
    expect(server.inputs.state).toBe("stopped");
    expect(isSecret(tests.inputs.environment)).toBe(true);
    expect(reveal(tests.inputs.environment)).toMatchObject({
      FACTORY_SERVER_ID: `fr-par-2/${p.name}-test-server-id`,
      FACTORY_ZONE: "fr-par-2",
      FACTORY_RELEASE: "debian-12",
      SCW_SECRET_KEY: "00000000-0000-0000-0000-000000000000",
    });
    expect(JSON.stringify(tests.inputs.create)).toBe(JSON.stringify(`${factoryCli()} test-instance`));
  });

  it("tags snapshot, image and test Instance with the SCS metadata, the content hash and user tags last", async () => {
    const { plans } = await declare();
    const p = plans.find((x) => x.name === "ubuntu-24.04-x86_64")!;
    const tags: string[] = named(`${p.name}-image`).inputs.tags;
    expect(tags.slice(0, 4)).toEqual([
      "factory:release=ubuntu-24.04",
      "factory:label=ubuntu_noble",
      `factory:content-hash=${p.contentHash}`,
      "factory:release-epoch=2026Q4",
    ]);
    // A candidate until its battery passes (the test runner then tags it released).
    expect(tags[4]).toBe("factory:status=candidate");
    expect(tags).toContain("scs:os_distro=ubuntu");
    expect(tags).toContain("scs:architecture=x86_64");
    expect(tags).toContain(
      "scs:image_source=https://cloud-images.ubuntu.com/releases/noble/release-20261105/ubuntu-24.04-server-cloudimg-amd64.img",
    );
    // The build date comes from the artifact Command's output, after the stack's tags.
    expect(tags.slice(-2)).toEqual(["factory:environment=test", `scs:image_build_date=${BUILD_DATE}`]);
    expect(named(`${p.name}-snapshot`).inputs.tags).toEqual(tags);
    expect(named(`${p.name}-test-server`).inputs.tags).toEqual([...tags, "factory:role=test-instance"]);
  });

  it("passes the S3 secret only inside a secret environment", async () => {
    await declare({ images: ["debian-12"] });
    const env = named("debian-12-x86_64-artifact").inputs.environment;
    expect(isSecret(env)).toBe(true);
    expect(reveal(env).AWS_SECRET_ACCESS_KEY).toBe("00000000-0000-0000-0000-000000000000");
    expect(JSON.stringify(named("debian-12-x86_64-artifact").inputs.create)).not.toContain("0000-0000");
  });

  it("makes the secrets secret itself, even when the stack hands them over in clear", async () => {
    const settings = settingsFor({ images: ["debian-12"] });
    const plain = { accessKey: "SCWXXXXXXXXXXXXXXXXX", secretKey: "00000000-0000-0000-0000-00000000c1ea" };
    const images = zonalImages(
      planStack(loadCatalog(), settings),
      settings,
      plain,
      { transformations: [recordOptions] },
      new Set(),
    );
    await new Promise<void>((done) => pulumi.all(images.map((i) => i.releasedImageId)).apply(() => done()));
    for (const name of ["debian-12-x86_64-artifact", "debian-12-x86_64-tests"]) {
      const env = named(name).inputs.environment;
      expect(isSecret(env), `${name}'s environment`).toBe(true);
      expect(JSON.stringify(reveal(env))).toContain("00000000-0000-0000-0000-00000000c1ea");
    }
  });

  it("skips the test Instance when tests are off and releases the image directly", async () => {
    await declare({ runTests: false, images: ["debian-12"] });
    expect(registered.map((r) => r.name).sort()).toEqual(
      ["debian-12-x86_64", "debian-12-x86_64-artifact", "debian-12-x86_64-image", "debian-12-x86_64-snapshot"].sort(),
    );
  });

  it("changes the triggers of exactly the images whose upstream pin or recipe changed", async () => {
    const triggers = () =>
      Object.fromEntries(
        byType("command:local:Command")
          .filter((r) => r.name.endsWith("-artifact"))
          .map((r) => [r.name, r.inputs.triggers[0]]),
      );
    const all = { images: ["*"] };
    await declare(all);
    const before = triggers();
    const edited = (change: (r: OsRelease) => void, id: string): Catalog => {
      const base = loadCatalog();
      const copy = structuredClone(base.byId.get(id)) as OsRelease;
      change(copy);
      const releases = base.releases.map((r) => (r.id === id ? copy : r));
      return { releases, byId: new Map(releases.map((r) => [r.id, r])) };
    };
    const changedBy = async (catalog: Catalog) => {
      registered = [];
      await declare(all, catalog);
      const after = triggers();
      return Object.keys(after).filter((k) => after[k] !== before[k]);
    };
    expect(Object.keys(before)).toHaveLength(loadCatalog().releases.length);
    // The InstantApps layer on Ubuntu 24.04: its new upstream build rebuilds them too.
    expect(await changedBy(edited((r) => (r.upstream.pins.x86_64!.serial = "20270101"), "ubuntu-24.04"))).toEqual([
      "ubuntu-24.04-x86_64-artifact",
      "app-wordpress-x86_64-artifact",
      "app-openvpn-x86_64-artifact",
    ]);
    expect(await changedBy(edited((r) => r.recipe.push({ op: "install", packages: ["vim"] }), "almalinux-9"))).toEqual([
      "almalinux-9-x86_64-artifact",
    ]);
    expect(await changedBy(loadCatalog())).toEqual([]);
  });

  it("leaves a replaced snapshot and image to retention, and runs retention after every image", async () => {
    const { plans, images } = await declare({ images: ["debian-12"] });
    for (const r of registered.filter((x) => x.type !== "image-factory:index:ZonalImage"))
      expect(r.retainOnDelete === true, r.name).toBe(r.name.endsWith("-snapshot") || r.name.endsWith("-image"));

    const cmd = retention(plans, settingsFor({ images: ["debian-12"] }), credentials, images, {
      transformations: [recordOptions],
    })!;
    await new Promise<void>((done) => cmd.stdout.apply(() => done()));
    const r = named("retention");
    expect(r.dependsOn).toEqual(["debian-12-x86_64"]);
    // A component named from the stack's zone; the Command keeps its shipped name.
    expect(registered.filter((x) => x.type === "image-factory:index:Retention").map((x) => x.name)).toEqual([
      "retention-fr-par-2",
    ]);
    expect(r.parent).toBe("retention-fr-par-2");
    expect(r.inputs.create).toBe(`${factoryCli()} retention --apply`);
    expect(r.inputs.triggers).toEqual([formatCurrentBuilds(plans)]);
    expect(isSecret(r.inputs.environment)).toBe(true);
    expect(reveal(r.inputs.environment)).toMatchObject({
      FACTORY_ZONE: "fr-par-2",
      FACTORY_CURRENT: `debian-12/x86_64=${plans[0]!.contentHash}`,
    });
  });

  it("deletes what a rebuild replaces, and declares no retention, when previous versions are not kept", async () => {
    const { plans, images } = await declare({ images: ["debian-12"], keepPreviousVersions: false });
    expect(registered.filter((r) => r.retainOnDelete).map((r) => r.name)).toEqual([]);
    expect(
      retention(plans, settingsFor({ images: ["debian-12"], keepPreviousVersions: false }), credentials, images),
    ).toBeUndefined();
  });

  it("builds arm64 on the arm64 test type", async () => {
    await declare({ images: ["ubuntu-24.04"], architectures: ["arm64"], ...ARM64_BUILD_HOST });
    expect(named("ubuntu-24.04-arm64-test-server").inputs.type).toBe("COPARM1-2C-8G");
    expect(named("ubuntu-24.04-arm64-image").inputs.architecture).toBe("arm64");
  });
});

/** The variables of a declared environment whose value is a secret Output. */
async function secretNames(env: Record<string, unknown>): Promise<string[]> {
  const names: string[] = [];
  for (const [k, v] of Object.entries(env))
    if (pulumi.Output.isInstance(v) && (await pulumi.isSecret(v))) names.push(k);
  return names.sort();
}
const declaredSecrets = (c: Contract, env: Record<string, unknown>) =>
  secretVariables(c)
    .filter((n) => n in env)
    .sort();

describe("the Commands' environment, as the CLI reads it", () => {
  it("gives publish and test-instance the plan's values, secrets exactly where the contract says", async () => {
    const { plans } = await declare({
      images: ["app-wordpress"],
      appBases: ["app-wordpress=debian-12"],
      mirror: "https://mirror.example.org",
    });
    const p = plans[0]!;
    const artifact = readEnvironment(PublishContract, reveal(named(`${p.name}-artifact`).inputs.environment));
    expect(artifact).toEqual({
      accessKeyId: "SCWXXXXXXXXXXXXXXXXX",
      secretAccessKey: "00000000-0000-0000-0000-000000000000",
      s3Endpoint: "https://s3.fr-par.scw.cloud",
      s3Region: p.region,
      bucket: "scw-image-factory-fr-par",
      key: p.artifactKey,
      ref: `test-fr-par-2/${p.name}`,
      release: "app-wordpress",
      arch: p.arch,
      contentHash: p.contentHash,
      releaseEpoch: p.hashInputs.releaseEpoch,
      securityEpoch: p.hashInputs.securityEpoch,
      ecosystemVersion: p.hashInputs.ecosystemVersion,
      ecosystemRepository: "https://packages.example.org/scaleway",
      mirror: "https://mirror.example.org",
      appBases: { "app-wordpress": "debian-12" },
      timeout: "2h",
    });
    const tests = readEnvironment(TestInstanceContract, reveal(named(`${p.name}-tests`).inputs.environment));
    expect(tests).toEqual({
      serverId: `fr-par-2/${p.name}-test-server-id`,
      zone: p.zone,
      release: "app-wordpress",
      accessKey: "SCWXXXXXXXXXXXXXXXXX",
      secretKey: "00000000-0000-0000-0000-000000000000",
      timeout: "2h",
    });
    for (const [name, contract] of [
      [`${p.name}-artifact`, PublishContract],
      [`${p.name}-tests`, TestInstanceContract],
    ] as const) {
      const env = rawEnvironment.get(name)!;
      expect(await secretNames(env), name).toEqual(declaredSecrets(contract, env));
      expect(await secretNames(env), name).not.toEqual([]);
    }
  });

  it("gives retention the zone and the current builds", async () => {
    const settings = settingsFor({ images: ["debian-12"], projectId: "11111111-2222-4333-8444-555555555555" });
    const { plans, images } = await declare({
      images: ["debian-12"],
      projectId: "11111111-2222-4333-8444-555555555555",
    });
    const cmd = retention(plans, settings, credentials, images, { transformations: [recordOptions] })!;
    await new Promise<void>((done) => cmd.stdout.apply(() => done()));
    expect(readEnvironment(RetentionContract, reveal(named("retention").inputs.environment))).toEqual({
      zone: "fr-par-2",
      current: formatCurrentBuilds(plans),
      accessKey: "SCWXXXXXXXXXXXXXXXXX",
      secretKey: "00000000-0000-0000-0000-000000000000",
      projectId: "11111111-2222-4333-8444-555555555555",
      timeout: "30m",
    });
    const env = rawEnvironment.get("retention")!;
    expect(await secretNames(env)).toEqual(declaredSecrets(RetentionContract, env));
  });
});

const settle = <T>(o: pulumi.Output<T>) => new Promise<T>((done) => o.apply((v) => (done(v), v)));

describe("test Instances that do not outlive their release", () => {
  it("exports the content hashes whose battery passed", async () => {
    const { plans, images } = await declare();
    expect(await settle(testedContentHashes(images))).toEqual(plans.map((p) => p.contentHash).sort());
  });

  it("declares no test Instance for a hash that passed in an earlier up, and still releases its image", async () => {
    const plans = planStack(loadCatalog(), settingsFor());
    const debian = plans.find((p) => p.release.id === "debian-12")!;
    const { images } = await declare({}, loadCatalog(), passedEarlier([debian.contentHash]));
    const names = registered.map((r) => r.name);
    expect(names).not.toContain("debian-12-x86_64-test-server");
    expect(names).not.toContain("debian-12-x86_64-tests");
    expect(names).toContain("debian-12-x86_64-image");
    expect(names).toContain("ubuntu-24.04-x86_64-test-server");
    const img = images[plans.indexOf(debian)]!;
    expect(await settle(img.releasedImageId)).toBe("fr-par-2/debian-12-x86_64-image-id");
    expect(await settle(img.testServerId)).toBeUndefined();
    // Still exported, so the next up keeps it out too.
    expect(await settle(testedContentHashes(images))).toEqual(plans.map((p) => p.contentHash).sort());
    // Its image and snapshot say it is released, the ones still under test that they are candidates.
    expect(named("debian-12-x86_64-image").inputs.tags).toContain("factory:status=released");
    expect(named("debian-12-x86_64-snapshot").inputs.tags).toContain("factory:status=released");
    expect(named("ubuntu-24.04-x86_64-image").inputs.tags).toContain("factory:status=candidate");
  });

  it("releases images at once when tests are off", async () => {
    await declare({ runTests: false, images: ["debian-12"] });
    expect(named("debian-12-x86_64-image").inputs.tags).toContain("factory:status=released");
    expect(named("debian-12-x86_64-image").inputs.tags).not.toContain("factory:status=candidate");
  });

  it("tests again when the content hash changes", async () => {
    await declare({}, loadCatalog(), passedEarlier(["0".repeat(64)]));
    expect(registered.filter((r) => r.name.endsWith("-test-server"))).toHaveLength(2);
  });

  it.each([
    { what: "no previous up", previous: undefined, want: [] },
    { what: "hashes", previous: ["a".repeat(64), "b".repeat(64)], want: ["a".repeat(64), "b".repeat(64)] },
    { what: "something else", previous: { debian: "a".repeat(64) }, want: [] },
    { what: "a list with a stranger", previous: ["a".repeat(64), "x"], want: [] },
  ])("reads the previous output with $what", ({ previous, want }) => {
    expect([...passedEarlier(previous)]).toEqual(want);
  });

  it("exports nothing as tested when tests are off", async () => {
    const { images } = await declare({ runTests: false, images: ["debian-12"] });
    expect(await settle(testedContentHashes(images))).toEqual([]);
  });
});

describe("timeouts", () => {
  it.each([
    {
      what: "the defaults",
      config: {},
      want: { snapshot: "60m", image: "20m", server: "20m", serverDelete: "30m", publish: "2h", tests: "2h" },
    },
    {
      what: "the stack's",
      config: {
        snapshotImportTimeout: "3h",
        imageTimeout: "45m",
        testServerTimeout: "25m",
        testServerDeleteTimeout: "1h",
        publishTimeout: "4h",
        testsTimeout: "90m",
      },
      want: { snapshot: "3h", image: "45m", server: "25m", serverDelete: "1h", publish: "4h", tests: "90m" },
    },
  ])("bound every step that waits, with $what", async ({ config, want }) => {
    await declare({ images: ["debian-12"], ...config });
    const n = "debian-12-x86_64";
    expect(named(`${n}-snapshot`).customTimeouts).toEqual({ create: want.snapshot, update: want.snapshot });
    expect(named(`${n}-image`).customTimeouts).toEqual({ create: want.image, update: want.image, delete: want.image });
    expect(named(`${n}-test-server`).customTimeouts).toEqual({
      create: want.server,
      update: want.server,
      delete: want.serverDelete,
    });
    // Commands have no timeout of their own: the CLI ends itself after FACTORY_TIMEOUT.
    expect(reveal(named(`${n}-artifact`).inputs.environment).FACTORY_TIMEOUT).toBe(want.publish);
    expect(reveal(named(`${n}-tests`).inputs.environment).FACTORY_TIMEOUT).toBe(want.tests);
  });

  it("refuses a timeout that is not a duration, naming the key", () => {
    expect(() => settingsFor({ snapshotImportTimeout: "soon" })).toThrow(
      "image-factory:snapshotImportTimeout: expected a duration such as 90m, 2h or 45s",
    );
  });
});

describe("the release spec", () => {
  it("is what the ZonalImage declares, resource by resource, for every image", async () => {
    const settings = settingsFor({ images: ["*"], architectures: ["x86_64", "arm64"], ...ARM64_BUILD_HOST });
    const { plans } = await declare({ images: ["*"], architectures: ["x86_64", "arm64"], ...ARM64_BUILD_HOST });
    expect(plans.length).toBeGreaterThan(5);
    for (const p of plans) {
      // The local job's emulated release takes its spec from this very function.
      const spec = localReleaseSpec(p, settings);
      const tags = withBuildDate(spec.tags, BUILD_DATE, spec.image.name);
      expect(named(`${p.name}-snapshot`).inputs).toEqual({
        name: spec.snapshot.name,
        zone: spec.zone,
        import: spec.snapshot.import,
        tags,
      });
      expect(named(`${p.name}-image`).inputs).toEqual({
        name: spec.image.name,
        zone: spec.zone,
        architecture: spec.image.architecture,
        rootVolumeId: `${spec.zone}/${p.name}-snapshot-id`,
        tags,
      });
      const { image, ...server } = named(`${p.name}-test-server`).inputs;
      expect(image).toBe(`${spec.zone}/${p.name}-image-id`);
      expect(server).toEqual({
        name: spec.server.name,
        type: spec.server.commercialType,
        zone: spec.zone,
        rootVolume: spec.server.rootVolume,
        enableDynamicIp: spec.server.enableDynamicIp,
        bootType: spec.server.bootType,
        state: spec.server.state,
        tags: [...tags, spec.server.roleTag],
      });
      const env = reveal(named(`${p.name}-tests`).inputs.environment);
      expect(env).toEqual(
        testEnvironment(spec, {
          serverId: `${spec.zone}/${p.name}-test-server-id`,
          accessKey: credentials.accessKey,
          secretKey: "00000000-0000-0000-0000-000000000000",
          timeout: "2h",
        }),
      );
    }
  });
});

describe("the policy pack", () => {
  it("finds nothing wrong with what the program declares, for every image of the catalog", async () => {
    await declare({ images: ["*"] });
    const checked = registered.filter((r) => [IMAGE, SNAPSHOT, SERVER].includes(r.type));
    expect(checked).toHaveLength(3 * loadCatalog().releases.length);
    for (const r of checked) expect(violations(r.type, r.inputs), r.name).toEqual([]);
  });

  it.each([
    {
      what: "an image without its os_distro tag",
      type: IMAGE,
      change: (p: Record<string, any>) => (p.tags = p.tags.filter((t: string) => !t.startsWith("scs:os_distro="))),
      expected: ["scs-metadata-tags: os_distro is missing"],
    },
    {
      what: "an image with a made-up replace_frequency and no content hash",
      type: IMAGE,
      change: (p: Record<string, any>) =>
        (p.tags = p.tags
          .filter((t: string) => !t.startsWith("factory:content-hash="))
          .map((t: string) => (t.startsWith("scs:replace_frequency=") ? "scs:replace_frequency=sometimes" : t))),
      expected: [
        'scs-metadata-tags: replace_frequency "sometimes" is not one of yearly, quarterly, monthly, weekly, daily, critical_bug, never',
        "factory-provenance-tags: no factory:content-hash=<sha256> tag",
      ],
    },
    {
      what: "a test Instance named with an underscore",
      type: SERVER,
      change: (p: Record<string, any>) => (p.name = "test-debian-12-x86_64-2d45c97a"),
      expected: [
        'test-server-hostname: name "test-debian-12-x86_64-2d45c97a" is not a valid hostname (lowercase letters, digits, inner hyphens, at most 63)',
      ],
    },
    {
      what: "a snapshot importing a raw image",
      type: SNAPSHOT,
      change: (p: Record<string, any>) => (p.import = { ...p.import, key: "uploads/debian.raw" }),
      expected: [
        'content-addressed-qcow2-import: import key "uploads/debian.raw" is not images/<id>/<arch>/<sha256>.qcow2',
      ],
    },
    ...[
      ["a key that is not content-addressed", "images/debian-12/x86_64/latest.qcow2"],
      ["a raw image under the factory's prefix", `images/debian-12/x86_64/${"a".repeat(64)}.raw`],
      ["an architecture the factory does not build", `images/debian-12/riscv64/${"a".repeat(64)}.qcow2`],
      ["a short hash", `images/debian-12/x86_64/${"a".repeat(40)}.qcow2`],
      ["a path beside the release", `images/debian-12/x86_64/old/${"a".repeat(64)}.qcow2`],
    ].map(([what, key]) => ({
      what: `a snapshot importing ${what}`,
      type: SNAPSHOT,
      change: (p: Record<string, any>) => (p.import = { ...p.import, key }),
      expected: [`content-addressed-qcow2-import: import key "${key}" is not images/<id>/<arch>/<sha256>.qcow2`],
    })),
    {
      what: "an image whose hash_algo is md5",
      type: IMAGE,
      change: (p: Record<string, any>) =>
        (p.tags = p.tags.map((t: string) => (t.startsWith("scs:hash_algo=") ? "scs:hash_algo=md5" : t))),
      expected: ['scs-metadata-tags: hash_algo "md5" is not sha256 or sha512'],
    },
  ])("blocks $what", async ({ type, change, expected }) => {
    await declare({ images: ["debian-12"] });
    const props = structuredClone(registered.find((r) => r.type === type)!.inputs);
    change(props);
    expect(violations(type, props)).toEqual(expected);
  });
});
