/**
 * The fresh host's key check (test/support/fresh-host.ts): the key ssh-keyscan found is accepted only when its
 * fingerprint is among those cloud-init printed on the console. Real keys from ssh-keygen, never typed-in values.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostKeyError } from "../../builder/release/ssh";
import { run } from "../../builder/system/exec";
import { consoleFingerprints, keyFingerprint, scannedKey, verifiedHostKey } from "../support/fresh-host";

let dir: string;
const keys: Record<string, string> = {};
const fps: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "fresh-host-unit-"));
  for (const [name, type] of [
    ["guest", "ed25519"],
    ["other", "ed25519"],
    ["ecdsa", "ecdsa"],
  ] as const) {
    await run("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", join(dir, name)]);
    keys[name] = readFileSync(join(dir, `${name}.pub`), "utf8")
      .trim()
      .split(" ")
      .slice(0, 2)
      .join(" ");
    fps[name] = await keyFingerprint(keys[name]);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A console as cloud-init's keys_to_console writes it, around the given fingerprints. */
const console = (...lines: string[]) =>
  [
    "[  OK  ] Started ssh.service - OpenBSD Secure Shell server.",
    "<14>Dec  2 09:51:03 cloud-init: #############################################################",
    "<14>Dec  2 09:51:03 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
    ...lines.map((l) => `<14>Dec  2 09:51:03 cloud-init: ${l}`),
    "<14>Dec  2 09:51:03 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----",
    "-----BEGIN SSH HOST KEY KEYS-----",
  ].join("\n");
const scan = (key: string) => `[127.0.0.1]:40022 ${key}\n`;

describe("fresh host key check", () => {
  it("reads fingerprints only between cloud-init's markers", () => {
    const text = `${fps.other} before\n${console(`256 ${fps.guest} root@fresh (ED25519)`)}\n${fps.ecdsa} after`;
    expect([...consoleFingerprints(text)]).toEqual([fps.guest]);
    expect(consoleFingerprints("booting…").size).toBe(0);
  });

  it.each([
    ["the key of the type asked for", (k: Record<string, string>) => scan(k.ecdsa!) + scan(k.guest!), "guest"],
    ["nothing when the type is absent", (k: Record<string, string>) => scan(k.ecdsa!), undefined],
    ["nothing from keyscan's comments", () => "# 127.0.0.1:40022 SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\n", undefined],
  ])("scannedKey: %s", (_, output, want) => {
    expect(scannedKey(output(keys), "ssh-ed25519")).toBe(want ? keys[want] : undefined);
  });

  it("accepts the scanned key whose fingerprint the guest printed", async () => {
    const printed = console(`256 ${fps.ecdsa} root@fresh (ECDSA)`, `256 ${fps.guest} root@fresh (ED25519)`);
    await expect(verifiedHostKey(scan(keys.guest!), printed)).resolves.toBe(keys.guest);
  });

  it.each([
    ["another key answers (a man in the middle)", () => scan(keys.other!), /is none of the 1 the guest printed/],
    ["the console printed nothing yet", () => scan(keys.guest!), /is none of the 0 the guest printed/, "boot…"],
    ["keyscan found no key", () => "", /ssh-keyscan found no ssh-ed25519 key/],
  ])("refuses when %s", async (_, output, why, text?: string) => {
    const printed = text ?? console(`256 ${fps.guest} root@fresh (ED25519)`);
    await expect(verifiedHostKey(output(), printed)).rejects.toThrow(HostKeyError);
    await expect(verifiedHostKey(output(), printed)).rejects.toThrow(why);
  });
});
