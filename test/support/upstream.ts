/**
 * A fake upstream on loopback for the integration tests: the fixture image served as several releases' pinned
 * builds, checksum files in each real format, an Ubuntu-style detached signature by a test key generated here,
 * and deliberately broken entries for the negative tests.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../builder/exec";
import { mirrorAs, mirrorPath } from "../../builder/local/mirror";
import { loadCatalog, type OsRelease } from "../../images";

export interface FakeUpstream {
  /** Directory with `<keyring>.asc` for FACTORY_KEYS_DIR. */
  keysDir: string;
}

/** A throwaway signing key, exported where the builder looks for the pinned `ubuntu-cloudimage` key. */
async function testKey(): Promise<{ home: string; keysDir: string }> {
  const home = mkdtempSync(join(tmpdir(), "factory-testkey-"));
  await run("gpg", ["--batch", "--homedir", home, "--passphrase", "", "--quick-gen-key", "Factory Test Upstream <upstream@test.invalid>", "ed25519", "sign", "never"]);
  const keysDir = join(home, "keys");
  mkdirSync(keysDir);
  await run("gpg", ["--batch", "--homedir", home, "--armor", "--output", join(keysDir, "ubuntu-cloudimage.asc"), "--export", "upstream@test.invalid"]);
  return { home, keysDir };
}

/**
 * - debian-12 (SHA512SUMS), rocky-9 (BSD CHECKSUM), archlinux-rolling (single-line .SHA256): as upstream has them;
 * - ubuntu-24.04 (SHA256SUMS + SHA256SUMS.gpg by the test key); ubuntu-22.04 the same, altered after signing;
 * - debian-13, whose SHA512SUMS lists a wrong digest (a tampered mirror).
 */
export async function createFakeUpstream(root: string, fixture: string): Promise<FakeUpstream> {
  const catalog = loadCatalog();
  const os = (id: string) => catalog.byId.get(id) as OsRelease;
  for (const id of ["debian-12", "rocky-9", "archlinux-rolling"]) await mirrorAs(root, os(id), "x86_64", fixture);

  const { home, keysDir } = await testKey();
  for (const id of ["ubuntu-24.04", "ubuntu-22.04"]) {
    const { checksumsPath, where, name } = await mirrorAs(root, os(id), "x86_64", fixture);
    await run("gpg", ["--batch", "--yes", "--homedir", home, "--detach-sign", "--output", mirrorPath(root, where.signature!), checksumsPath]);
    if (id === "ubuntu-22.04") writeFileSync(checksumsPath, `${"f".repeat(64)} *${name}\n`);
  }

  const tampered = await mirrorAs(root, os("debian-13"), "x86_64", fixture);
  writeFileSync(tampered.checksumsPath, `${"e".repeat(128)}  ${tampered.name}\n`);
  return { keysDir };
}
