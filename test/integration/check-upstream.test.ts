/**
 * The upstream watcher against a mirror laid out like the real upstreams (autoindex listings, checksum files in
 * their real formats), served on loopback: it finds newer builds, resolves them like a build would, flags end of
 * life and new majors, and writes new pins only where something changed.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkUpstream } from "../../builder/pipeline/check-upstream";
import { serveDirectory, type StaticServer } from "../../builder/local/http-server";
import { publicKey, sign, TEST_KEYS } from "../../builder/local/test-keys";
import { loadCatalog, withOverrides } from "../../images";

const root = mkdtempSync(join(tmpdir(), "factory-upstream-"));
const KEY_URL = "https://image-factory-test.invalid/keys/fixture-upstream.asc";
const testKey = { fingerprint: TEST_KEYS.upstream.fingerprint, keyUrl: KEY_URL, source: KEY_URL };
const NEW_DEBIAN = "b".repeat(128);
const NEW_ALMA = "c".repeat(64);
let mirror: StaticServer;

function put(path: string, content = "") {
  const file = join(root, "upstream", path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
}

beforeAll(async () => {
  const bookworm = "cloud.debian.org/images/cloud/bookworm";
  put(`${bookworm}/20261102-2314/SHA512SUMS`, `${"a".repeat(128)}  debian-12-genericcloud-amd64-20261102-2314.qcow2\n`);
  put(
    `${bookworm}/20261201-0001/SHA512SUMS`,
    ["amd64", "arm64"].map((a) => `${NEW_DEBIAN}  debian-12-genericcloud-${a}-20261201-0001.qcow2`).join("\n") + "\n",
  );
  put(`${bookworm}/latest/SHA512SUMS`, "");
  put(`${bookworm}/daily/SHA512SUMS`, "");
  const alma = "repo.almalinux.org/almalinux";
  for (const [arch, serials] of [
    ["x86_64", ["9.7-20261030", "9.10-20261201"]],
    ["aarch64", ["9.7-20261030"]],
  ] as const) {
    for (const s of serials) put(`${alma}/9/cloud/${arch}/images/AlmaLinux-9-GenericCloud-${s}.${arch}.qcow2`);
    put(`${alma}/9/cloud/${arch}/images/AlmaLinux-9-GenericCloud-latest.${arch}.qcow2`);
    put(
      `${alma}/9/cloud/${arch}/images/CHECKSUM`,
      serials
        .map(
          (s) =>
            `SHA256 (AlmaLinux-9-GenericCloud-${s}.${arch}.qcow2) = ${s === "9.10-20261201" ? NEW_ALMA : "d".repeat(64)}`,
        )
        .join("\n") + "\n",
    );
  }
  for (const major of ["8", "10", "11"]) put(`${alma}/${major}/README`);
  // Signed by the committed test key, which the catalog below pins in place of upstream's keys.
  for (const serial of ["20261102-2314", "20261201-0001"]) {
    const sums = join(root, "upstream", `${bookworm}/${serial}/SHA512SUMS`);
    await sign(TEST_KEYS.upstream, sums, `${sums}.sign`, "detached");
  }
  for (const arch of ["x86_64", "aarch64"]) {
    const sums = join(root, "upstream", `${alma}/9/cloud/${arch}/images/CHECKSUM`);
    await sign(TEST_KEYS.upstream, sums, `${sums}.asc`, "clearsign");
    copyFileSync(`${sums}.asc`, sums);
  }
  put("image-factory-test.invalid/keys/fixture-upstream.asc", await publicKey(TEST_KEYS.upstream));
  mirror = await serveDirectory(root);
  // Fetched keys are cached by fingerprint: keep the test key out of the user's cache.
  process.env.FACTORY_CACHE = join(root, "cache");
});

afterAll(async () => {
  await mirror?.close();
  delete process.env.FACTORY_CACHE;
  rmSync(root, { recursive: true, force: true });
});

describe("check-upstream", () => {
  const catalog = withOverrides(loadCatalog(), {
    upstreamSignatures: {
      "debian-12": {
        url: "https://cloud.debian.org/images/cloud/bookworm/{serial}/SHA512SUMS.sign",
        kind: "detached",
        ...testKey,
      },
      "almalinux-9": {
        url: "https://repo.almalinux.org/almalinux/9/cloud/{arch}/images/CHECKSUM",
        kind: "clearsigned",
        ...testKey,
      },
    },
  });
  const options = () => ({
    catalog,
    mirror: `${mirror.url}/upstream`,
    releases: ["debian-12", "almalinux-9"],
    at: "2028-08-01",
    recordedOn: "2026-12-01",
  });
  const recorded = (listing: string) => ({ recordedBy: "check-upstream --write", date: "2026-12-01", listing });
  const DEBIAN_LISTING = "https://cloud.debian.org/images/cloud/bookworm/";
  const ALMA_LISTING = (arch: string) => `https://repo.almalinux.org/almalinux/9/cloud/${arch}/images/`;

  it("finds the newest builds, resolves their checksums, and flags end of life and new majors", async () => {
    const report = await checkUpstream(options());
    expect(report.rows).toEqual([
      {
        release: "debian-12",
        arch: "x86_64",
        pinned: "20261102-2314",
        newest: "20261201-0001",
        status: "new build",
        checksum: NEW_DEBIAN,
        listing: DEBIAN_LISTING,
      },
      {
        release: "debian-12",
        arch: "arm64",
        pinned: "20261102-2314",
        newest: "20261201-0001",
        status: "new build",
        checksum: NEW_DEBIAN,
        listing: DEBIAN_LISTING,
      },
      {
        release: "almalinux-9",
        arch: "x86_64",
        pinned: "9.7-20261030",
        newest: "9.10-20261201",
        status: "new build",
        checksum: NEW_ALMA,
        listing: ALMA_LISTING("x86_64"),
      },
      // Still the newest, but pinned unverified: its checksum is read and the pin recorded.
      {
        release: "almalinux-9",
        arch: "arm64",
        pinned: "9.7-20261030",
        newest: "9.7-20261030",
        status: "confirmed",
        checksum: "d".repeat(64),
        listing: ALMA_LISTING("aarch64"),
      },
    ]);
    expect(report.flags).toEqual([
      "debian-12: deprecation due on 2028-09-28 (end of life 2028-06-30)",
      "almalinux 11: a new upstream major, not in the catalog",
    ]);
    expect(report.wrote).toBeUndefined();
  });

  it("writes the new serials and checksums into the pins file, and leaves the rest as it was", async () => {
    const pins = join(root, "pins.json");
    copyFileSync(join(__dirname, "..", "..", "images", "pins.json"), pins);
    const before = JSON.parse(readFileSync(pins, "utf8"));
    const report = await checkUpstream({ ...options(), writePins: pins });
    expect(report.wrote).toBe(pins);
    const after = JSON.parse(readFileSync(pins, "utf8"));
    expect(after["debian-12"]).toEqual({
      x86_64: { serial: "20261201-0001", checksum: NEW_DEBIAN, provenance: recorded(DEBIAN_LISTING) },
      arm64: { serial: "20261201-0001", checksum: NEW_DEBIAN, provenance: recorded(DEBIAN_LISTING) },
    });
    expect(after["almalinux-9"]).toEqual({
      x86_64: { serial: "9.10-20261201", checksum: NEW_ALMA, provenance: recorded(ALMA_LISTING("x86_64")) },
      arm64: { serial: "9.7-20261030", checksum: "d".repeat(64), provenance: recorded(ALMA_LISTING("aarch64")) },
    });
    expect(before["almalinux-9"].arm64.provenance).toBe("unverified");
    expect({ ...after, "debian-12": undefined, "almalinux-9": undefined }).toEqual({
      ...before,
      "debian-12": undefined,
      "almalinux-9": undefined,
    });
  });

  it("reports a listed build whose checksum file is missing as unreadable, and does not pin it", async () => {
    put("cloud.debian.org/images/cloud/bookworm/20261215-0000/README");
    const pins = join(root, "pins-2.json");
    copyFileSync(join(__dirname, "..", "..", "images", "pins.json"), pins);
    const report = await checkUpstream({ ...options(), releases: ["debian-12"], writePins: pins });
    expect(report.rows.map((r) => [r.status, r.newest])).toEqual([
      ["unreadable", "20261215-0000"],
      ["unreadable", "20261215-0000"],
    ]);
    expect(report.rows[0]!.reason).toMatch(/build 20261215-0000 listed but not resolvable: .*404/);
    expect(report.wrote).toBeUndefined();
    rmSync(join(root, "upstream", "cloud.debian.org/images/cloud/bookworm/20261215-0000"), { recursive: true });
  });
});
