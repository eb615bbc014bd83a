/**
 * A fake upstream on loopback for the integration tests: the fixture image served as several releases' pinned
 * builds, checksum files in each real format, detached signatures by the committed test key (which the returned
 * catalog pins, as the local stack does), and deliberately broken entries for the negative tests.
 */
import { writeFileSync } from "node:fs";
import { mirrorAs, mirrorPath } from "../../builder/local/mirror";
import { sign, TEST_KEYS } from "../../builder/local/test-keys";
import { loadCatalog, withOverrides, type Catalog, type OsRelease, type Release, type Signature } from "../../images";

export interface FakeUpstream {
  /** `signedCatalog()` with the unsigned releases' checksums pinned, as check-upstream --write would record them. */
  catalog: Catalog;
}

const SIGNED = ["debian-12", "debian-13", "ubuntu-24.04", "ubuntu-22.04"];

/** The catalog as a stack that pins the test key for the fake upstream's signed releases sees it. */
export function signedCatalog(): Catalog {
  const published = loadCatalog();
  return withOverrides(published, {
    upstreamSignatures: Object.fromEntries(
      SIGNED.map((id) => [id, testSignature(published.byId.get(id) as OsRelease)]),
    ),
  });
}

const KEY_URL = "https://image-factory-test.invalid/keys/fixture-upstream.asc";

/** The signature a stack would declare to verify `release`'s checksum file with the test key. */
export function testSignature(release: OsRelease): Signature {
  return {
    url:
      release.upstream.signature?.kind === "detached"
        ? release.upstream.signature.url
        : `${release.upstream.checksums}.sign`,
    kind: "detached",
    fingerprint: TEST_KEYS.upstream.fingerprint,
    keyUrl: KEY_URL,
    source: KEY_URL,
  };
}

/**
 * - debian-12 (SHA512SUMS), ubuntu-24.04 (SHA256SUMS + .gpg): signed by the test key the catalog pins;
 * - rocky-9 (BSD CHECKSUM), archlinux-rolling (single-line .SHA256): unsigned, as upstream has them, their checksums
 *   pinned in the catalog;
 * - ubuntu-22.04 signed, then altered; debian-13 signed but listing a wrong digest (a tampered upstream).
 */
export async function createFakeUpstream(root: string, fixture: string): Promise<FakeUpstream> {
  const published = loadCatalog();
  const os = (id: string) => published.byId.get(id) as OsRelease;
  const signed = signedCatalog();
  const sos = (id: string) => signed.byId.get(id) as OsRelease;
  for (const id of ["debian-12", "ubuntu-24.04"]) await mirrorAs(root, sos(id), "x86_64", fixture, TEST_KEYS.upstream);

  const pins: Record<string, string> = {};
  for (const id of ["rocky-9", "archlinux-rolling"]) pins[id] = (await mirrorAs(root, os(id), "x86_64", fixture)).hex;

  const altered = await mirrorAs(root, sos("ubuntu-22.04"), "x86_64", fixture, TEST_KEYS.upstream);
  writeFileSync(altered.checksumsPath, `${"f".repeat(64)} *${altered.name}\n`);

  const tampered = await mirrorAs(root, sos("debian-13"), "x86_64", fixture, TEST_KEYS.upstream);
  writeFileSync(tampered.checksumsPath, `${"e".repeat(128)}  ${tampered.name}\n`);
  await sign(TEST_KEYS.upstream, tampered.checksumsPath, mirrorPath(root, tampered.where.signature!), "detached");

  const releases = signed.releases.map((r): Release => {
    const hex = pins[r.id];
    if (r.kind !== "os" || !hex) return r;
    return {
      ...r,
      upstream: { ...r.upstream, pins: { ...r.upstream.pins, x86_64: { ...r.upstream.pins.x86_64!, checksum: hex } } },
    };
  });
  return { catalog: { releases, byId: new Map(releases.map((r) => [r.id, r])) } };
}
