/**
 * The supply chain on the local parts: two fixture builds of debian-12 published to a real S3 server, the second
 * after a new scaleway-ecosystem release (1.0.0, then 1.0.1: one package upgraded, as a product release rebuilds
 * every image). The SBOM is checked against the image's dpkg database read
 * independently (dpkg-query on a copy of it), the diff must show exactly that package, and a flipped byte in each
 * signed file must be refused by `image-factory verify` and by publish before an import.
 * The builds go through the per-user artifact cache (content-addressed, as every run of the factory's): the first run
 * on a machine pays two TCG builds, later runs reuse them. What is tested here is the supply chain around an
 * artifact; the build itself is tested with an empty cache in pipeline.test.ts.
 */
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PackageURL } from "packageurl-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { accelerator, guestfsEnv } from "../../builder/system/accel";
import { main } from "../../builder/cli";
import { run } from "../../builder/system/exec";
import { buildEcosystemRepo } from "../../builder/local/ecosystem-repo";
import { ensureFixture } from "../../builder/local/fixture";
import { serveDirectory, type StaticServer } from "../../builder/local/http-server";
import { ensureVersitygw, startS3, type S3Server } from "../../builder/local/s3-server";
import { TEST_RELEASE_KEY } from "../../builder/local/test-keys";
import { artifactKey, contentHash, hashInputs } from "../../builder/core/plan";
import { companionKeys } from "../../builder/pipeline/provenance";
import { publish } from "../../builder/pipeline/publish";
import { sbomSchemaErrors } from "../../builder/pipeline/sbom";
import { SignatureError } from "../../builder/core/signing";
import { diffAgainstPrevious, packagesInBucket } from "../../builder/pipeline/supply-chain";
import { s3Client } from "../../builder/pipeline/upload";
import type { Catalog } from "../../images";
import { createFakeUpstream } from "../support/upstream";

const BUCKET = "image-factory-supply";
/** The ecosystem releases of the two builds: the second differs from the first in that one package. */
const ECOSYSTEM = ["1.0.0", "1.0.1"] as const;

let work: string;
let mirror: StaticServer;
let s3: S3Server;
let catalog: Catalog;
const releaseKey = () => readFileSync(TEST_RELEASE_KEY.secret, "utf8");

beforeAll(async () => {
  const fixture = await ensureFixture();
  process.env.FACTORY_ACCEL = await accelerator();
  await ensureVersitygw();
  work = mkdtempSync(join(tmpdir(), "factory-supply-"));
  catalog = (await createFakeUpstream(join(work, "www"), fixture)).catalog;
  for (const v of ECOSYSTEM) await buildEcosystemRepo(join(work, "www", `packages-${v}`), v);
  mirror = await serveDirectory(join(work, "www"));
  s3 = await startS3(join(work, "s3"));
  await s3Client({ ...s3, bucket: BUCKET }).send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  await mirror?.close();
  await s3?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** debian-12 of the fixture catalog with the given scaleway-ecosystem release. */
function request(ecosystemVersion: (typeof ECOSYSTEM)[number], ref: string) {
  const dials = { releaseEpoch: "2026Q4", ecosystemVersion, securityEpoch: 0 };
  const hash = contentHash(hashInputs(catalog, catalog.byId.get("debian-12")!, "x86_64", dials));
  return {
    catalog,
    releaseId: "debian-12",
    arch: "x86_64" as const,
    dials,
    ecosystem: { repository: `${mirror.url}/packages-${ecosystemVersion}`, version: ecosystemVersion },
    mirror: `${mirror.url}/upstream`,
    expectedContentHash: hash,
    s3: { ...s3, bucket: BUCKET },
    key: artifactKey("debian-12", "x86_64", hash),
    ref,
    releaseKey: releaseKey(),
  };
}

const client = () => s3Client({ ...s3, bucket: BUCKET });
const getText = async (key: string) =>
  (await client().send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
const getBytes = async (key: string) =>
  Buffer.from(
    await (await client().send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToByteArray(),
  );
/** Replaced in place, its metadata (the content hash publish looks for) kept: only the bytes differ. */
async function put(key: string, body: Buffer): Promise<void> {
  const head = await client().send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  await client().send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: head.Metadata }));
}
/** One bit flipped at `at`, or in the first letter after `after` (JSON stays JSON, so only the signature can tell). */
function flipped(b: Buffer, at: number | string): Buffer {
  const c = Buffer.from(b);
  const i = typeof at === "number" ? at : b.indexOf(at) + at.length;
  if (typeof at === "string" && i < at.length) throw new Error(`no "${at}" to flip after`);
  c[i] = c[i]! ^ 0x01;
  return c;
}

describe("supply chain of two fixture builds", () => {
  let first: ReturnType<typeof request>;
  let second: ReturnType<typeof request>;

  it("publishes a build with a valid CycloneDX SBOM listing every installed package of its dpkg database", async () => {
    first = request(ECOSYSTEM[0], "local/debian-12-x86_64");
    await publish(first);
    const sbom = await getText(companionKeys(first.key).sbom);
    expect(await sbomSchemaErrors(sbom)).toBeNull();

    // The database read independently: dpkg-query on a copy of the artifact's /var/lib/dpkg.
    const artifact = join(work, "first.qcow2");
    writeFileSync(artifact, await getBytes(first.key));
    const admin = join(work, "dpkg");
    mkdirSync(admin);
    await run("virt-copy-out", ["--format=qcow2", "-a", artifact, "/var/lib/dpkg", admin], {
      env: guestfsEnv(await accelerator()),
    });
    const { stdout } = await run("dpkg-query", [
      `--admindir=${join(admin, "dpkg")}`,
      "-W",
      "-f",
      "${db:Status-Status}\\t${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\n",
    ]);
    const installed = stdout
      .split("\n")
      .filter((l) => l.startsWith("installed\t"))
      .map((l) => l.split("\t").slice(1));
    expect(installed.length).toBeGreaterThan(100);
    const components = (
      JSON.parse(sbom) as {
        components: {
          name: string;
          version: string;
          purl: string;
          properties: { name: string; value: string }[];
          licenses?: unknown[];
        }[];
      }
    ).components;
    const prop = (c: (typeof components)[number], n: string) =>
      c.properties.find((p) => p.name === `image-factory:${n}`)?.value;
    expect(components.map((c) => [c.name, c.version, prop(c, "arch"), prop(c, "source-package")]).sort()).toEqual(
      installed.sort(),
    );
    // Names and versions are percent-encoded in a purl (libstdc++6 is libstdc%2B%2B6): read each back with the library.
    const wrongPurls = components.filter((c) => {
      const purl = PackageURL.fromString(c.purl);
      return purl.type !== "deb" || purl.namespace !== "debian" || purl.name !== c.name || purl.version !== c.version;
    });
    expect(wrongPurls.map((c) => c.purl)).toEqual([]);
    // Licences where Debian's copyright files are machine-readable (most of a base system's).
    expect(components.filter((c) => c.licenses?.length).length).toBeGreaterThan(installed.length / 3);
    expect(await getText(companionKeys(first.key).notes)).toContain("first build of this release in the bucket");
  });

  it("shows exactly the one package a second build upgraded (a new scaleway-ecosystem), in the diff and in its release notes", async () => {
    second = request(ECOSYSTEM[1], "local/debian-12-x86_64");
    expect(second.key).not.toBe(first.key);
    await publish(second);
    const diff = await diffAgainstPrevious(
      client(),
      BUCKET,
      "debian-12",
      "x86_64",
      second.key,
      (await packagesInBucket(client(), BUCKET, second.key))!,
    );
    expect(diff.from).toBe(first.key);
    expect(diff.changes).toEqual([
      {
        change: "upgraded",
        name: "scaleway-ecosystem",
        arch: "all",
        from: ECOSYSTEM[0],
        to: ECOSYSTEM[1],
        // It holds the image's trust (its helpers fetch keys and user data): a security row, listed first.
        class: "security",
      },
    ]);
    const notes = await getText(companionKeys(second.key).notes);
    expect(notes).toContain(`## Packages since \`${first.key}\``);
    expect(notes).toContain("| `scaleway-ecosystem` | all | upgraded |");
  });

  it("image-factory verify accepts the published set and refuses a flipped byte in each signed file", async () => {
    const keyFlags = [
      "--bucket",
      BUCKET,
      "--region",
      "fr-par",
      "--endpoint",
      s3.endpoint,
      "--public-key",
      TEST_RELEASE_KEY.public,
    ];
    process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
    expect(await main(["verify", second.key, ...keyFlags])).toBe(0);

    const k = companionKeys(second.key);
    for (const [what, key, at] of [
      ["manifest", k.manifest, '"label": "'],
      ["sbom", k.sbom, '"bomFormat": "'],
      ["provenance", k.provenance, '"payload": "eyJ'],
      ["artifact", second.key, 5 * 2 ** 20],
    ] as const) {
      const original = await getBytes(key);
      await put(key, flipped(original, at));
      try {
        expect(await main(["verify", second.key, ...keyFlags]), what).toBe(1);
        // And publish, which the snapshot import waits for, refuses it too.
        await expect(publish({ ...second, ref: "local-2/debian-12-x86_64" }), what).rejects.toThrow(SignatureError);
      } finally {
        await put(key, original);
      }
    }
    expect(await main(["verify", second.key, ...keyFlags])).toBe(0);
  });

  it("publishes an unchanged artifact again without reading it back, and reads it again once it was written again", async () => {
    /** What publish said about the artifact's sha256: reused from this machine's earlier read, or read now. */
    const verified = async () => {
      const said: string[] = [];
      const spy = vi.spyOn(process.stderr, "write").mockImplementation((s) => (said.push(String(s)), true));
      try {
        await publish({ ...second, ref: "local-3/debian-12-x86_64" });
      } finally {
        spy.mockRestore();
      }
      const line = said.find((l) => l.includes("provenance signature and digests verified"));
      expect(line).toBeDefined();
      return line!.includes("as this machine read this object version before") ? "reused" : "read";
    };
    /** The same bytes written again: a new version (a new Last-Modified, a second later), never taken on trust. */
    const rewrite = async () => {
      await new Promise((r) => setTimeout(r, 1100));
      await put(second.key, await getBytes(second.key));
    };
    await rewrite();
    expect(await verified()).toBe("read");
    expect(await verified()).toBe("reused");
    await rewrite();
    expect(await verified()).toBe("read");
    expect(await verified()).toBe("reused");
  });
});
