/** Supply-chain subcommands: `diff` (what changed between a release's last two builds) and `verify` (signatures). */
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync } from "node:fs";
import { loadCatalog } from "../../images";
import { Architecture } from "../../images/schema";
import { packageDiffMarkdown } from "../core/package-diff";
import { projectRoot } from "../system/paths";
import { companionKeys, Statement, verifyRelease, scsProvenanceMismatches } from "../pipeline/provenance";
import type { OptionTable } from "./options";
import { ENVIRONMENT, register, UsageError, type Values } from "./registry";
import { asPublicPem } from "../core/settings";
import { IN_TOTO_PAYLOAD_TYPE, releasePublicKey, keyId, Envelope } from "../core/signing";
import { readStackSettings } from "../system/stack-files";
import { buildsInBucket, diffAgainstPrevious, packagesInBucket, verifyInBucket } from "../pipeline/supply-chain";
import { s3Client, type S3Target } from "../pipeline/upload";
import { regionOf } from "../core/zones";

const str = (v: Values, k: string) => (typeof v[k] === "string" ? v[k] : undefined);

/** The bucket from --stack (its bucket, endpoint and region) or from flags and the FACTORY_* environment. */
function bucketOf(v: Values): S3Target {
  const stack = str(v, "stack");
  const settings = stack ? readStackSettings(projectRoot(), stack, loadCatalog()) : undefined;
  const region = settings ? regionOf(settings.zone) : str(v, "region");
  const bucket = settings?.bucket ?? str(v, "bucket");
  if (!region || !bucket)
    throw new UsageError("give --stack NAME, or --bucket and --region (FACTORY_BUCKET, FACTORY_S3_REGION)");
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID ?? process.env.SCW_ACCESS_KEY;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY ?? process.env.SCW_SECRET_KEY;
  if (!accessKeyId || !secretAccessKey)
    throw new UsageError(
      "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or SCW_ACCESS_KEY and SCW_SECRET_KEY) to read the bucket",
    );
  const endpoint = str(v, "endpoint") ?? settings?.s3Endpoint ?? `https://s3.${region}.scw.cloud`;
  return { endpoint, region, bucket, accessKeyId, secretAccessKey };
}

const bucketOptions: OptionTable = {
  stack: {
    type: "string",
    value: "NAME",
    description: "read the bucket, its region and endpoint from stacks/Pulumi.NAME.yaml",
  },
  bucket: {
    type: "string",
    value: "B",
    env: "FACTORY_BUCKET",
    description: "the artifact bucket (instead of --stack)",
  },
  region: {
    type: "string",
    value: "R",
    env: "FACTORY_S3_REGION",
    description: "the bucket's region (instead of --stack)",
  },
  endpoint: {
    type: "string",
    value: "URL",
    env: "FACTORY_S3_ENDPOINT",
    description: "the S3 endpoint; Scaleway's for the region by default",
  },
};
const bucketEnvironment = Object.fromEntries(
  ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SCW_ACCESS_KEY", "SCW_SECRET_KEY"].map((k) => [
    k,
    ENVIRONMENT[k] ?? "Object Storage credentials",
  ]),
);

register("diff", {
  summary:
    "the package changes between a release's newest build in the bucket and the one before (kernel and security first)",
  usage:
    "image-factory diff <release> [--arch x86_64] (--stack NAME | --bucket B --region R [--endpoint URL]) [--json]\n" +
    "  (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or SCW_ACCESS_KEY/SCW_SECRET_KEY; --json output feeds plan --package-diffs)",
  options: {
    ...bucketOptions,
    arch: {
      type: "string",
      value: "ARCH",
      default: "x86_64",
      description: "the architecture's builds (x86_64 or arm64)",
    },
    json: { type: "boolean", description: "print the diff as JSON (the input of plan --package-diffs)" },
  },
  environment: bucketEnvironment,
  async run(v, p) {
    const release = p[0];
    if (!release || !loadCatalog().byId.has(release))
      throw new UsageError(`give a release id from the catalog${release ? ` (no "${release}")` : ""}`);
    const arch = Architecture.safeParse(str(v, "arch") ?? "x86_64");
    if (!arch.success) throw new UsageError(`--arch: expected one of ${Architecture.options.join(", ")}`);
    const target = bucketOf(v);
    const s3 = s3Client(target);
    const newest = (await buildsInBucket(s3, target.bucket, release, arch.data))[0];
    if (!newest) throw new UsageError(`no build of ${release} ${arch.data} in bucket ${target.bucket}`);
    const packages = await packagesInBucket(s3, target.bucket, newest.key);
    if (!packages) throw new Error(`${newest.key}: neither an SBOM nor a manifest in bucket ${target.bucket}`);
    const diff = await diffAgainstPrevious(s3, target.bucket, release, arch.data, newest.key, packages);
    if (v.json) process.stdout.write(`${JSON.stringify(diff, null, 2)}\n`);
    else
      process.stdout.write(
        `${release} ${arch.data}: ${diff.from ?? "(no previous build)"} → ${diff.to}\n\n${packageDiffMarkdown(diff.changes)}`,
      );
  },
});

function publicKeyOf(v: Values) {
  const file = str(v, "public-key");
  if (file) return releasePublicKey(asPublicPem(readFileSync(file, "utf8")), file);
  const stack = str(v, "stack");
  const pem = stack ? readStackSettings(projectRoot(), stack, loadCatalog()).releasePublicKey : undefined;
  if (!pem)
    throw new UsageError(
      stack
        ? `stack ${stack} sets no image-factory:releasePublicKey: give --public-key FILE`
        : "give --public-key FILE or --stack NAME (its releasePublicKey)",
    );
  return releasePublicKey(pem, `${stack}: image-factory:releasePublicKey`);
}

async function fileSha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** The artifact key a local provenance file names first (its signature is checked afterwards, by verifyRelease). */
function signedArtifactKey(provenance: string, where: string): string {
  try {
    const env = Envelope.parse(JSON.parse(provenance));
    if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new Error(`payload type ${env.payloadType}`);
    return Statement.parse(JSON.parse(Buffer.from(env.payload, "base64").toString("utf8"))).subject[0]!.name;
  } catch (err) {
    throw new UsageError(
      `${where}: not a provenance envelope the factory writes (${(err as Error).message.split("\n")[0]})`,
    );
  }
}

register("verify", {
  summary:
    "verify an artifact's signed provenance and that its bytes, manifest and SBOM are the signed ones; non-zero if not",
  usage:
    "image-factory verify <artifact key> (--stack NAME | --bucket B --region R [--endpoint URL]) [--public-key FILE]\n" +
    "image-factory verify <file.qcow2> --public-key FILE   (the manifest, SBOM and provenance beside it: <file>.manifest.json, .cdx.json, .provenance.dsse.json)",
  options: {
    ...bucketOptions,
    "public-key": {
      type: "string",
      value: "FILE",
      description: "the release public key (PEM); the stack's releasePublicKey with --stack",
    },
    json: { type: "boolean", description: "print the verified statement as JSON" },
  },
  environment: bucketEnvironment,
  async run(v, p) {
    const target = p[0];
    if (!target)
      throw new UsageError("give the artifact key (images/<id>/<arch>/<sha256>.qcow2) or a local .qcow2 file");
    const key = publicKeyOf(v);
    let statement: Statement;
    if (existsSync(target)) {
      const read = (suffix: string) => {
        const file = `${target}${suffix}`;
        if (!existsSync(file))
          throw new UsageError(
            `${file} is missing: verify reads the manifest, SBOM and provenance beside the artifact`,
          );
        return readFileSync(file, "utf8");
      };
      const provenance = read(".provenance.dsse.json");
      const manifest = read(".manifest.json");
      statement = verifyRelease(
        {
          artifactKey: signedArtifactKey(provenance, target),
          artifactSha256: await fileSha256(target),
          manifest,
          sbom: read(".cdx.json"),
          provenance,
        },
        key,
      );
      const mismatches = scsProvenanceMismatches(
        statement,
        (JSON.parse(manifest) as { scs: { image_source: string; image_build_date: string } }).scs,
      );
      if (mismatches.length)
        throw new Error(
          `${target}.manifest.json: SCS metadata disagrees with the signed provenance: ${mismatches.join("; ")}`,
        );
    } else {
      const bucket = bucketOf(v);
      // The operator's check reads the artifact in full, whatever this machine read before.
      statement = await verifyInBucket(s3Client(bucket), bucket, target, key);
    }
    const dep = statement.predicate.buildDefinition.resolvedDependencies[0]!;
    const summary = {
      verified: true,
      keyId: keyId(key),
      subjects: statement.subject,
      upstream: dep,
      recipeHash: statement.predicate.buildDefinition.externalParameters.recipeHash,
      builder: statement.predicate.runDetails.builder,
      host: statement.predicate.buildDefinition.internalParameters.host,
      finishedOn: statement.predicate.runDetails.metadata.finishedOn,
      files: companionKeys(statement.subject[0]!.name),
    };
    if (v.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else
      process.stdout.write(
        `verified: ${statement.subject.map((s) => s.name.split("/").at(-1)).join(", ")} signed by ${summary.keyId}\n` +
          `  upstream ${dep.uri} ${Object.entries(dep.digest)
            .map(([a, h]) => `${a}:${h.slice(0, 16)}…`)
            .join(" ")}\n` +
          `  recipe ${summary.recipeHash.slice(0, 16)}…, built on ${summary.host} at ${summary.finishedOn}\n`,
      );
  },
});
