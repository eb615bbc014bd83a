/**
 * Builds the factory's scaleway-ecosystem package (images/ecosystem/) into a flat APT repository:
 * `<repo>/debian/scaleway-ecosystem_<version>_all.deb` and its `Packages` index.
 */
import { createHash } from "node:crypto";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../exec";
import { projectRoot } from "../paths";

/**
 * The version the local stack builds the package as: the stack's version plus a digest of the package's files, so
 * an edited helper is a new package version, hence a new content hash and a rebuild, like a real release would be.
 */
export function localEcosystemVersion(base: string): string {
  const root = join(projectRoot(), "images", "ecosystem");
  const hash = createHash("sha256");
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name !== "README.md") hash.update(`${path.slice(root.length)}\0${statSync(path).mode & 0o111 ? "x" : "-"}\0`).update(readFileSync(path));
    }
  };
  walk(root);
  return `${base}+local${hash.digest("hex").slice(0, 10)}`;
}

export async function buildEcosystemRepo(repoRoot: string, version: string): Promise<string> {
  const debian = join(repoRoot, "debian");
  mkdirSync(debian, { recursive: true });
  const stage = mkdtempSync(join(tmpdir(), "ecosystem-"));
  try {
    const pkg = join(stage, "pkg");
    cpSync(join(projectRoot(), "images", "ecosystem"), pkg, { recursive: true, filter: (src) => !src.endsWith("README.md") });
    mkdirSync(join(pkg, "DEBIAN"));
    writeFileSync(
      join(pkg, "DEBIAN", "control"),
      [
        "Package: scaleway-ecosystem",
        `Version: ${version}`,
        "Architecture: all",
        "Maintainer: Scaleway image factory <images@localhost>",
        "Depends: curl, openssh-client, python3, iproute2",
        "Section: admin",
        "Priority: optional",
        "Description: Scaleway Instance helpers (metadata, user data, SSH keys, host key publication, Private Network NICs)",
        "",
      ].join("\n"),
    );
    const postinst = join(pkg, "DEBIAN", "postinst");
    writeFileSync(postinst, "#!/bin/sh\nset -e\nsystemctl enable scw-generate-ssh-keys.service scw-fetch-ssh-keys.service >/dev/null 2>&1 || true\n");
    chmodSync(postinst, 0o755);
    await run("dpkg-deb", ["--root-owner-group", "--build", pkg, join(debian, `scaleway-ecosystem_${version}_all.deb`)]);
    const { stdout } = await run("dpkg-scanpackages", ["--multiversion", "."], { cwd: debian });
    writeFileSync(join(debian, "Packages"), stdout);
    return debian;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
