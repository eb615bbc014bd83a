import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkedUnchanged, digestsOf, ensureFixtureDigests, fileIdentity } from "../../builder/local/fixture";
import { projectRoot } from "../../builder/system/paths";
import { upstreamsToMirror } from "../../builder/local/local-services";

describe("the upstreams the local job mirrors", () => {
  const debian = { id: "debian-12" };
  const ubuntu = { id: "ubuntu-24.04" };
  it.each([
    { name: "none", bases: [], want: [] },
    {
      name: "a base and two apps layered on it: one upstream",
      bases: [
        { os: debian, arch: "x86_64" },
        { os: debian, arch: "x86_64" },
        { os: debian, arch: "x86_64" },
      ],
      want: ["debian-12/x86_64"],
    },
    {
      name: "another architecture or release is another upstream, in first-seen order",
      bases: [
        { os: debian, arch: "x86_64" },
        { os: ubuntu, arch: "x86_64" },
        { os: debian, arch: "arm64" },
        { os: ubuntu, arch: "x86_64" },
      ],
      want: ["debian-12/x86_64", "ubuntu-24.04/x86_64", "debian-12/arm64"],
    },
  ])("$name", ({ bases, want }) => {
    expect(upstreamsToMirror(bases).map((u) => `${u.os.id}/${u.arch}`)).toEqual(want);
  });
});

describe("digests of one file from one read", () => {
  const dir = mkdtempSync(join(tmpdir(), "digests-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // Across the 1 MiB read size, so a chunk boundary falls inside the file.
  const bytes = Buffer.alloc(3 * 2 ** 20 + 12_345);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  const file = join(dir, "image");
  writeFileSync(file, bytes);
  const expected = (algo: string) => createHash(algo).update(bytes).digest("hex");

  it.each([[["sha256"]], [["sha256", "sha512"]], [["sha512", "sha1"]], [[]]] as const)("%j", async (algos) => {
    const got = await digestsOf(file, algos);
    expect(got).toEqual(Object.fromEntries(algos.map((a) => [a, expected(a)])));
  });
});

describe("the fixture's digests for the mirror", () => {
  const cache = mkdtempSync(join(tmpdir(), "fixture-cache-"));
  const saved = process.env.FACTORY_CACHE;
  afterAll(() => {
    if (saved === undefined) delete process.env.FACTORY_CACHE;
    else process.env.FACTORY_CACHE = saved;
    rmSync(cache, { recursive: true, force: true });
  });
  // A cached fixture as ensureFixture names it (by the build script's digest), with its recorded sha256.
  const placeFixture = (bytes: Buffer) => {
    process.env.FACTORY_CACHE = cache;
    const script = readFileSync(join(projectRoot(), "test", "fixtures", "build-debian-image.sh"));
    const file = join(
      cache,
      "fixtures",
      `debian-12-${createHash("sha256").update(script).digest("hex").slice(0, 16)}.qcow2`,
    );
    mkdirSync(join(cache, "fixtures"), { recursive: true });
    writeFileSync(file, bytes);
    writeFileSync(`${file}.sha256`, `${createHash("sha256").update(bytes).digest("hex")}\n`);
    return file;
  };
  const bytes = Buffer.from("a fixture's bytes ".repeat(10_000));
  const sha = (algo: string, b = bytes) => createHash(algo).update(b).digest("hex");

  it("hashes once, records the sha512 beside the sha256 it was read with, and trusts it only for that sha256", async () => {
    const file = placeFixture(bytes);
    expect(await ensureFixtureDigests(["sha512"])).toEqual({
      file,
      digests: { sha256: sha("sha256"), sha512: sha("sha512") },
    });
    expect(JSON.parse(readFileSync(`${file}.digests.json`, "utf8"))).toEqual({
      sha256: sha("sha256"),
      sha512: sha("sha512"),
    });
    // A record naming another sha256 (other bytes) is not used: the sha512 is read again.
    writeFileSync(`${file}.digests.json`, JSON.stringify({ sha256: sha("sha256", Buffer.from("x")), sha512: "0" }));
    expect((await ensureFixtureDigests(["sha512"])).digests.sha512).toBe(sha("sha512"));
    // A record for these bytes is used as it stands (what the sha256 read proves is that the bytes are the same).
    writeFileSync(`${file}.digests.json`, JSON.stringify({ sha256: sha("sha256"), sha512: "recorded" }));
    expect((await ensureFixtureDigests(["sha512"])).digests).toEqual({ sha256: sha("sha256"), sha512: "recorded" });
  });

  it("records the identity of the bytes it found intact, and reads them again once they were written", async () => {
    const file = placeFixture(bytes);
    for (const record of [".digests.json", ".checked.json"]) rmSync(`${file}${record}`, { force: true });
    const want = { file, digests: { sha256: sha("sha256"), sha512: sha("sha512") } };
    expect(await ensureFixtureDigests(["sha512"])).toEqual(want);
    const identity = fileIdentity(statSync(file, { bigint: true }));
    expect(JSON.parse(readFileSync(`${file}.checked.json`, "utf8"))).toEqual({ sha256: sha("sha256"), identity });
    expect(await ensureFixtureDigests(["sha512"])).toEqual(want);
    // The same bytes written again, their mtime put back: a new ctime, so they are read (and found intact) again.
    const { atime, mtime } = statSync(file);
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(file, bytes);
    utimesSync(file, atime, mtime);
    const rewritten = fileIdentity(statSync(file, { bigint: true }));
    expect(rewritten).not.toBe(identity);
    expect(await ensureFixtureDigests(["sha512"])).toEqual(want);
    expect(JSON.parse(readFileSync(`${file}.checked.json`, "utf8")).identity).toBe(rewritten);
  });
});

describe("whether a checked fixture is unchanged since", () => {
  const SHA = "a".repeat(64);
  const ID = "2049:131:190381056:1764627600000000000:1764627600000000000";
  it.each<[string, unknown, boolean]>([
    ["the record of this sha256 and identity", { sha256: SHA, identity: ID }, true],
    ["no record", undefined, false],
    ["a record of another sha256", { sha256: "b".repeat(64), identity: ID }, false],
    ["a record of another identity (written since)", { sha256: SHA, identity: `${ID}1` }, false],
    ["a record without identity", { sha256: SHA }, false],
    ["a record without sha256", { identity: ID }, false],
  ])("%s: %s", (_, record, unchanged) => {
    expect(checkedUnchanged(record, SHA, ID)).toBe(unchanged);
  });

  it.each([
    ["another inode", { ino: 132n }],
    ["another size", { size: 190381057n }],
    ["another mtime", { mtimeNs: 1n }],
    ["another ctime", { ctimeNs: 1n }],
    ["another device", { dev: 2050n }],
  ])("an identity differs with %s", (_, change) => {
    const base = { dev: 2049n, ino: 131n, size: 190381056n, mtimeNs: 5n, ctimeNs: 6n };
    expect(fileIdentity({ ...base, ...change })).not.toBe(fileIdentity(base));
  });
});
