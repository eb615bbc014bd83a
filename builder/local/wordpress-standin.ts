/**
 * The local stack's stand-in for wordpress.org's tarball, which these machines cannot reach: real WordPress code
 * from Debian's `wordpress` package, laid out like upstream's tarball (`wordpress/…`) and packed reproducibly, so
 * its sha256 (the local stack's source override) only changes when Debian's package does. Debian's copy links
 * some bundled libraries to other packages and carries its own multi-site wp-config.php: both are left out, as
 * the upstream tarball has neither.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { run } from "../system/exec";
import { digestFile } from "../pipeline/fetch";
import { cacheDir } from "../system/paths";

export interface StandIn {
  file: string;
  sha256: string;
  /** Debian's package version it was made from. */
  debianVersion: string;
}

async function candidateVersion(): Promise<string> {
  // Debian's container images turn apt's binary cache off, so each query re-reads every package list (seconds);
  // a cache of our own, which apt checks against the lists itself, answers in tens of milliseconds.
  mkdirSync(cacheDir("apt"), { recursive: true });
  const { stdout } = await run("apt-cache", [
    "-o",
    `Dir::Cache::pkgcache=${cacheDir("apt", "pkgcache.bin")}`,
    "policy",
    "wordpress",
  ]);
  const version = /Candidate: (\S+)/.exec(stdout)?.[1];
  if (!version || version === "(none)")
    throw new Error(
      "Debian's wordpress package is not known to apt here (the local stack's WordPress stand-in comes from it): run apt-get update",
    );
  return version;
}

export async function wordpressStandIn(): Promise<StandIn> {
  const debianVersion = await candidateVersion();
  const file = cacheDir("stand-ins", `wordpress-${debianVersion.replace(/[^A-Za-z0-9.+~-]/g, "_")}.tar.gz`);
  if (existsSync(file) && existsSync(`${file}.sha256`)) {
    const sha256 = readFileSync(`${file}.sha256`, "utf8").trim();
    if ((await digestFile(file, "sha256")) === sha256) return { file, sha256, debianVersion };
  }
  // Work next to the cache, so the final rename never crosses file systems.
  mkdirSync(cacheDir("stand-ins"), { recursive: true });
  const work = mkdtempSync(cacheDir("stand-ins", ".work-"));
  try {
    await run("apt-get", ["download", `wordpress=${debianVersion}`], { cwd: work });
    const deb = readdirSync(work).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error("apt-get download wordpress produced no package");
    await run("dpkg-deb", ["-x", join(work, deb), join(work, "root")]);
    const tree = join(work, "tree");
    mkdirSync(tree);
    renameSync(join(work, "root", "usr", "share", "wordpress"), join(tree, "wordpress"));
    await run("find", [join(tree, "wordpress"), "-type", "l", "-delete"]);
    rmSync(join(tree, "wordpress", "wp-config.php"), { force: true });
    const tar = join(work, "wordpress.tar");
    await run("tar", [
      "--sort=name",
      "--mtime=@0",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "-C",
      tree,
      "-cf",
      tar,
      "wordpress",
    ]);
    await run("gzip", ["-9n", tar]);
    const sha256 = await digestFile(`${tar}.gz`, "sha256");
    renameSync(`${tar}.gz`, file);
    writeFileSync(`${file}.sha256`, `${sha256}\n`);
    return { file, sha256, debianVersion };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
