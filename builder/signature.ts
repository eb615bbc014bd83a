/**
 * Verifies upstream checksum files against pinned public keys with gpgv. Fails closed: a missing key, a missing
 * or bad signature, or a signature by any other key is an error, never a warning.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Signature } from "../images/schema";
import { run, ToolError } from "./exec";
import { keysDir } from "./paths";

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

/**
 * Checks `data` (the checksum file as downloaded) and, for detached signatures, `signature`. Returns the text the
 * signature covers: for a clear-signed file, only the signed part, so unsigned lines around it are never trusted.
 */
export async function verifySignature(
  spec: Signature,
  data: Buffer,
  signature: Buffer | undefined,
  what: string,
): Promise<string> {
  const keyFile = join(keysDir(), `${spec.keyring}.asc`);
  if (!existsSync(keyFile))
    throw new SignatureError(`${what}: signed by upstream, but the pinned key ${spec.keyring}.asc is not in ${keysDir()}; add it to verify`);
  const dir = mkdtempSync(join(tmpdir(), "factory-gpg-"));
  try {
    const keyring = join(dir, "keyring.gpg");
    await run("gpg", ["--batch", "--yes", "--homedir", dir, "--output", keyring, "--dearmor", keyFile]);
    const dataFile = join(dir, "data");
    writeFileSync(dataFile, data);
    const args = ["--homedir", dir, "--status-fd", "2", "--keyring", keyring];
    try {
      if (spec.kind === "detached") {
        if (!signature) throw new SignatureError(`${what}: detached signature missing`);
        const sigFile = join(dir, "data.sig");
        writeFileSync(sigFile, signature);
        await run("gpgv", [...args, sigFile, dataFile]);
        return data.toString("utf8");
      }
      const signed = join(dir, "signed");
      await run("gpgv", [...args, "--output", signed, dataFile]);
      return readFileSync(signed, "utf8");
    } catch (err) {
      if (err instanceof ToolError) {
        const status = err.stderr;
        const reason = /\bBADSIG\b/.test(status)
          ? "BAD signature (the file was altered)"
          : /\bNO_PUBKEY\b|\bERRSIG\b/.test(status)
            ? `not signed by the pinned key ${spec.keyring}`
            : /no signature found|\bNODATA\b/.test(status)
              ? "no signature found"
              : err.message.split("\n").slice(-3).join(" ");
        throw new SignatureError(`${what}: signature check failed: ${reason}`);
      }
      throw err;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
