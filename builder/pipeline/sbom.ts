/**
 * The SBOM of one artifact, in CycloneDX 1.6 JSON (why not SPDX 2.3: docs/supply-chain.md). Debian-family images
 * are read from their own package database: /var/lib/dpkg/status (name, version, architecture, source package)
 * and the machine-readable (DEP-5) /usr/share/doc/<package>/copyright files for licences, in one read-only
 * libguestfs session on the finished artifact. Other families use the package list the build read inside the
 * guest: rpm's database gives the source RPM and the licence, pacman's the licences (it names no source package).
 */
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { PackageURL } from "packageurl-js";
import { guestfsEnv, type Accelerator } from "../system/accel";
import { run } from "../system/exec";

export interface InstalledPackage {
  name: string;
  version: string;
  arch: string;
  /** The source package (Debian); the binary's own name when the database names none. */
  source?: string;
  sourceVersion?: string;
  /** Licence short names from a machine-readable copyright file; undefined when there is none to read. */
  licenses?: string[];
}

/** The paragraphs of a deb822 file (dpkg status, DEP-5 copyright) as field maps; continuation lines kept. */
export function deb822(text: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const block of text.split(/\n[ \t]*\n/)) {
    const fields: Record<string, string> = {};
    let last: string | undefined;
    for (const line of block.split("\n")) {
      if (!line.trim() || line.startsWith("#")) continue;
      if (/^[ \t]/.test(line)) {
        if (last) fields[last] += `\n${line.trim()}`;
        continue;
      }
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      last = line.slice(0, colon).trim().toLowerCase();
      fields[last] = line.slice(colon + 1).trim();
    }
    if (Object.keys(fields).length) out.push(fields);
  }
  return out;
}

/** Installed packages in a dpkg status file: every paragraph whose Status says `installed`. */
export function parseDpkgStatus(text: string): InstalledPackage[] {
  return deb822(text)
    .filter((p) => p.package && p.status?.split(/\s+/)[2] === "installed")
    .map((p) => {
      // `Source: name (version)` when the source version differs from the binary's.
      const m = /^(\S+)(?:\s+\((\S+)\))?$/.exec(p.source ?? "");
      return {
        name: p.package!,
        version: p.version ?? "",
        arch: p.architecture ?? "",
        source: m?.[1] ?? p.package!,
        sourceVersion: m?.[2] ?? p.version ?? "",
      };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch < b.arch ? -1 : 1));
}

/**
 * The licence short names a DEP-5 copyright file declares (each License field's first line, distinct, in order);
 * undefined for a file that is not machine-readable (no `Format:` naming copyright-format 1.0).
 */
export function dep5Licenses(text: string): string[] | undefined {
  const paragraphs = deb822(text);
  if (!/copyright-format\/1\.0/.test(paragraphs[0]?.format ?? "")) return undefined;
  const names = paragraphs.map((p) => p.license?.split("\n")[0]!.trim()).filter((l): l is string => !!l);
  return [...new Set(names)];
}

const DPKG_STATUS = "/var/lib/dpkg/status";

/** A file under `root` read as the guest would, never following a link out of the extracted tree. */
function readInside(root: string, path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  const real = realpathSync(path);
  if (!real.startsWith(realpathSync(root) + sep) || !lstatSync(real).isFile()) return undefined;
  return readFileSync(real, "utf8");
}

/**
 * One read-only libguestfs session on `disk`: the dpkg status file and the copyright files, the latter through a
 * tar of /usr/share/doc from which only `<package>/copyright` entries are extracted on the host.
 */
export async function readDebianPackages(
  disk: string,
  accel: Accelerator,
): Promise<{ packages: InstalledPackage[]; status: string }> {
  const work = mkdtempSync(join(tmpdir(), "factory-sbom-"));
  try {
    const script = [
      `download ${DPKG_STATUS} ${join(work, "status")}`,
      `tar-out /usr/share/doc ${join(work, "doc.tar")}`,
    ].join("\n");
    await run("guestfish", ["--ro", "--format=qcow2", "-a", disk, "-i"], { env: guestfsEnv(accel), input: script });
    const docs = join(work, "doc");
    mkdirSync(docs);
    await run("tar", [
      "-xf",
      join(work, "doc.tar"),
      "-C",
      docs,
      "--wildcards",
      "*/copyright",
      "--no-same-owner",
      "--no-same-permissions",
    ]);
    const status = readFileSync(join(work, "status"), "utf8");
    const packages = parseDpkgStatus(status).map((p) => {
      const text = readInside(docs, join(docs, p.name, "copyright"));
      const licenses = text === undefined ? undefined : dep5Licenses(text);
      return licenses?.length ? { ...p, licenses } : p;
    });
    return { packages, status };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** What the SBOM says about the image itself. */
export interface SbomSubject {
  release: string;
  label: string;
  arch: string;
  contentHash: string;
  /** The artifact's sha256 (hex). */
  sha256: string;
  /** SCS os_distro and os_version: the purl namespace and `distro` qualifier. */
  osDistro: string;
  osVersion: string;
  family: "debian" | "rhel" | "arch";
  /** When the build finished (ISO 8601): the BOM's timestamp, so the same artifact always gets the same SBOM. */
  timestamp: string;
  builderStamp: string;
}

export function purl(s: Pick<SbomSubject, "family" | "osDistro" | "osVersion">, p: InstalledPackage): string {
  const distro = `${s.osDistro}-${s.osVersion}`;
  switch (s.family) {
    case "debian":
      return new PackageURL("deb", s.osDistro, p.name, p.version, { arch: p.arch, distro }).toString();
    case "rhel": {
      // rpm -qa gave EPOCHNUM:VERSION-RELEASE; purl puts a non-zero epoch in a qualifier.
      const [, epoch, evr] = /^(?:(\d+):)?(.*)$/.exec(p.version)!;
      return new PackageURL("rpm", s.osDistro, p.name, evr, {
        arch: p.arch,
        distro,
        ...(epoch && epoch !== "0" ? { epoch } : {}),
      }).toString();
    }
    case "arch":
      return new PackageURL("alpm", s.osDistro, p.name, p.version, { arch: p.arch, distro }).toString();
  }
}

/** A name-based UUID (version 5 layout) from the artifact: the SBOM of one artifact always has one serial. */
function serialNumber(s: SbomSubject): string {
  const h = createHash("sha1").update(`image-factory sbom ${s.contentHash} ${s.sha256}`).digest("hex");
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const SBOM_PROPERTY = "image-factory";

export function cycloneDx(s: SbomSubject, packages: InstalledPackage[]): Record<string, unknown> {
  const withoutLicence = packages.filter((p) => !p.licenses?.length).length;
  return {
    $schema: "http://cyclonedx.org/schema/bom-1.6.schema.json",
    bomFormat: "CycloneDX",
    specVersion: "1.6",
    serialNumber: serialNumber(s),
    version: 1,
    metadata: {
      timestamp: s.timestamp,
      tools: { components: [{ type: "application", name: "image-factory", version: s.builderStamp }] },
      component: {
        type: "operating-system",
        "bom-ref": `image:${s.release}/${s.arch}/${s.contentHash}`,
        name: s.release,
        version: s.contentHash,
        description: s.label,
        hashes: [{ alg: "SHA-256", content: s.sha256 }],
        properties: [
          { name: `${SBOM_PROPERTY}:arch`, value: s.arch },
          { name: `${SBOM_PROPERTY}:os_distro`, value: s.osDistro },
          { name: `${SBOM_PROPERTY}:os_version`, value: s.osVersion },
        ],
      },
      properties: [
        {
          name: `${SBOM_PROPERTY}:package-database`,
          value: s.family === "debian" ? DPKG_STATUS : "the package manager's list, read in the guest at build time",
        },
        // Honest about coverage: a package without a machine-readable copyright file has no licence here.
        { name: `${SBOM_PROPERTY}:packages-without-licence`, value: String(withoutLicence) },
      ],
    },
    components: packages.map((p) => {
      const ref = purl(s, p);
      return {
        type: "library",
        "bom-ref": ref,
        name: p.name,
        version: p.version,
        purl: ref,
        ...(p.licenses?.length
          ? { licenses: p.licenses.map((name) => ({ license: { name, acknowledgement: "declared" } })) }
          : {}),
        properties: [
          { name: `${SBOM_PROPERTY}:arch`, value: p.arch },
          ...(p.source ? [{ name: `${SBOM_PROPERTY}:source-package`, value: p.source }] : []),
          ...(p.sourceVersion ? [{ name: `${SBOM_PROPERTY}:source-version`, value: p.sourceVersion }] : []),
        ],
      };
    }),
  };
}

/** The packages listed in an SBOM this module wrote (for diffs): name, version and architecture. */
export function sbomPackages(sbom: unknown): { name: string; version: string; arch: string }[] {
  const components =
    (sbom as { components?: { name: string; version: string; properties?: { name: string; value: string }[] }[] })
      .components ?? [];
  return components.map((c) => ({
    name: c.name,
    version: c.version,
    arch: c.properties?.find((p) => p.name === `${SBOM_PROPERTY}:arch`)?.value ?? "",
  }));
}

/** Schema errors of a CycloneDX 1.6 JSON document against the official (strict) schema; null when valid. */
export async function sbomSchemaErrors(json: string): Promise<unknown> {
  // Loaded here, not with the module: its validators are a fifth of a publish run's start-up, and only tests use them.
  const { Spec, Validation } = await import("@cyclonedx/cyclonedx-library");
  return new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(json);
}
