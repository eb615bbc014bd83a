/**
 * Verifies upstream checksum files the way a careful user does: the signing key is downloaded from where upstream
 * publishes it (through the stack's mirror when one is set), accepted only if its primary key fingerprint is the
 * pinned one, cached per user by fingerprint, and the signature must be a VALIDSIG whose primary key fingerprint is
 * the pin. Fails closed: an unpinned fingerprint, an unreachable key, another key, a bad or missing signature is an
 * error naming the fingerprint and where to get the key, never a warning.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Signature } from "../../images/schema";
import { run, ToolError } from "../system/exec";
import { fetchBytes } from "./fetch";
import { cacheDir } from "../system/paths";
import { throughMirror } from "../core/upstream-url";

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

/** A key pinned by its primary fingerprint and the URL its owner publishes it at. */
export interface PinnedKey {
  fingerprint: string;
  keyUrl: string;
}

/** The pinned key of a signature spec; throws when the catalog (or the stack) has not pinned one. */
export function pinnedKey(spec: Signature, what: string): PinnedKey {
  if (spec.fingerprint === "unverified" || !spec.keyUrl)
    throw new SignatureError(
      `${what}: upstream signs its checksum file, but the signing key's fingerprint is unverified in the catalog: pin signature.fingerprint (40 hex) and signature.keyUrl from upstream's published key (see ${spec.source})`,
    );
  return { fingerprint: spec.fingerprint, keyUrl: spec.keyUrl };
}

/** Primary key fingerprints of an OpenPGP key file, as gpg lists them (uppercase hex). */
async function primaryFingerprints(home: string, keyFile: string): Promise<string[]> {
  const { stdout } = await run("gpg", [
    "--batch",
    "--homedir",
    home,
    "--with-colons",
    "--import-options",
    "show-only",
    "--import",
    keyFile,
  ]);
  const lines = stdout.split("\n");
  const fprs: string[] = [];
  lines.forEach((line, i) => {
    // A `pub` record's fingerprint is the next `fpr` line; subkeys (`sub`) have their own, which are not pins.
    if (line.startsWith("pub:") && lines[i + 1]?.startsWith("fpr:"))
      fprs.push(lines[i + 1]!.split(":")[9]!.toUpperCase());
  });
  return fprs;
}

/**
 * The pinned key as an armoured file in the per-user cache (`keys/<fingerprint>.asc`), holding that key only:
 * downloaded from `keyUrl` on first use and refused unless it contains the pinned primary key. A cached copy is
 * checked again before each use.
 */
export async function ensurePinnedKey(key: PinnedKey, mirror: string | undefined, what: string): Promise<string> {
  const cached = cacheDir("keys", `${key.fingerprint}.asc`);
  const home = mkdtempSync(join(tmpdir(), "factory-gpg-"));
  try {
    if (existsSync(cached) && (await primaryFingerprints(home, cached)).join() === key.fingerprint) return cached;
    const url = throughMirror(key.keyUrl, mirror);
    let bytes: Buffer;
    try {
      bytes = await fetchBytes(url);
    } catch (err) {
      throw new SignatureError(
        `${what}: cannot get the pinned key ${key.fingerprint} from ${url} (${(err as Error).message}); it is published at ${key.keyUrl}`,
      );
    }
    const downloaded = join(home, "downloaded.asc");
    writeFileSync(downloaded, bytes);
    let found: string[];
    try {
      found = await primaryFingerprints(home, downloaded);
    } catch {
      throw new SignatureError(
        `${what}: ${url} is not an OpenPGP key (expected the pinned key ${key.fingerprint}, published at ${key.keyUrl})`,
      );
    }
    if (!found.includes(key.fingerprint))
      throw new SignatureError(
        `${what}: the key at ${url} has fingerprint ${found.join(", ") || "none"}, not the pinned ${key.fingerprint}; refusing it (get the key from ${key.keyUrl} and check its fingerprint)`,
      );
    // Keep only the pinned key: a keyring file with several keys must not let another of them sign for it.
    await run("gpg", ["--batch", "--homedir", home, "--import", downloaded]);
    const { stdout } = await run("gpg", ["--batch", "--homedir", home, "--armor", "--export", key.fingerprint]);
    mkdirSync(dirname(cached), { recursive: true });
    writeFileSync(`${cached}.tmp`, stdout);
    renameSync(`${cached}.tmp`, cached);
    return cached;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * Checks `data` signed by the pinned key (`signature`: a detached signature; none: `data` is clear-signed).
 * Returns the text the signature covers: for a clear-signed file only the signed part, so unsigned lines around it
 * are never trusted.
 */
export async function verifyWithKey(
  key: PinnedKey,
  keyFile: string,
  data: Buffer,
  signature: Buffer | undefined,
  what: string,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "factory-gpg-"));
  try {
    const keyring = join(dir, "keyring.gpg");
    await run("gpg", ["--batch", "--yes", "--homedir", dir, "--output", keyring, "--dearmor", keyFile]);
    const dataFile = join(dir, "data");
    writeFileSync(dataFile, data);
    const args = ["--homedir", dir, "--status-fd", "1", "--keyring", keyring];
    let status: string;
    let text: string;
    try {
      if (signature) {
        const sigFile = join(dir, "data.sig");
        writeFileSync(sigFile, signature);
        status = (await run("gpgv", [...args, sigFile, dataFile])).stdout;
        text = data.toString("utf8");
      } else {
        const signed = join(dir, "signed");
        status = (await run("gpgv", [...args, "--output", signed, dataFile])).stdout;
        text = readFileSync(signed, "utf8");
      }
    } catch (err) {
      if (err instanceof ToolError) {
        const out = `${err.stdout ?? ""}\n${err.stderr}`;
        const reason = /\bBADSIG\b/.test(out)
          ? "BAD signature (the file was altered)"
          : /\bNO_PUBKEY\b|\bERRSIG\b/.test(out)
            ? `not signed by the pinned key ${key.fingerprint}`
            : /no signature found|\bNODATA\b/.test(out)
              ? "no signature found"
              : err.message.split("\n").slice(-3).join(" ");
        throw new SignatureError(`${what}: signature check failed: ${reason}`);
      }
      throw err;
    }
    // VALIDSIG <signing (sub)key fpr> … <primary key fpr>: the primary key must be the pin, whatever subkey signed.
    const valid = status
      .split("\n")
      .filter((l) => l.startsWith("[GNUPG:] VALIDSIG "))
      .map((l) => l.trim().split(" ").at(-1)!.toUpperCase());
    if (valid.length === 0 || valid.some((fpr) => fpr !== key.fingerprint))
      throw new SignatureError(
        `${what}: signature check failed: not signed by the pinned key ${key.fingerprint} (valid signatures by: ${valid.join(", ") || "none"})`,
      );
    return text;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The whole check for an upstream checksum file: pinned key fetched (or cached) and verified, then the signature. */
export async function verifySignature(
  spec: Signature,
  data: Buffer,
  signature: Buffer | undefined,
  what: string,
  mirror?: string,
): Promise<string> {
  const key = pinnedKey(spec, what);
  if (spec.kind === "detached" && !signature) throw new SignatureError(`${what}: detached signature missing`);
  const keyFile = await ensurePinnedKey(key, mirror, what);
  return verifyWithKey(key, keyFile, data, spec.kind === "detached" ? signature : undefined, what);
}
