/**
 * The build pipeline with its real parts: a debootstrapped Debian fixture served as a fake upstream on loopback,
 * gpg, libguestfs (TCG unless KVM works), qemu-img and a real S3 server (versitygw). Slow: minutes.
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accelerator } from "../../builder/system/accel";
import { buildImage } from "../../builder/pipeline/build";
import { run } from "../../builder/system/exec";
import { ChecksumMismatchError, fetchVerified } from "../../builder/pipeline/fetch";
import { qemuImgInfo } from "../../builder/pipeline/finalise";
import { buildEcosystemRepo } from "../../builder/local/ecosystem-repo";
import { ensureFixture } from "../../builder/local/fixture";
import { serveDirectory, type StaticServer } from "../../builder/local/http-server";
import { ensureVersitygw, startS3, type S3Server } from "../../builder/local/s3-server";
import { references } from "../../builder/pipeline/artifact-refs";
import { artifactKey, contentHash, hashInputs } from "../../builder/core/plan";
import { publish, UpstreamChangedError } from "../../builder/pipeline/publish";
import { mirrorAs } from "../../builder/local/mirror";
import { resolveSource } from "../../builder/pipeline/resolve";
import { SignatureError } from "../../builder/pipeline/signature";
import { s3Client, uploadArtifact } from "../../builder/pipeline/upload";
import { withOverrides, type Catalog, type OsRelease } from "../../images";
import { TEST_KEYS } from "../../builder/local/test-keys";
import { createFakeUpstream, signedCatalog } from "../support/upstream";
import { SLOW_TESTS } from "../support/slow";

// debian-12 is signed by the test key this catalog pins; the unsigned releases' checksums are pinned once known.
const catalog = signedCatalog();
let pinned: Catalog = catalog;
const os = (id: string) => pinned.byId.get(id) as OsRelease;
const FPR = TEST_KEYS.upstream.fingerprint;
const dials = { releaseEpoch: "2026Q4", ecosystemVersion: "1.0.0", securityEpoch: 0 };
const BUCKET = "image-factory-test";

let work: string;
let upstreamBytes: number;
let mirror: StaticServer;
let s3: S3Server;
let ecosystem: { repository: string; version: string };

beforeAll(async () => {
  // The fixture and the accelerator probe use the per-user cache; everything else gets a fresh one.
  const fixture = await ensureFixture();
  upstreamBytes = statSync(fixture).size;
  process.env.FACTORY_ACCEL = await accelerator();
  await ensureVersitygw();
  work = mkdtempSync(join(tmpdir(), "factory-it-"));
  process.env.FACTORY_CACHE = join(work, "cache");
  pinned = (await createFakeUpstream(join(work, "www"), fixture)).catalog;
  await buildEcosystemRepo(join(work, "www", "packages"), "1.0.0");
  mirror = await serveDirectory(join(work, "www"));
  ecosystem = { repository: `${mirror.url}/packages`, version: "1.0.0" };
  s3 = await startS3(join(work, "s3"));
  await s3Client({ ...s3, bucket: BUCKET }).send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  await mirror?.close();
  await s3?.stop();
  delete process.env.FACTORY_CACHE;
  if (work) rmSync(work, { recursive: true, force: true });
});

const upstream = () => `${mirror.url}/upstream`;
const target = () => ({ ...s3, bucket: BUCKET });
async function bucketKeys(): Promise<string[]> {
  const list = await s3Client(target()).send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (list.Contents ?? []).map((c) => c.Key!).sort();
}

describe("resolve: upstream checksum files in their real formats, through the mirror", () => {
  it.each([
    { id: "debian-12", algo: "sha512", trust: `pgp:${FPR}` },
    { id: "ubuntu-24.04", algo: "sha256", trust: `pgp:${FPR}` },
    { id: "rocky-9", algo: "sha256", trust: "pinned-checksum" },
    { id: "archlinux-rolling", algo: "sha256", trust: "pinned-checksum" },
  ])("$id ($algo, $trust)", async ({ id, algo, trust }) => {
    const source = await resolveSource(os(id), "x86_64", upstream());
    expect(source.checksum.algo).toBe(algo);
    expect(source.trust).toBe(trust);
    expect(source.fetchUrl.startsWith(`${mirror.url}/upstream/`)).toBe(true);
    // Metadata keeps naming the official upstream.
    expect(source.imageUrl.startsWith("https://")).toBe(true);
  });

  it("fails closed on a checksum file altered after signing", async () => {
    await expect(resolveSource(os("ubuntu-22.04"), "x86_64", upstream())).rejects.toThrow(SignatureError);
    await expect(resolveSource(os("ubuntu-22.04"), "x86_64", upstream())).rejects.toThrow(/BAD signature/);
  });

  it("fails when the checksum file does not match the catalog's pinned checksum", async () => {
    const pinned = structuredClone(os("debian-12"));
    pinned.upstream.pins.x86_64!.checksum = "1".repeat(128);
    await expect(resolveSource(pinned, "x86_64", upstream())).rejects.toThrow(/but the catalog pins 1111/);
  });
});

describe("fetch: content-addressed cache", () => {
  it("never caches a download whose digest does not match (tampered mirror)", async () => {
    const source = await resolveSource(os("debian-13"), "x86_64", upstream());
    await expect(fetchVerified(source.fetchUrl, source.checksum, "debian-13")).rejects.toThrow(ChecksumMismatchError);
    await expect(fetchVerified(source.fetchUrl, source.checksum, "debian-13")).rejects.toThrow(
      /sha512 mismatch: expected eeee/,
    );
    const cache = process.env.FACTORY_CACHE!;
    expect(existsSync(join(cache, "blobs", "sha512", source.checksum.hex))).toBe(false);
    expect(readdirSync(join(cache, "partial"))).toEqual([]);
  });

  it("resumes a download cut mid-way with a Range request", async () => {
    const source = await resolveSource(os("rocky-9"), "x86_64", upstream());
    mirror.faults.push({ suffix: source.fileName, cutAfterBytes: 20 * 2 ** 20, times: 1 });
    mirror.log.length = 0;
    const path = await fetchVerified(source.fetchUrl, source.checksum, "rocky-9");
    expect(path).toBe(join(process.env.FACTORY_CACHE!, "blobs", "sha256", source.checksum.hex));
    const requests = mirror.log.filter((l) => l.path.endsWith(source.fileName));
    expect(requests.map((r) => r.status)).toEqual([200, 206]);
    // Bytes in flight when the connection dropped are lost: it resumes from what it really has.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(requests[1]!.range ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(20 * 2 ** 20);
  });
});

describe("build and publish debian-12 end to end", () => {
  // The fixture is as clean as a real upstream image, so the recipe here first leaves the residue a careless
  // build would (host keys, a machine id, history, cloud-init state, logs): the hygiene step must remove it.
  const dirty: Catalog = (() => {
    const release = structuredClone(os("debian-12"));
    release.recipe.unshift({
      op: "run",
      command:
        "ssh-keygen -A && echo 0123456789abcdef0123456789abcdef > /etc/machine-id && echo 'history' > /root/.bash_history" +
        " && mkdir -p /var/lib/cloud/instances/i-1 && echo boot > /var/log/cloud-init.log && echo x > /tmp/build-scratch",
    });
    const byId = new Map(catalog.byId);
    byId.set("debian-12", release);
    return { releases: catalog.releases.map((r) => byId.get(r.id)!), byId };
  })();
  const key = artifactKey(
    "debian-12",
    "x86_64",
    contentHash(hashInputs(dirty, dirty.byId.get("debian-12")!, "x86_64", dials)),
  );
  const hash = key.split("/").at(-1)!.replace(".qcow2", "");
  const request = () => ({
    catalog: dirty,
    releaseId: "debian-12",
    arch: "x86_64" as const,
    dials,
    ecosystem,
    mirror: upstream(),
    expectedContentHash: hash,
    s3: target(),
    key,
    ref: "local/debian-12-x86_64",
  });

  it("stops at a recipe step failing mid-way, leaving nothing behind", async () => {
    const broken: Catalog = {
      releases: catalog.releases,
      byId: new Map(catalog.byId),
    };
    const release = structuredClone(os("debian-12"));
    // Step one writes a file, step two fails: before the recipe's package steps, which would only add minutes.
    release.recipe.unshift(
      { op: "write-file", path: "/etc/factory-step-one", content: "one\n", mode: "0644" },
      { op: "run", command: "echo 'step two fails' >&2; exit 3" },
    );
    (broken.byId as Map<string, OsRelease>).set("debian-12", release);
    const out = join(work, "out-broken");
    await expect(
      buildImage({ ...request(), catalog: broken, outDir: out, expectedContentHash: undefined }),
    ).rejects.toThrow(/virt-customize exited with 1[\s\S]*exit 3/);
    expect(readdirSync(out)).toEqual([]);
    expect(await bucketKeys()).toEqual([]);
  });

  it("publishes a customised, never-booted, importable qcow2 with its manifest", async () => {
    const result = await publish(request());
    expect(result).toMatchObject({ key, built: true, uploaded: true });
    // Unsigned here (no FACTORY_RELEASE_KEY): the SBOM and release notes beside the manifest, no provenance.
    expect(await bucketKeys()).toEqual(
      [key, `${key}.manifest.json`, `${key}.cdx.json`, `${key}.notes.md`, `${key}.refs`].sort(),
    );
    expect(await references(s3Client(target()), BUCKET, key)).toEqual({ refs: ["local/debian-12-x86_64"] });

    // Take the object back out of S3 and look inside with libguestfs.
    const client = s3Client(target());
    const local = join(work, "downloaded.qcow2");
    const obj = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    writeFileSync(local, Buffer.from(await obj.Body!.transformToByteArray()));
    expect(createHash("sha256").update(readFileSync(local)).digest("hex")).toBe(result.sha256);
    expect(obj.Metadata?.["content-hash"]).toBe(hash);

    const info = await qemuImgInfo(local);
    expect(info.format).toBe("qcow2");
    expect(info["backing-filename"]).toBeUndefined();
    expect(info["format-specific"]?.data["compression-type"]).toBe("zlib");

    const script = [
      "echo RELEASE",
      "cat /etc/scw-release",
      "echo MACHINE_ID",
      "cat /etc/machine-id",
      "echo ECOSYSTEM",
      "is-file /var/lib/dpkg/info/scaleway-ecosystem.list",
      "is-file /usr/sbin/scw-generate-ssh-keys",
      "echo UNIT",
      "is-symlink /etc/systemd/system/multi-user.target.wants/scw-generate-ssh-keys.service",
      "echo HOSTKEYS",
      "glob-expand /etc/ssh/ssh_host_*",
      "echo CLOUD",
      "glob-expand /var/lib/cloud/*",
      "echo HISTORY",
      "exists /root/.bash_history",
      "echo SCRATCH",
      "exists /tmp/build-scratch",
      "echo CLOUDLOG",
      "exists /var/log/cloud-init.log",
      "echo APTLOG",
      "ls /var/log/apt",
      "echo SOURCES",
      "exists /etc/apt/sources.list.d/scaleway-ecosystem.list",
      "echo SBOM",
      "exists /root/.factory-packages.tsv",
      "echo END",
    ].join("\n");
    const { stdout } = await run("guestfish", ["--ro", "-a", local, "-i"], {
      input: script,
      env: {
        ...process.env,
        LIBGUESTFS_BACKEND: "direct",
        ...(process.env.FACTORY_ACCEL === "tcg" ? { LIBGUESTFS_BACKEND_SETTINGS: "force_tcg" } : {}),
      },
    });
    // Each "echo NAME" line starts a section; what guestfish printed until the next marker is its answer.
    const sections = new Map<string, string[]>();
    let current = "";
    for (const line of stdout.split("\n")) {
      if (/^[A-Z_]+$/.test(line)) sections.set((current = line), []);
      else if (line) sections.get(current)?.push(line);
    }
    const section = (name: string) => (sections.get(name) ?? ["<missing>"]).join("\n");
    expect(section("RELEASE")).toContain("IMAGE_ID=debian-12");
    expect(section("RELEASE")).toContain(`IMAGE_CONTENT_HASH=${hash}`);
    expect(section("RELEASE")).toMatch(/IMAGE_SOURCE=https:\/\/cloud\.debian\.org\/images\/cloud\/bookworm\//);
    expect(section("MACHINE_ID")).toBe("");
    expect(section("ECOSYSTEM")).toBe("true\ntrue");
    expect(section("UNIT")).toBe("true");
    expect(section("HOSTKEYS")).toBe("");
    expect(section("CLOUD")).toBe("");
    expect(section("HISTORY")).toBe("false");
    expect(section("SCRATCH")).toBe("false");
    expect(section("CLOUDLOG")).toBe("false");
    expect(section("APTLOG")).toBe("");
    expect(section("SOURCES")).toBe("false");
    expect(section("SBOM")).toBe("false");

    const manifest = JSON.parse(
      await (
        await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${key}.manifest.json` }))
      ).Body!.transformToString(),
    );
    expect(manifest.contentHash).toBe(hash);
    expect(manifest.output.sha256).toBe(result.sha256);
    expect(manifest.upstream.imageUrl).toMatch(/^https:\/\/cloud\.debian\.org\//);
    expect(manifest.packages).toContainEqual({ name: "scaleway-ecosystem", version: "1.0.0", arch: "all" });
    expect(manifest.packages.find((p: { name: string }) => p.name === "cloud-init")).toBeDefined();
    expect(manifest.scs.image_source).toBe(manifest.upstream.imageUrl);
    // Trimmed and compressed: no larger than the upstream it was made from (issue #15's goal for the base).
    process.stderr.write(
      `debian-12 artifact: ${(manifest.output.bytes / 2 ** 20).toFixed(1)} MiB for an upstream of ${(upstreamBytes / 2 ** 20).toFixed(1)} MiB (${(manifest.output.bytes / upstreamBytes).toFixed(3)}x)\n`,
    );
    expect(manifest.output.bytes).toBeLessThanOrEqual(upstreamBytes);
  });

  it("publishes again without building or uploading: same content hash", async () => {
    const again = await publish({ ...request(), ref: "local-2/debian-12-x86_64" });
    expect(again).toMatchObject({ built: false, uploaded: false, uploadedBytes: 0 });
    expect(await references(s3Client(target()), BUCKET, key)).toEqual({
      refs: ["local-2/debian-12-x86_64", "local/debian-12-x86_64"],
    });
  });

  // A third real build (about 10 minutes under TCG): slow lane. The main job's test builds the apps layered too.
  it.skipIf(!SLOW_TESTS)(
    "layers app-openvpn on the published base instead of customising the upstream again",
    async () => {
      // OpenVPN on this catalog's debian-12, as the local stack has it; its inputs name the base published above.
      const layered = withOverrides(dirty, { appBases: { "app-openvpn": "debian-12" } });
      const app = layered.byId.get("app-openvpn")!;
      const inputs = hashInputs(layered, app, "x86_64", dials);
      expect(inputs.baseContentHash).toBe(hash);
      const appKey = artifactKey("app-openvpn", "x86_64", contentHash(inputs));
      const started = Date.now();
      const result = await publish({
        ...request(),
        catalog: layered,
        releaseId: "app-openvpn",
        key: appKey,
        expectedContentHash: contentHash(inputs),
        ref: "local/app-openvpn-x86_64",
      });
      const seconds = (Date.now() - started) / 1000;
      expect(result).toMatchObject({ key: appKey, built: true, uploaded: true });
      const client = s3Client(target());
      const manifest = JSON.parse(
        await (
          await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${appKey}.manifest.json` }))
        ).Body!.transformToString(),
      );
      const baseManifest = JSON.parse(
        await (
          await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${key}.manifest.json` }))
        ).Body!.transformToString(),
      );
      expect(manifest.layeredOn).toEqual({
        release: "debian-12",
        contentHash: hash,
        sha256: baseManifest.output.sha256,
      });
      expect(manifest.upstream.checksum).toEqual(baseManifest.upstream.checksum);
      // What the base brought (ecosystem, cloud-init) and what the app added, in one package list.
      const names = new Set(manifest.packages.map((p: { name: string }) => p.name));
      for (const name of ["scaleway-ecosystem", "cloud-init", "openvpn", "easy-rsa", "iptables"])
        expect(names).toContain(name);
      for (const p of baseManifest.packages) expect(names).toContain(p.name);
      process.stderr.write(
        `layered app-openvpn: ${seconds.toFixed(0)} s, ${(manifest.output.bytes / 2 ** 20).toFixed(1)} MiB; base ${(baseManifest.output.bytes / 2 ** 20).toFixed(1)} MiB\n`,
      );

      const local = join(work, "app.qcow2");
      writeFileSync(
        local,
        Buffer.from(
          await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: appKey }))).Body!.transformToByteArray(),
        ),
      );
      const { stdout } = await run("guestfish", ["--ro", "-a", local, "-i"], {
        input: [
          "cat /etc/scw-release",
          "is-file /usr/sbin/scw-openvpn-firstboot",
          "is-symlink /etc/systemd/system/multi-user.target.wants/scw-openvpn-firstboot.service",
          "is-file /usr/sbin/scw-generate-ssh-keys",
          "exists /root/.factory-packages.tsv",
          "glob-expand /etc/ssh/ssh_host_*",
          "cat /etc/machine-id",
        ].join("\n"),
        env: {
          ...process.env,
          LIBGUESTFS_BACKEND: "direct",
          ...(process.env.FACTORY_ACCEL === "tcg" ? { LIBGUESTFS_BACKEND_SETTINGS: "force_tcg" } : {}),
        },
      });
      expect(stdout).toContain("IMAGE_ID=app-openvpn");
      expect(stdout).toContain(`IMAGE_CONTENT_HASH=${contentHash(inputs)}`);
      expect(stdout).not.toContain("IMAGE_ID=debian-12");
      // The app's files and unit, the base's ecosystem, no package list left; then no host keys, an empty machine-id.
      expect(stdout.trim().split("\n").slice(-4)).toEqual(["true", "true", "true", "false"]);
    },
  );

  it("refuses an upstream that replaced the build in place rather than covering it with the old artifact", async () => {
    // Same serial, other bytes (no checksum is pinned for it in the catalog).
    const other = join(work, "other.qcow2");
    await run("qemu-img", ["create", "-q", "-f", "qcow2", other, "1G"]);
    await mirrorAs(join(work, "www"), os("debian-12"), "x86_64", other, TEST_KEYS.upstream);
    await expect(publish({ ...request(), ref: "local-3/debian-12-x86_64" })).rejects.toThrow(UpstreamChangedError);
    await expect(publish({ ...request(), ref: "local-3/debian-12-x86_64" })).rejects.toThrow(
      /upstream replaced a build in place/,
    );
    // The failed publish gave its reference back.
    expect((await references(s3Client(target()), BUCKET, key))?.refs).not.toContain("local-3/debian-12-x86_64");
  });
});

describe("upload: interrupted and resumed", () => {
  const file = () => {
    const path = join(work, "payload.bin");
    if (!existsSync(path)) writeFileSync(path, Buffer.alloc(23 * 2 ** 20, 7));
    return path;
  };

  it("aborts the multipart upload when a part fails, leaving no object and no pending upload", async () => {
    const client = s3Client(target());
    await expect(
      uploadArtifact(client, BUCKET, "images/x/interrupted.qcow2", file(), "h1", {
        partSize: 5 * 2 ** 20,
        onPart: (n) => {
          if (n === 2) throw new Error("network went away");
        },
      }),
    ).rejects.toThrow("network went away");
    expect(await bucketKeys()).not.toContain("images/x/interrupted.qcow2");
    const pending = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    expect(pending.Uploads ?? []).toEqual([]);
  });

  it("resumes an upload a killed run left behind, reusing its finished parts", async () => {
    const client = s3Client(target());
    const key = "images/x/resumed.qcow2";
    const data = readFileSync(file());
    // What a run killed after its first part leaves behind.
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, Metadata: { "content-hash": "h2" } }),
    );
    await client.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: data.subarray(0, 5 * 2 ** 20) }),
    );
    const result = await uploadArtifact(client, BUCKET, key, file(), "h2", { partSize: 5 * 2 ** 20 });
    expect(result.resumedParts).toBe(1);
    expect(result.bytes).toBe(data.length - 5 * 2 ** 20);
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).toBe(true);
    expect(got.Metadata?.["content-hash"]).toBe("h2");
    const again = await uploadArtifact(client, BUCKET, key, file(), "h2", { partSize: 5 * 2 ** 20 });
    expect(again.skipped).toBe(true);
  });
});
