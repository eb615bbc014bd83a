import { describe, expect, it } from "vitest";
import { checksumFor, ChecksumFileError, clearsignedBody, parseChecksums } from "../../builder/pipeline/checksums";
import type { ChecksumFormat } from "../../images/schema";

const H256 = "a".repeat(64);
const H256B = "b".repeat(64);
const H512 = "c".repeat(128);

describe("checksum files in upstream formats", () => {
  it.each<{ name: string; format: ChecksumFormat; text: string; file: string; algo: string; hex: string }>([
    {
      name: "Ubuntu SHA256SUMS (binary marker)",
      format: "sha256sums",
      text: `${H256B} *noble-server-cloudimg-arm64.img\n${H256} *ubuntu-24.04-server-cloudimg-amd64.img\n`,
      file: "ubuntu-24.04-server-cloudimg-amd64.img",
      algo: "sha256",
      hex: H256,
    },
    {
      name: "Debian SHA512SUMS (two spaces)",
      format: "sha512sums",
      text: `${H512}  debian-12-genericcloud-amd64-20261102-2314.qcow2\n${"d".repeat(128)}  debian-12-genericcloud-amd64-20261102-2314.raw\n`,
      file: "debian-12-genericcloud-amd64-20261102-2314.qcow2",
      algo: "sha512",
      hex: H512,
    },
    {
      name: "RHEL-family CHECKSUM (BSD, comments)",
      format: "bsd",
      text: `# AlmaLinux-9-GenericCloud-9.7-20261030.x86_64.qcow2: 591396864 bytes\nSHA256 (AlmaLinux-9-GenericCloud-9.7-20261030.x86_64.qcow2) = ${H256.toUpperCase()}\n`,
      file: "AlmaLinux-9-GenericCloud-9.7-20261030.x86_64.qcow2",
      algo: "sha256",
      hex: H256,
    },
    {
      name: "BSD, PGP clear-signed",
      format: "bsd",
      text: `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# comment\nSHA256 (Rocky.qcow2) = ${H256}\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n`,
      file: "Rocky.qcow2",
      algo: "sha256",
      hex: H256,
    },
    {
      name: "Arch *.SHA256 (one line)",
      format: "single",
      text: `${H256}  Arch-Linux-x86_64-cloudimg-20261101.456789.qcow2\n`,
      file: "Arch-Linux-x86_64-cloudimg-20261101.456789.qcow2",
      algo: "sha256",
      hex: H256,
    },
  ])("$name", ({ format, text, file, algo, hex }) => {
    expect(checksumFor(text, format, file)).toEqual({ algo, hex });
  });

  it.each<{ name: string; format: ChecksumFormat; text: string; error: RegExp }>([
    {
      name: "a sha512 line in SHA256SUMS",
      format: "sha256sums",
      text: `${H512}  x.img`,
      error: /line 1: expected a sha256 digest, got 128 hex digits/,
    },
    {
      name: "a garbled line",
      format: "sha256sums",
      text: `${H256}  ok.img\nnot a checksum line\n`,
      error: /line 2: expected "<hex> \*file"/,
    },
    {
      name: "a BSD line of the wrong shape",
      format: "bsd",
      text: `SHA256 x.img = ${H256}`,
      error: /line 1: expected "SHA256 \(file\) = <hex>"/,
    },
    {
      name: "a BSD digest of the wrong length",
      format: "bsd",
      text: `SHA512 (x.img) = ${H256}`,
      error: /line 1: SHA512 digest has 64 hex digits/,
    },
    {
      name: "conflicting duplicates",
      format: "sha256sums",
      text: `${H256}  x.img\n${H256B}  x.img`,
      error: /line 2: x\.img is listed twice/,
    },
    { name: "an empty file", format: "sha256sums", text: "\n\n", error: /lists no files/ },
  ])("rejects $name", ({ format, text, error }) => {
    expect(() => parseChecksums(text, format, "SHA256SUMS")).toThrow(ChecksumFileError);
    expect(() => parseChecksums(text, format, "SHA256SUMS")).toThrow(error);
  });

  it("names the file it looked for and what is listed", () => {
    expect(() => checksumFor(`${H256}  other.img\n`, "sha256sums", "wanted.img", "https://u/SHA256SUMS")).toThrow(
      "https://u/SHA256SUMS: does not list wanted.img (lists other.img)",
    );
  });

  it.each([
    { why: "shares only a suffix", listed: "debian-12-genericcloud-amd64.qcow2", wanted: "genericcloud-amd64.qcow2" },
    { why: "sits in a subdirectory", listed: "daily/disk.img", wanted: "disk.img" },
    { why: "differs in case", listed: "Disk.img", wanted: "disk.img" },
  ])("never takes a listed name that $why for the file wanted", ({ listed, wanted }) => {
    expect(() => checksumFor(`${H256}  ${listed}\n`, "sha256sums", wanted, "SHA256SUMS")).toThrow(
      `SHA256SUMS: does not list ${wanted} (lists ${listed})`,
    );
  });

  it("undoes dash-escaping in clear-signed bodies", () => {
    expect(
      clearsignedBody(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n- -- x\nline\n-----BEGIN PGP SIGNATURE-----\n",
      ),
    ).toBe("-- x\nline");
  });
});
