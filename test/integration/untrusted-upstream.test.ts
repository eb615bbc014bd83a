/**
 * A compromised upstream (or mirror, or a pin recorded from a bad file) serving images crafted with qemu-img to
 * reach outside themselves: a backing file or an external data file naming a marker file of this host, a `json:`
 * backing file, an `nbd:` one aimed at a loopback port, encryption, a VMDK descriptor whose extent names the marker.
 * Each is signed and listed exactly as a real upstream's build would be, so only the gate stands in the way: the
 * fetch refuses it in one line naming the upstream and the field, caches nothing, and the marker reaches no file
 * of the build. No appliance is launched: the refusal comes first.
 */
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildImage } from "../../builder/pipeline/build";
import { digestFile } from "../../builder/pipeline/fetch";
import { fetchUpstreamImage, UntrustedImageError } from "../../builder/pipeline/inspect-upstream";
import { mirrorAs } from "../../builder/local/mirror";
import { serveDirectory, type StaticServer } from "../../builder/local/http-server";
import { TEST_KEYS } from "../../builder/local/test-keys";
import { resolveSource } from "../../builder/pipeline/resolve";
import { accelerator } from "../../builder/system/accel";
import { run } from "../../builder/system/exec";
import type { OsRelease } from "../../images";
import { signedCatalog } from "../support/upstream";

const catalog = signedCatalog();
const debian12 = catalog.byId.get("debian-12") as OsRelease;
const MARKER = `HOST-SECRET-${randomBytes(12).toString("hex")}`;

let work: string;
let marker: string;
let nbdPort: number;
let nbd: Server;
let nbdConnections = 0;
let mirror: StaticServer | undefined;

beforeAll(async () => {
  process.env.FACTORY_ACCEL = await accelerator();
  work = mkdtempSync(join(tmpdir(), "factory-untrusted-"));
  marker = join(work, "host-secret");
  writeFileSync(marker, `${MARKER}\n`.repeat(Math.ceil(2 ** 20 / (MARKER.length + 1))).slice(0, 2 ** 20));
  nbd = createServer((s) => (nbdConnections++, s.destroy()));
  await new Promise<void>((r) => nbd.listen(0, "127.0.0.1", r));
  nbdPort = (nbd.address() as { port: number }).port;
});
afterEach(async () => {
  await mirror?.close();
  mirror = undefined;
  delete process.env.FACTORY_CACHE;
});
afterAll(async () => {
  await new Promise<void>((r) => nbd.close(() => r()));
  delete process.env.FACTORY_ACCEL;
  rmSync(work, { recursive: true, force: true });
});

const qemuImg = (...args: string[]) => run("qemu-img", args);

/** Each crafted image: how qemu-img makes it, and the field the refusal must name. */
const CRAFTED: [string, (file: string) => Promise<unknown>, RegExp][] = [
  [
    "a backing file naming the host file",
    (f) => qemuImg("create", "-q", "-f", "qcow2", "-b", marker, "-F", "raw", f, "1M"),
    /backing file: names "[^"]*host-secret"/,
  ],
  [
    "a json: backing file",
    async (f) => {
      await qemuImg("create", "-q", "-f", "qcow2", f, "1M");
      await qemuImg("rebase", "-u", "-F", "raw", "-b", `json:{"driver":"file","filename":"${marker}"}`, f);
    },
    /backing file: names "json:/,
  ],
  [
    "an nbd: backing file aimed at a loopback port",
    async (f) => {
      await qemuImg("create", "-q", "-f", "qcow2", f, "1M");
      await qemuImg("rebase", "-u", "-F", "raw", "-b", `nbd://127.0.0.1:${nbdPort}/export`, f);
    },
    /backing file: names "nbd:\/\/127\.0\.0\.1:\d+\/export"/,
  ],
  [
    "an external data file naming the host file",
    async (f) => {
      await qemuImg("create", "-q", "-f", "qcow2", "-o", `data_file=${f}.data,data_file_raw=on`, f, "1M");
      await qemuImg("amend", "-o", `data_file=${marker}`, f);
      rmSync(`${f}.data`);
    },
    /external data file: names "[^"]*host-secret"/,
  ],
  [
    "LUKS encryption",
    (f) =>
      qemuImg(
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        "secret,id=s0,data=upstream",
        "-o",
        "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10",
        f,
        "1M",
      ),
    /encryption: LUKS/,
  ],
  [
    "a VMDK descriptor whose extent is the host file",
    async (f) =>
      writeFileSync(f, `# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "${marker}" 0\n`),
    /format: the file is vmdk, the catalog declares qcow2/,
  ],
  [
    "raw bytes",
    async (f) => writeFileSync(f, readFileSync(marker)),
    /format: the file is raw, the catalog declares qcow2/,
  ],
];

/** debian-12's pinned build served by a mirror on loopback as `image`, its SHA512SUMS signed by the pinned test key. */
async function serveAsDebian12(image: string): Promise<string> {
  const root = mkdtempSync(join(work, "mirror-"));
  await mirrorAs(root, debian12, "x86_64", image, TEST_KEYS.upstream);
  mirror = await serveDirectory(root);
  return `${mirror.url}/upstream`;
}

/** Every file below `dir` that holds the marker's bytes. */
function filesWithMarker(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile() && readFileSync(path).includes(MARKER)) found.push(path);
  }
  return found;
}

function freshCache(): string {
  const cache = mkdtempSync(join(work, "cache-"));
  process.env.FACTORY_CACHE = cache;
  return cache;
}

describe("the crafted images really reach outside themselves", () => {
  // Without this the refusals below could pass on images that are harmless.
  it.each([0, 3])("qemu-img convert copies the host file into its output (%s)", async (i) => {
    const image = join(work, `convert-${i}.qcow2`);
    await CRAFTED[i]![1](image);
    await qemuImg("convert", "-f", "qcow2", "-O", "raw", image, `${image}.raw`);
    expect(readFileSync(`${image}.raw`).includes(MARKER)).toBe(true);
  });
});

describe("fetch refuses a crafted upstream before any tool opens it", () => {
  it.each(CRAFTED)("%s", async (_name, make, field) => {
    const cache = freshCache();
    const image = join(work, `crafted-${randomBytes(4).toString("hex")}.qcow2`);
    await make(image);
    const url = await serveAsDebian12(image);
    const source = await resolveSource(debian12, "x86_64", url);
    nbdConnections = 0;
    const err = await fetchUpstreamImage(source, "debian-12 x86_64").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UntrustedImageError);
    const message = (err as Error).message;
    expect(message.split("\n")).toHaveLength(1);
    expect(message).toContain(`debian-12 x86_64 (${source.imageUrl} via ${source.fetchUrl})`);
    expect(message).toMatch(field);
    expect(nbdConnections).toBe(0);
    expect(existsSync(join(cache, "blobs", "sha512", source.checksum.hex))).toBe(false);
    expect(readdirSync(join(cache, "partial"))).toEqual([]);
    expect(filesWithMarker(cache)).toEqual([]);
  });

  it("takes a standalone image and caches it", async () => {
    const cache = freshCache();
    const image = join(work, "plain.qcow2");
    await qemuImg("create", "-q", "-f", "qcow2", image, "1M");
    const source = await resolveSource(debian12, "x86_64", await serveAsDebian12(image));
    const blob = await fetchUpstreamImage(source, "debian-12 x86_64");
    expect(blob).toBe(join(cache, "blobs", "sha512", source.checksum.hex));
    expect(await digestFile(blob, "sha512")).toBe(source.checksum.hex);
  });

  it("drops a crafted image an earlier version cached, and does not hand it out", async () => {
    const cache = freshCache();
    const image = join(work, "cached-backing.qcow2");
    await CRAFTED[0]![1](image);
    const source = await resolveSource(debian12, "x86_64", await serveAsDebian12(image));
    const blob = join(cache, "blobs", "sha512", source.checksum.hex);
    mkdirSync(join(cache, "blobs", "sha512"), { recursive: true });
    writeFileSync(blob, readFileSync(image));
    await expect(fetchUpstreamImage(source, "debian-12 x86_64")).rejects.toThrow(/backing file: names/);
    expect(existsSync(blob)).toBe(false);
  });
});

describe("a build from a crafted upstream", () => {
  it("stops at fetch: nothing in its output, the host file in no file it wrote", async () => {
    const cache = freshCache();
    const image = join(work, "build-data-file.qcow2");
    await CRAFTED[3]![1](image);
    const url = await serveAsDebian12(image);
    const outDir = join(work, "out");
    const request = {
      catalog,
      releaseId: "debian-12",
      arch: "x86_64" as const,
      dials: { releaseEpoch: "2026Q4", ecosystemVersion: "1.0.0", securityEpoch: 0 },
      ecosystem: { repository: "http://127.0.0.1:9/ecosystem", version: "1.0.0" },
      mirror: url,
      outDir,
    };
    await expect(buildImage(request)).rejects.toThrow(/debian-12 x86_64 .*external data file: names/);
    expect(existsSync(outDir) ? readdirSync(outDir) : []).toEqual([]);
    expect([...filesWithMarker(cache), ...filesWithMarker(outDir)]).toEqual([]);
  });
});
