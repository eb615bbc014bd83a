/**
 * Builds the factory's scaleway-ecosystem package (images/ecosystem/) into a flat APT repository:
 * `<repo>/debian/scaleway-ecosystem_<version>_all.deb`, its `Packages` index and a `Release` file signed
 * (`InRelease`, `Release.gpg`) by a key whose public part is published at `<repo>/scaleway-ecosystem.asc`
 * (ECOSYSTEM_KEY_PATH), where builds fetch it and check it against the stack's ecosystemKeyFingerprint.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../system/exec";
import { ECOSYSTEM_KEY_PATH } from "../pipeline/build";
import { projectRoot } from "../system/paths";
import { TEST_KEYS, withSigner, type TestKey } from "./test-keys";

/** A flat repository's Release file: the index's digest, which the signature covers. */
export function releaseFile(packages: Buffer, date: Date): string {
  const sha256 = createHash("sha256").update(packages).digest("hex");
  return [
    "Origin: scaleway-image-factory",
    "Label: scaleway-ecosystem",
    `Date: ${date.toUTCString()}`,
    "SHA256:",
    ` ${sha256} ${packages.length} Packages`,
    "",
  ].join("\n");
}

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
      else if (name !== "README.md")
        hash
          .update(`${path.slice(root.length)}\0${statSync(path).mode & 0o111 ? "x" : "-"}\0`)
          .update(readFileSync(path));
    }
  };
  walk(root);
  return `${base}+local${hash.digest("hex").slice(0, 10)}`;
}

/** Builds the repository signed by `signingKey` (the committed ecosystem test key by default); returns `<repo>/debian`. */
export async function buildEcosystemRepo(
  repoRoot: string,
  version: string,
  signingKey: TestKey = TEST_KEYS.ecosystem,
): Promise<string> {
  const debian = join(repoRoot, "debian");
  mkdirSync(debian, { recursive: true });
  const stage = mkdtempSync(join(tmpdir(), "ecosystem-"));
  try {
    const pkg = join(stage, "pkg");
    cpSync(join(projectRoot(), "images", "ecosystem"), pkg, {
      recursive: true,
      filter: (src) => !src.endsWith("README.md"),
    });
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
    writeFileSync(
      postinst,
      "#!/bin/sh\nset -e\nsystemctl enable scw-generate-ssh-keys.service scw-fetch-ssh-keys.service >/dev/null 2>&1 || true\n",
    );
    chmodSync(postinst, 0o755);
    await run("dpkg-deb", [
      "--root-owner-group",
      "--build",
      pkg,
      join(debian, `scaleway-ecosystem_${version}_all.deb`),
    ]);
    const { stdout } = await run("dpkg-scanpackages", ["--multiversion", "."], { cwd: debian });
    writeFileSync(join(debian, "Packages"), stdout);
    const release = join(debian, "Release");
    writeFileSync(release, releaseFile(Buffer.from(stdout), new Date()));
    await withSigner(signingKey, async (signer) => {
      await signer.sign(release, join(debian, "InRelease"), "clearsign");
      await signer.sign(release, join(debian, "Release.gpg"), "armored-detached");
      writeFileSync(join(repoRoot, ECOSYSTEM_KEY_PATH), await signer.publicKey());
    });
    return debian;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
