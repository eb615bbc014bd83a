/**
 * The fixture upstream image: a small bootable Debian 12 built by test/fixtures/build-debian-image.sh, cached per
 * user under a key derived from the script, so a changed script rebuilds it and an unchanged one never does.
 */
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { accelerator, guestfsEnv } from "../system/accel";
import { run } from "../system/exec";
import type { Digest } from "../pipeline/fetch";
import { cacheDir, projectRoot } from "../system/paths";

type Algo = Digest["algo"];

/** Digests of one file by several algorithms from a single read (a fixture is hundreds of MiB). */
export async function digestsOf<A extends Algo>(path: string, algos: readonly A[]): Promise<Record<A, string>> {
  const hashes = algos.map((a) => [a, createHash(a)] as const);
  // Larger reads than the stream default: a third fewer calls into the hash for the same bytes.
  for await (const chunk of createReadStream(path, { highWaterMark: 2 ** 20 }))
    for (const [, h] of hashes) h.update(chunk as Buffer);
  return Object.fromEntries(hashes.map(([a, h]) => [a, h.digest("hex")])) as Record<A, string>;
}

/** `<fixture>.digests.json`: digests by algorithm, valid only for the bytes whose sha256 it names. */
const digestsRecord = (file: string) => `${file}.digests.json`;

function otherDigests(file: string, sha256: string): Partial<Record<Algo, string>> {
  try {
    const r = JSON.parse(readFileSync(digestsRecord(file), "utf8")) as Partial<Record<Algo, string>>;
    return r.sha256 === sha256 ? r : {};
  } catch {
    return {};
  }
}

function recordOtherDigests(file: string, digests: Partial<Record<Algo, string>>): void {
  const before = otherDigests(file, digests.sha256!);
  const merged = { ...before, ...digests };
  if (Object.keys(merged).length > Math.max(1, Object.keys(before).length))
    writeFileSync(digestsRecord(file), `${JSON.stringify(merged)}\n`);
}

/**
 * What changes whenever a file's bytes may have: device and inode (replaced), size, mtime and ctime (written). No
 * one sets a ctime: the kernel moves it on every write, and on every link or chmod too (then the file is only hashed
 * again, needlessly but safely).
 */
export function fileIdentity(s: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }): string {
  return [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(":");
}

/** `<fixture>.checked.json`: the fixture's identity when its bytes were last found to have their recorded sha256. */
const checkedRecord = (file: string) => `${file}.checked.json`;

/** Whether `record` says the file, with its identity now, was checked against `sha256` and not written since. */
export function checkedUnchanged(record: unknown, sha256: string, identity: string): boolean {
  const r = record as { sha256?: unknown; identity?: unknown } | undefined;
  return !!r && r.sha256 === sha256 && r.identity === identity;
}

function readChecked(file: string): unknown {
  try {
    return JSON.parse(readFileSync(checkedRecord(file), "utf8"));
  } catch {
    return undefined;
  }
}

export async function ensureFixture(): Promise<string> {
  return (await ensureFixtureDigests([])).file;
}

/**
 * The fixture, checked against its recorded sha256, with its digests by `algos` from the same read (the local job
 * mirrors it under a checksum file that needs one).
 */
export async function ensureFixtureDigests<A extends Algo>(
  algos: readonly A[],
): Promise<{ file: string; digests: Record<A | "sha256", string> }> {
  const variant = "debian-12";
  const script = join(projectRoot(), "test", "fixtures", "build-debian-image.sh");
  const key = createHash("sha256").update(readFileSync(script)).digest("hex").slice(0, 16);
  const dir = cacheDir("fixtures");
  const file = join(dir, `${variant}-${key}.qcow2`);
  // The fixture is shared by every mirror and test; a copy that no longer matches its recorded digest is rebuilt.
  const wanted = [...new Set<A | "sha256">(["sha256", ...algos])];
  if (existsSync(file) && existsSync(`${file}.sha256`)) {
    const recordedSha256 = readFileSync(`${file}.sha256`, "utf8").trim();
    // The other digests, recorded once from bytes that had this sha256: the sha256 read below proves the bytes
    // are still those, so the others need no second hash (sha512 is most of the read's time).
    const known = otherDigests(file, recordedSha256);
    // Not even the sha256 is read again when the file was found intact before and not written since (its identity,
    // taken before that read, is unchanged): a second local job reads none of the fixture's hundreds of MiB.
    const identity = fileIdentity(statSync(file, { bigint: true }));
    if (checkedUnchanged(readChecked(file), recordedSha256, identity) && wanted.every((a) => known[a]))
      return { file, digests: { ...known, sha256: recordedSha256 } as Record<A | "sha256", string> };
    const digests = {
      ...known,
      ...(await digestsOf(
        file,
        wanted.filter((a) => a === "sha256" || !known[a]),
      )),
    };
    if (digests.sha256 === recordedSha256) {
      recordOtherDigests(file, digests);
      writeFileSync(checkedRecord(file), `${JSON.stringify({ sha256: recordedSha256, identity })}\n`);
      return { file, digests: digests };
    }
    process.stderr.write(`fixture: ${file} does not match its recorded sha256; rebuilding\n`);
  }
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  process.stderr.write(`fixture: building ${variant} (cached afterwards as ${file})\n`);
  try {
    await run("bash", [script, tmp], {
      streamStderr: true,
      env: guestfsEnv(await accelerator()),
    });
    const digests = await digestsOf(tmp, wanted);
    writeFileSync(`${file}.sha256`, `${digests.sha256}\n`);
    recordOtherDigests(file, digests);
    renameSync(tmp, file);
    return { file, digests };
  } finally {
    rmSync(tmp, { force: true });
  }
}
