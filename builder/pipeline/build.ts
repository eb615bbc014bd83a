/**
 * One build: resolve → fetch → customise → finalise, always on a copy in a private work directory. Only a
 * complete, checked artifact and its manifest are moved into the output directory; a failure anywhere leaves
 * nothing behind.
 */
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { loadCatalog, osBase, type Catalog } from "../../images";
import type { Architecture, Release, Step } from "../../images/schema";
import { accelerator, type Accelerator } from "../system/accel";
import { canonicalJson, sha256Hex } from "../core/canonical";
import { customiseImage, isLoopback, type EcosystemSource } from "./customise";
import { ensurePinnedKey } from "./signature";
import { run } from "../system/exec";
import { digestFile, fetchVerified } from "./fetch";
import { fetchUpstreamImage } from "./inspect-upstream";
import { convertForImport, extractPackagesAndTrim, type PackageEntry } from "./finalise";
import { contentHash, hashInputs, withBaseEpoch, type BuildDials, type HashInputs } from "../core/plan";
import { resolveSource, type ResolvedSource } from "./resolve";
import { scsMetadata, type ScsMetadata } from "../core/scs";
import { ensureUefi, uefiGuestArgs } from "./uefi";
import { throughMirror } from "../core/upstream-url";

/** Where a scaleway-ecosystem repository publishes its signing key, relative to the repository URL. */
export const ECOSYSTEM_KEY_PATH = "scaleway-ecosystem.asc";

export interface BuildRequest {
  releaseId: string;
  arch: Architecture;
  dials: BuildDials;
  ecosystem: EcosystemSource;
  mirror?: string;
  outDir: string;
  /** The content hash the caller planned; the build refuses to run if its own inputs hash differently. */
  expectedContentHash?: string;
  /** The catalog to build from; the project's own by default. */
  catalog?: Catalog;
  /** The upstream already resolved (and verified) by the caller; resolved here otherwise. */
  source?: ResolvedSource;
  /**
   * For an app: its base's artifact (checked against its digest) and manifest. The app's steps are then layered on
   * it instead of customising the upstream again; its content hash must be the one the app's inputs name.
   */
  base?: BaseArtifact;
}

export interface BaseArtifact {
  artifact: string;
  manifest: Manifest;
}

export interface Manifest {
  schema: 1;
  release: string;
  label: string;
  arch: Architecture;
  contentHash: string;
  hashInputs: HashInputs;
  recipeHash: string;
  upstream: Omit<ResolvedSource, "release" | "arch">;
  output: { file: string; sha256: string; bytes: number; virtualSize: number; format: string; compression: string };
  uefi: string;
  /** The base artifact an app was layered on; absent when it was customised from the upstream. */
  layeredOn?: { release: string; contentHash: string; sha256: string };
  packages: PackageEntry[];
  tools: Record<string, string>;
  accelerator: Accelerator;
  scs: ScsMetadata & { image_build_date: string };
}

export interface BuildResult {
  artifact: string;
  manifestFile: string;
  manifest: Manifest;
}

export class BuildInputError extends Error {}

async function toolVersions(): Promise<Record<string, string>> {
  const first = async (cmd: string, args: string[]) =>
    await run(cmd, args).then(
      (r) => (r.stdout || r.stderr).split("\n")[0]!.trim(),
      () => "unknown",
    );
  return {
    "virt-customize": await first("virt-customize", ["--version"]),
    "qemu-img": await first("qemu-img", ["--version"]),
    node: process.version,
  };
}

export function artifactFileName(release: Release, arch: Architecture, hash: string): string {
  return `${release.id}-${arch}-${hash.slice(0, 16)}.qcow2`;
}

/**
 * The recipe's downloads (`fetch-file`), fetched on the build host through the stack's mirror into the verified
 * cache: guest path → local file. A digest that does not match fails the build before the guest is touched.
 */
export async function fetchDownloads(
  steps: Step[],
  mirror: string | undefined,
  label: string,
): Promise<Record<string, string>> {
  const fetched: Record<string, string> = {};
  for (const step of steps) {
    if (step.op !== "fetch-file") continue;
    const expected = step.sha256
      ? { algo: "sha256" as const, hex: step.sha256 }
      : { algo: "sha1" as const, hex: step.sha1! };
    fetched[step.path] = await fetchVerified(
      throughMirror(step.url, mirror),
      expected,
      `${label} ${step.url.split("/").at(-1)}`,
    );
  }
  return fetched;
}

/**
 * The ecosystem repository with its signing key: fetched from `<repository>/scaleway-ecosystem.asc` and accepted
 * only under the pinned fingerprint (cached per fingerprint), for the guest to verify the repository with. A
 * repository off loopback without a pinned fingerprint fails closed.
 */
export async function ecosystemWithKey(
  eco: EcosystemSource,
  fingerprint: string | undefined,
  what: string,
): Promise<EcosystemSource> {
  if (!fingerprint) {
    if (!eco.signingKey && !isLoopback(eco.repository))
      throw new BuildInputError(
        `${what}: the scaleway-ecosystem repository ${eco.repository} is not on loopback and no key is pinned for it: set image-factory:ecosystemKeyFingerprint (FACTORY_ECOSYSTEM_KEY_FINGERPRINT)`,
      );
    return eco;
  }
  const keyUrl = `${eco.repository.replace(/\/$/, "")}/${ECOSYSTEM_KEY_PATH}`;
  const keyFile = await ensurePinnedKey({ fingerprint, keyUrl }, undefined, `${what}: scaleway-ecosystem`);
  return { ...eco, signingKey: readFileSync(keyFile, "utf8") };
}

/**
 * The steps a build runs. Layered on its base's artifact, an app runs only its own steps: the base's were run when
 * the base was built, except an SELinux relabel, which must follow the app's own file writes again.
 */
export function buildSteps(osRecipe: Step[], appRecipe: Step[], layered: boolean): Step[] {
  if (!layered) return [...osRecipe, ...appRecipe];
  return [...appRecipe, ...osRecipe.filter((s) => s.op === "selinux-relabel")];
}

export class BaseMismatchError extends Error {}

/** The base artifact must be the one the app's inputs name: same release, same content hash, same architecture. */
export function checkBase(base: BaseArtifact, inputs: HashInputs, what: string): BaseArtifact {
  const m = base.manifest;
  if (m.release !== inputs.base || m.arch !== inputs.arch || m.contentHash !== inputs.baseContentHash)
    throw new BaseMismatchError(
      `${what}: base artifact ${base.artifact} is ${m.release} ${m.arch} ${m.contentHash.slice(0, 16)}, the app's inputs name ${inputs.base} ${inputs.arch} ${inputs.baseContentHash?.slice(0, 16)}`,
    );
  return base;
}

export async function buildImage(req: BuildRequest): Promise<BuildResult> {
  const catalog = req.catalog ?? loadCatalog();
  const release = catalog.byId.get(req.releaseId);
  if (!release) throw new BuildInputError(`no release "${req.releaseId}" in the catalog`);
  if (!release.architectures.includes(req.arch))
    throw new BuildInputError(`${release.id} is not built for ${req.arch}`);
  const os = osBase(catalog, release);
  const dials = withBaseEpoch(catalog, release, req.arch, req.dials, req.expectedContentHash);
  const inputs = hashInputs(catalog, release, req.arch, dials);
  const hash = contentHash(inputs);
  if (req.expectedContentHash && req.expectedContentHash !== hash)
    throw new BuildInputError(
      `content hash mismatch: the stack planned ${req.expectedContentHash}, these inputs give ${hash} (is dist/ stale? run npm run build)`,
    );

  const base =
    req.base && release.kind === "app" ? checkBase(req.base, inputs, `${release.id} ${req.arch}`) : undefined;

  const ecosystem = await ecosystemWithKey(
    req.ecosystem,
    req.dials.ecosystemKeyFingerprint,
    `${release.id} ${req.arch}`,
  );
  const accel = await accelerator();
  process.stderr.write(`build ${release.id} ${req.arch}: content hash ${hash.slice(0, 16)}, ${accel.toUpperCase()}\n`);
  const source = base
    ? { release: os.id, arch: req.arch, ...base.manifest.upstream }
    : (req.source ?? (await resolveSource(os, req.arch, req.mirror)));
  process.stderr.write(
    base
      ? `build ${release.id} ${req.arch}: layered on ${os.id} ${base.manifest.contentHash.slice(0, 16)} (${source.fileName})\n`
      : `build ${release.id} ${req.arch}: ${source.fileName} ${source.checksum.algo} ${source.checksum.hex.slice(0, 16)}… (${source.trust})\n`,
  );
  const blob = base ? base.artifact : await fetchUpstreamImage(source, `${release.id} ${req.arch}`);

  mkdirSync(req.outDir, { recursive: true });
  const work = mkdtempSync(join(req.outDir, ".work-"));
  try {
    const disk = join(work, "disk.qcow2");
    copyFileSync(blob, disk);
    const steps = buildSteps(os.recipe, release.kind === "app" ? release.recipe : [], base !== undefined);
    const fetched = await fetchDownloads(steps, req.mirror, release.id);
    const uefi = base
      ? { state: base.manifest.uefi, needsBootloader: false }
      : steps.some((s) => s.op === "ensure-uefi")
        ? await ensureUefi(disk, accel)
        : { state: "not requested", needsBootloader: false };
    const provenance = {
      IMAGE_ID: release.id,
      IMAGE_LABEL: release.label,
      IMAGE_TITLE: release.title,
      IMAGE_ARCH: req.arch,
      IMAGE_RELEASE_EPOCH: req.dials.releaseEpoch,
      IMAGE_CONTENT_HASH: hash,
      IMAGE_SOURCE: source.imageUrl,
      IMAGE_SOURCE_SERIAL: source.serial,
      [`IMAGE_SOURCE_${source.checksum.algo.toUpperCase()}`]: source.checksum.hex,
      SCALEWAY_ECOSYSTEM_VERSION: req.ecosystem.version,
    };
    await customiseImage(
      disk,
      {
        family: os.family,
        upstreamArch: source.upstreamArch,
        steps,
        ecosystem,
        provenance,
        extraArgs: uefiGuestArgs(os.family, uefi),
        fetched,
      },
      accel,
    );
    const packages = await extractPackagesAndTrim(disk, join(work, "packages.tsv"), accel);
    const out = join(work, "out.qcow2");
    const info = await convertForImport(disk, out);
    const sha256 = await digestFile(out, "sha256");
    const fileName = artifactFileName(release, req.arch, hash);
    const { release: _r, arch: _a, ...upstream } = source;
    const manifest: Manifest = {
      schema: 1,
      release: release.id,
      label: release.label,
      arch: req.arch,
      contentHash: hash,
      hashInputs: inputs,
      recipeHash: sha256Hex(canonicalJson([...os.recipe, ...(release.kind === "app" ? release.recipe : [])])),
      upstream,
      output: {
        file: fileName,
        sha256,
        bytes: statSync(out).size,
        virtualSize: info["virtual-size"],
        format: info.format,
        compression: info["format-specific"]?.data["compression-type"] ?? "none",
      },
      uefi: uefi.state,
      ...(base
        ? { layeredOn: { release: os.id, contentHash: base.manifest.contentHash, sha256: base.manifest.output.sha256 } }
        : {}),
      packages,
      tools: await toolVersions(),
      accelerator: accel,
      scs: { ...scsMetadata(catalog, release, req.arch), image_build_date: new Date().toISOString().slice(0, 10) },
    };
    const artifact = join(req.outDir, fileName);
    const manifestFile = `${artifact}.manifest.json`;
    writeFileSync(join(work, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(out, artifact);
    renameSync(join(work, "manifest.json"), manifestFile);
    return { artifact, manifestFile, manifest };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
