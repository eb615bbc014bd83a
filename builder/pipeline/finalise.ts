/**
 * Finalise: read the package list the customise run left, remove it, trim free space, and convert to a qcow2
 * that Scaleway's snapshot import accepts (qcow2 v3, zlib or no compression — never zstd —, no backing file).
 */
import { readFileSync } from "node:fs";
import { guestfsEnv, type Accelerator } from "../system/accel";
import { SBOM_PATH } from "./customise";
import { run } from "../system/exec";

export interface PackageEntry {
  name: string;
  version: string;
  arch: string;
  /** The source package, where the list names one (rpm's SOURCERPM). */
  source?: string;
  sourceVersion?: string;
  /** Declared licences, where the package database has them (rpm's LICENSE, pacman's Licenses). */
  licenses?: string[];
}

/** `bash-5.1.8-6.el9.src.rpm` → name and version-release; undefined for "(none)" or anything else. */
export function sourceRpm(field: string | undefined): { source: string; sourceVersion: string } | undefined {
  const m = /^(.+)-([^-]+-[^-]+)\.(?:no)?src\.rpm$/.exec(field?.trim() ?? "");
  return m ? { source: m[1]!, sourceVersion: m[2]! } : undefined;
}

/** rpm gives one licence expression; pacman a space-separated list; "(none)"/"None" is no licence. */
function licenceField(field: string | undefined, list: boolean): string[] | undefined {
  const v = field?.trim();
  if (!v || v === "(none)" || v === "None") return undefined;
  return list ? v.split(/\s+/) : [v];
}

/** The build's package list: name, version, arch, and for rpm/pacman the source RPM and licence columns. */
export function parsePackageList(text: string): PackageEntry[] {
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      const [name, version, arch, source, licence] = l.split("\t");
      const src = sourceRpm(source);
      const licenses = licenceField(licence, !src);
      return { name: name!, version: version ?? "", arch: arch ?? "", ...src, ...(licenses ? { licenses } : {}) };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Take the package list out of the image, then sparsify in place: virt-sparsify adds the disk with discard enabled
 * and trims every filesystem, so the conversion that follows skips the freed clusters (a plain guestfish fstrim
 * on a drive added without discard frees nothing).
 */
export async function extractPackagesAndTrim(
  disk: string,
  sbomOut: string,
  accel: Accelerator,
): Promise<PackageEntry[]> {
  const script = [`download ${SBOM_PATH} ${sbomOut}`, `rm ${SBOM_PATH}`].join("\n");
  await run("guestfish", ["--format=qcow2", "-a", disk, "-i"], { env: guestfsEnv(accel), input: script });
  await run("virt-sparsify", ["--in-place", "--format", "qcow2", disk], { env: guestfsEnv(accel) });
  return parsePackageList(readFileSync(sbomOut, "utf8"));
}

export interface QemuImgInfo {
  format: string;
  "virtual-size": number;
  "actual-size": number;
  "backing-filename"?: string;
  "format-specific"?: { type: string; data: { compat?: string; "compression-type"?: string } };
}

export async function qemuImgInfo(path: string): Promise<QemuImgInfo> {
  const { stdout } = await run("qemu-img", ["info", "--output=json", path]);
  return JSON.parse(stdout) as QemuImgInfo;
}

export class ImportFormatError extends Error {}

/** The checks Scaleway's import from Object Storage applies, so a bad artifact fails here and not in the API. */
export function checkImportable(info: QemuImgInfo, path: string): void {
  const problems: string[] = [];
  if (info.format !== "qcow2") problems.push(`format is ${info.format}, not qcow2`);
  if (info["backing-filename"]) problems.push(`has a backing file (${info["backing-filename"]})`);
  const compression = info["format-specific"]?.data["compression-type"];
  if (compression && compression !== "zlib") problems.push(`compression type ${compression} (only zlib is accepted)`);
  if (problems.length) throw new ImportFormatError(`${path}: not importable: ${problems.join("; ")}`);
}

/** Converts to a standalone, zlib-compressed qcow2 v3 and checks it. */
export async function convertForImport(input: string, output: string): Promise<QemuImgInfo> {
  await run("qemu-img", [
    "convert",
    "-f",
    "qcow2",
    "-O",
    "qcow2",
    "-c",
    "-o",
    "compat=1.1,compression_type=zlib",
    input,
    output,
  ]);
  await run("qemu-img", ["check", "-f", "qcow2", output]);
  const info = await qemuImgInfo(output);
  checkImportable(info, output);
  return info;
}
