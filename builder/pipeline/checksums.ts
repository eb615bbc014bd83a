/**
 * Upstream checksum files in their real formats. Parsing is strict: a malformed line is an error with its line
 * number, because a checksum file we misread is a verification we did not do.
 */
import type { ChecksumFormat } from "../../images/schema";

export type HashAlgo = "sha256" | "sha512";
export interface Checksum {
  algo: HashAlgo;
  hex: string;
}

export class ChecksumFileError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = "ChecksumFileError";
  }
}

const PGP_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----";

/** The signed text of a PGP clear-signed message (dash-escaping undone), or the text itself when not signed. */
export function clearsignedBody(text: string): string {
  if (!text.startsWith(PGP_SIGNED)) return text;
  const lines = text.split(/\r?\n/);
  const start = lines.indexOf("", 1);
  const end = lines.indexOf("-----BEGIN PGP SIGNATURE-----");
  if (start < 0 || end < 0 || end < start) throw new ChecksumFileError("clear-signed message", "malformed PGP armor");
  return lines
    .slice(start + 1, end)
    .map((l) => (l.startsWith("- ") ? l.slice(2) : l))
    .join("\n");
}

const GNU_LINE = /^([0-9a-fA-F]+) ( |\*)(.+)$/;
const BSD_LINE = /^(SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]+)$/;

function algoForLength(len: number): HashAlgo | undefined {
  return len === 64 ? "sha256" : len === 128 ? "sha512" : undefined;
}

/** Every file the checksum file lists, by file name. */
export function parseChecksums(text: string, format: ChecksumFormat, source = "checksum file"): Map<string, Checksum> {
  const out = new Map<string, Checksum>();
  const body = format === "bsd" ? clearsignedBody(text) : text;
  body.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || (format === "bsd" && line.startsWith("#"))) return;
    const at = `line ${i + 1}`;
    let file: string;
    let sum: Checksum;
    if (format === "bsd") {
      const m = BSD_LINE.exec(line);
      if (!m)
        throw new ChecksumFileError(source, `${at}: expected "SHA256 (file) = <hex>", got "${line.slice(0, 80)}"`);
      const algo = m[1]!.toLowerCase() as HashAlgo;
      if (algoForLength(m[3]!.length) !== algo)
        throw new ChecksumFileError(source, `${at}: ${m[1]} digest has ${m[3]!.length} hex digits`);
      file = m[2]!;
      sum = { algo, hex: m[3]!.toLowerCase() };
    } else {
      const m = GNU_LINE.exec(line);
      if (!m)
        throw new ChecksumFileError(
          source,
          `${at}: expected "<hex> *file" or "<hex>  file", got "${line.slice(0, 80)}"`,
        );
      const algo = algoForLength(m[1]!.length);
      const want: HashAlgo | undefined = format === "sha512sums" ? "sha512" : "sha256";
      if (algo !== want)
        throw new ChecksumFileError(source, `${at}: expected a ${want} digest, got ${m[1]!.length} hex digits`);
      file = m[3]!.replace(/^\.\//, "");
      sum = { algo, hex: m[1]!.toLowerCase() };
    }
    const previous = out.get(file);
    if (previous && previous.hex !== sum.hex)
      throw new ChecksumFileError(source, `${at}: ${file} is listed twice with different digests`);
    out.set(file, sum);
  });
  if (out.size === 0) throw new ChecksumFileError(source, "lists no files");
  return out;
}

/** The checksum of one file; an error names the file and what the checksum file does list. */
export function checksumFor(text: string, format: ChecksumFormat, fileName: string, source?: string): Checksum {
  const all = parseChecksums(text, format, source);
  const sum = all.get(fileName);
  if (!sum) {
    const listed = [...all.keys()].slice(0, 5).join(", ");
    throw new ChecksumFileError(
      source ?? "checksum file",
      `does not list ${fileName} (lists ${listed}${all.size > 5 ? ", …" : ""})`,
    );
  }
  return sum;
}
