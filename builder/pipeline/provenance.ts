/**
 * Provenance and the release signature of one artifact: an in-toto Statement v1 whose subjects are the artifact,
 * its manifest and its SBOM (by sha256), with a SLSA provenance v1 predicate saying what upstream (URL and
 * digest), which recipe, which builder and which host made it; signed in a DSSE envelope (builder/core/signing.ts).
 * One signature covers all three files: a flipped byte in any of them no longer matches its signed digest.
 * Pure but for `hostname` and the clock, which the caller may pass.
 */
import { hostname } from "node:os";
import type { KeyObject } from "node:crypto";
import { z } from "zod";
import { sha256Hex } from "../core/canonical";
import { IN_TOTO_PAYLOAD_TYPE, openEnvelope, signEnvelope, SignatureError } from "../core/signing";

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";
/** What kind of build this is; SLSA asks for a URI naming the build's parameters, documented in docs/supply-chain.md. */
export const BUILD_TYPE = "urn:image-factory:buildtype:libguestfs-customise:v1";

/** Where each signed file sits beside the artifact `<key>` in the bucket (and beside the local cache's file). */
/** Keep in step with ARTIFACT_COMPANIONS (builder/pipeline/artifact-refs.ts), which deletes them with the artifact. */
export const companionKeys = (artifactKey: string) => ({
  manifest: `${artifactKey}.manifest.json`,
  sbom: `${artifactKey}.cdx.json`,
  provenance: `${artifactKey}.provenance.dsse.json`,
  notes: `${artifactKey}.notes.md`,
});

/** What provenance needs from a build manifest (builder/pipeline/build.ts's Manifest). */
export interface ProvenanceSource {
  release: string;
  arch: string;
  contentHash: string;
  recipeHash: string;
  hashInputs: unknown;
  upstream: { imageUrl: string; serial: string; trust: string; checksum: { algo: string; hex: string } };
  tools: Record<string, string>;
  accelerator: string;
  scs: { image_source: string | number; image_build_date: string };
}

export interface BuildContext {
  /** The compiled CLI's build stamp (dist/builder/build-stamp.json): which builder sources ran. */
  builderStamp: string;
  builderRevision: number;
  host?: string;
  finishedOn?: string;
}

const Digest = z.record(z.string(), z.string().regex(/^[0-9a-f]+$/));
export const Statement = z.object({
  _type: z.literal(STATEMENT_TYPE),
  subject: z.array(z.object({ name: z.string(), digest: Digest })).min(1),
  predicateType: z.literal(SLSA_PROVENANCE_V1),
  predicate: z.object({
    buildDefinition: z.object({
      buildType: z.string(),
      externalParameters: z
        .object({ release: z.string(), arch: z.string(), contentHash: z.string(), recipeHash: z.string() })
        .loose(),
      internalParameters: z.object({ host: z.string() }).loose(),
      resolvedDependencies: z.array(z.object({ uri: z.string(), digest: Digest, name: z.string().optional() }).loose()),
    }),
    runDetails: z.object({
      builder: z.object({ id: z.string(), version: z.record(z.string(), z.string()).optional() }),
      metadata: z.object({ finishedOn: z.string() }).loose(),
    }),
  }),
});
export type Statement = z.infer<typeof Statement>;

export interface SignedFiles {
  /** The artifact's object key, its sha256 (hex) and the exact bytes of its manifest and SBOM. */
  artifactKey: string;
  artifactSha256: string;
  manifest: string;
  sbom: string;
}

export function provenanceStatement(files: SignedFiles, m: ProvenanceSource, ctx: BuildContext): Statement {
  const k = companionKeys(files.artifactKey);
  return {
    _type: STATEMENT_TYPE,
    subject: [
      { name: files.artifactKey, digest: { sha256: files.artifactSha256 } },
      { name: k.manifest, digest: { sha256: sha256Hex(files.manifest) } },
      { name: k.sbom, digest: { sha256: sha256Hex(files.sbom) } },
    ],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          release: m.release,
          arch: m.arch,
          contentHash: m.contentHash,
          recipeHash: m.recipeHash,
          hashInputs: m.hashInputs,
        },
        internalParameters: { host: ctx.host ?? hostname(), accelerator: m.accelerator, tools: m.tools },
        resolvedDependencies: [
          // The official URL, as SCS-0102 image_source names it, with the digest the upstream's checksum file gave.
          {
            uri: m.upstream.imageUrl,
            digest: { [m.upstream.checksum.algo]: m.upstream.checksum.hex },
            name: `upstream serial ${m.upstream.serial}`,
            annotations: { trust: m.upstream.trust },
          },
        ],
      },
      runDetails: {
        builder: {
          id: "image-factory",
          version: { "image-factory": ctx.builderStamp, builderRevision: String(ctx.builderRevision) },
        },
        metadata: { finishedOn: ctx.finishedOn ?? new Date().toISOString() },
      },
    },
  };
}

export function signProvenance(statement: Statement, key: KeyObject): string {
  return `${JSON.stringify(signEnvelope(Buffer.from(JSON.stringify(statement)), IN_TOTO_PAYLOAD_TYPE, key), null, 2)}\n`;
}

/**
 * Checks the envelope's signature by `key`, then that each file is the one it signed: the artifact by its sha256,
 * the manifest and SBOM by their bytes. Returns the statement; a SignatureError names the first file that fails.
 */
export function verifyRelease(files: SignedFiles & { provenance: string }, key: KeyObject): Statement {
  const what = companionKeys(files.artifactKey);
  const payload = openEnvelope(files.provenance, key, IN_TOTO_PAYLOAD_TYPE, what.provenance);
  const parsed = Statement.safeParse(JSON.parse(payload.toString("utf8")));
  if (!parsed.success)
    throw new SignatureError(
      `${what.provenance}: signed, but not an in-toto SLSA provenance statement: ${parsed.error.issues[0]!.message}`,
    );
  const statement = parsed.data;
  const signed = new Map(statement.subject.map((s) => [s.name, s.digest.sha256]));
  const actual: [string, string][] = [
    [files.artifactKey, files.artifactSha256],
    [what.manifest, sha256Hex(files.manifest)],
    [what.sbom, sha256Hex(files.sbom)],
  ];
  for (const [name, digest] of actual) {
    if (!signed.has(name)) throw new SignatureError(`${name}: not among the signed subjects of ${what.provenance}`);
    if (signed.get(name) !== digest)
      throw new SignatureError(
        `${name}: sha256 ${digest} is not the signed ${signed.get(name)}: the file was altered after signing`,
      );
  }
  return statement;
}

/**
 * Where the image's SCS-0102 metadata and its signed provenance disagree: image_source must be the upstream the
 * provenance names, image_build_date the day the build finished. Empty when consistent.
 */
export function scsProvenanceMismatches(
  statement: Statement,
  scs: { image_source?: string | number; image_build_date?: string },
): string[] {
  const out: string[] = [];
  const upstream = statement.predicate.buildDefinition.resolvedDependencies[0]?.uri;
  if (scs.image_source !== upstream)
    out.push(`image_source ${String(scs.image_source)} is not the signed upstream ${String(upstream)}`);
  const finishedOn = statement.predicate.runDetails.metadata.finishedOn;
  const finished = finishedOn.slice(0, 10);
  // The manifest dates the build seconds after the artifact is written: across midnight UTC it says the next day.
  const nextDay = new Date(Date.parse(`${finished}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  const lateEvening = finishedOn.slice(11, 13) === "23";
  if (scs.image_build_date !== finished && !(lateEvening && scs.image_build_date === nextDay))
    out.push(`image_build_date ${String(scs.image_build_date)} is not the signed build day ${finished}`);
  return out;
}
