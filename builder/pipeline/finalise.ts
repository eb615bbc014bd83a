/**
 * Finalise: read the package list the customise run left, remove it, trim free space, and convert to a qcow2
 * that Scaleway's snapshot import accepts (qcow2 v3, zlib or no compression — never zstd —, no backing file).
 */
import { readFileSync } from "node:fs";
import { applianceSize, type Accelerator } from "../system/accel";
import { SBOM_PATH } from "./customise";
import { GuestfishSession, mountable, parseFilesystems } from "./guestfish-session";
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
 * Take the package list out of the image and trim every filesystem, in one appliance. The disk is added with
 * discard on, as virt-sparsify --in-place adds it: a trim on a drive without discard frees nothing in the qcow2.
 * Each filesystem is mounted on its own mountpoint (no inspection of the guest's fstab is needed for either job);
 * exactly one must hold the package list. One that does not mount is not trimmed, and the package list still has
 * to be found.
 */
export async function extractPackagesAndTrim(
  disk: string,
  sbomOut: string,
  accel: Accelerator,
): Promise<PackageEntry[]> {
  const g = await GuestfishSession.start(accel);
  try {
    await g.do("set-smp", String(applianceSize().smp));
    await g.do("add-drive", disk, "format:qcow2", "discard:enable");
    await g.do("run");
    const filesystems = mountable(parseFilesystems(await g.do("list-filesystems")));
    const mounted: string[] = [];
    for (const [i, fs] of filesystems.entries()) {
      const at = `/fs${i}`;
      await g.do("mkmountpoint", at);
      if (
        await g.do("mount", fs.device, at).then(
          () => true,
          () => false,
        )
      )
        mounted.push(at);
    }
    const holders: string[] = [];
    for (const at of mounted) if ((await g.do("is-file", `${at}${SBOM_PATH}`)).trim() === "true") holders.push(at);
    if (holders.length !== 1)
      throw new Error(
        `${disk}: the package list ${SBOM_PATH} is on ${holders.length} of the image's ${mounted.length} mounted filesystems, not exactly one`,
      );
    await g.do("download", `${holders[0]}${SBOM_PATH}`, sbomOut);
    await g.do("rm", `${holders[0]}${SBOM_PATH}`);
    // The package list's filesystem (the root) must trim; another (an old kernel's vfat) may refuse: a bigger
    // artifact, not a wrong one.
    for (const at of mounted)
      await g.do("fstrim", at).catch((err: unknown) => {
        if (at === holders[0]) throw err;
      });
    await g.do("umount-all");
    await g.do("shutdown");
  } finally {
    await g.close();
  }
  return parsePackageList(readFileSync(sbomOut, "utf8"));
}

export interface QemuImgInfo {
  format: string;
  "virtual-size": number;
  "actual-size": number;
  "backing-filename"?: string;
  "format-specific"?: { type: string; data: { compat?: string; "compression-type"?: string; "data-file"?: string } };
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

/**
 * Converts to a standalone, zlib-compressed qcow2 v3 and checks it. `qemu-img convert` flattens a backing chain
 * into its output, so an input that names a backing file or a data file is refused first (fetch's gate should
 * have refused its upstream already: this is the second wall, before any byte is copied).
 */
export async function convertForImport(input: string, output: string): Promise<QemuImgInfo> {
  const { stdout } = await run("qemu-img", ["info", "-f", "qcow2", "--output=json", input]);
  const before = JSON.parse(stdout) as QemuImgInfo;
  const outside = before["backing-filename"] ?? before["format-specific"]?.data["data-file"];
  if (outside !== undefined)
    throw new ImportFormatError(`${input}: not converted: it names ${JSON.stringify(outside)} outside itself`);
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
