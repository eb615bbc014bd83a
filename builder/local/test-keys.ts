/**
 * The committed throwaway test keys (builder/local/test-keys/): the local stack signs its fixture upstream and its
 * scaleway-ecosystem repository with them, so that it takes the signature path production takes. Anyone can sign
 * with them; only the local stack and the tests pin their fingerprints.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../system/exec";
import { projectRoot } from "../system/paths";

export interface TestKey {
  /** Armoured secret key, committed. */
  file: string;
  fingerprint: string;
}

const key = (name: string, fingerprint: string): TestKey => ({
  file: join(projectRoot(), "builder", "local", "test-keys", `${name}.TEST-ONLY.secret.asc`),
  fingerprint,
});

export const TEST_KEYS = {
  upstream: key("upstream", "56D26DDC1084F765F849EB832779D1AE892F5665"),
  ecosystem: key("ecosystem", "5F359FD65C4EFC1B89E8E639CF7AF890E68E0677"),
} as const;

/** The THROWAWAY release signing pair (Ed25519 PEM) the local stack signs its provenance with. */
export const TEST_RELEASE_KEY = {
  secret: join(projectRoot(), "builder", "local", "test-keys", "release.TEST-ONLY.secret.pem"),
  public: join(projectRoot(), "builder", "local", "test-keys", "release.TEST-ONLY.pub.pem"),
} as const;

/** Runs `use` with a temporary gpg home holding `key`, removed afterwards. */
export async function withKey<T>(
  key: TestKey,
  use: (gpg: (args: string[]) => Promise<string>) => Promise<T>,
): Promise<T> {
  const home = mkdtempSync(join(tmpdir(), "factory-testkey-"));
  const gpg = async (args: string[]) =>
    (
      await run("gpg", [
        "--batch",
        "--yes",
        "--homedir",
        home,
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        ...args,
      ])
    ).stdout;
  try {
    await gpg(["--import", key.file]);
    return await use(gpg);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

export type SignMode = "detached" | "armored-detached" | "clearsign";

/** What one gpg session with a test key imported does: sign files, export the public part. */
export interface Signer {
  sign(file: string, out: string, how: SignMode): Promise<void>;
  publicKey(): Promise<string>;
}

/**
 * Runs `use` with one gpg session for `key`: a repository signed twice and its key exported import the key and
 * start gpg's agent once, not three times.
 */
export function withSigner<T>(key: TestKey, use: (signer: Signer) => Promise<T>): Promise<T> {
  return withKey(key, (gpg) =>
    use({
      async sign(file, out, how) {
        const mode =
          how === "clearsign"
            ? ["--clearsign"]
            : how === "armored-detached"
              ? ["--armor", "--detach-sign"]
              : ["--detach-sign"];
        await gpg(["--local-user", key.fingerprint, ...mode, "--output", out, file]);
      },
      publicKey: () => gpg(["--armor", "--export", key.fingerprint]),
    }),
  );
}

/** The armoured public part of a test key. */
export function publicKey(key: TestKey): Promise<string> {
  return withSigner(key, (s) => s.publicKey());
}

/** Signs `file` with a test key: a binary detached signature (`SHA256SUMS.gpg` style), armoured, or clear-signed. */
export function sign(key: TestKey, file: string, out: string, how: SignMode): Promise<void> {
  return withSigner(key, (s) => s.sign(file, out, how));
}
