/**
 * Builds the factory's scaleway-ecosystem package (images/ecosystem/) into a flat APT repository:
 * `<repo>/debian/scaleway-ecosystem_<version>_all.deb` and its `Packages` index.
 */
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../exec";
import { projectRoot } from "../paths";

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
        "Depends: curl, openssh-client, python3",
        "Section: admin",
        "Priority: optional",
        "Description: Scaleway Instance helpers (metadata, user data, SSH host key publication)",
        "",
      ].join("\n"),
    );
    const postinst = join(pkg, "DEBIAN", "postinst");
    writeFileSync(postinst, "#!/bin/sh\nset -e\nsystemctl enable scw-generate-ssh-keys.service >/dev/null 2>&1 || true\n");
    chmodSync(postinst, 0o755);
    await run("dpkg-deb", ["--root-owner-group", "--build", pkg, join(debian, `scaleway-ecosystem_${version}_all.deb`)]);
    const { stdout } = await run("dpkg-scanpackages", ["--multiversion", "."], { cwd: debian });
    writeFileSync(join(debian, "Packages"), stdout);
    return debian;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
