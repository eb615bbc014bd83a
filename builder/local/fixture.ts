/**
 * The fixture upstream image: a small bootable Debian 12 built by test/fixtures/build-debian-image.sh, cached per
 * user under a key derived from the script, so a changed script rebuilds it and an unchanged one never does.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accelerator, guestfsEnv } from "../system/accel";
import { run } from "../system/exec";
import { digestFile } from "../pipeline/fetch";
import { cacheDir, projectRoot } from "../system/paths";

export async function ensureFixture(): Promise<string> {
  const variant = "debian-12";
  const script = join(projectRoot(), "test", "fixtures", "build-debian-image.sh");
  const key = createHash("sha256").update(readFileSync(script)).digest("hex").slice(0, 16);
  const dir = cacheDir("fixtures");
  const file = join(dir, `${variant}-${key}.qcow2`);
  // The fixture is shared by every mirror and test; a copy that no longer matches its recorded digest is rebuilt.
  if (existsSync(file) && existsSync(`${file}.sha256`)) {
    if ((await digestFile(file, "sha256")) === readFileSync(`${file}.sha256`, "utf8").trim()) return file;
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
    writeFileSync(`${file}.sha256`, `${await digestFile(tmp, "sha256")}\n`);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
  return file;
}
