import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { digestsOf } from "../../builder/local/fixture";
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
