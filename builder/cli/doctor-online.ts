/**
 * doctor's `--online` checks: read-only calls with the stack's credentials. The Scaleway API lists one image and
 * the zone's Instance types; Object Storage answers HeadBucket and GetBucketLocation for the stack's bucket.
 * Nothing is created or changed.
 */
import { GetBucketLocationCommand, HeadBucketCommand } from "@aws-sdk/client-s3";
import { scalewayClient } from "../release/scw-client";
import { Instancev1 } from "@scaleway/sdk-instance";
import type { Finding } from "./doctor-checks";
import { PROJECT } from "../core/settings";
import { s3Client } from "../pipeline/upload";

export interface OnlineTarget {
  zone: string;
  region: string;
  bucket: string;
  s3Endpoint: string;
  /** The Scaleway API; its public endpoint when unset. */
  apiUrl?: string;
  accessKey: string;
  secretKey: string;
  /** Test commercial type per architecture the stack tests. */
  testTypes: Partial<Record<"x86_64" | "arm64", { key: string; type: string }>>;
}

const status = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const message = (err: unknown) => (err as Error).message || (err as Error).name;

/** What a HeadBucket outcome means for the stack (pure: the status code, or undefined when it succeeded). */
export function headBucketFinding(
  bucket: string,
  endpoint: string,
  region: string,
  outcome: { status?: number; error?: string } | undefined,
): Finding[] {
  if (!outcome) return [];
  const where = `bucket ${bucket} at ${endpoint}`;
  if (outcome.status === 404)
    return [
      {
        check: "online",
        problem: `${where} does not exist`,
        fix: `create it in ${region} (Object Storage, region ${region}) with the stack's Project, then re-run doctor`,
      },
    ];
  if (outcome.status === 403)
    return [
      {
        check: "online",
        problem: `${where}: access denied to this key`,
        fix: "give the API key's principal ObjectStorageFullAccess in the bucket's Project, or fix the bucket policy",
      },
    ];
  if (outcome.status === 301 || outcome.status === 400)
    return [
      {
        check: "online",
        problem: `${where}: HeadBucket answered ${outcome.status}, as S3 answers a request signed for ${region} that reaches another region`,
        fix: `use a bucket in ${region} through https://s3.${region}.scw.cloud`,
      },
    ];
  return [
    {
      check: "online",
      problem: `${where}: HeadBucket failed (${outcome.status ?? "no answer"}: ${outcome.error ?? ""})`,
      fix: "check the endpoint and the network, then re-run doctor --online",
    },
  ];
}

/** GetBucketLocation's answer against the zone's region; S3 answers an empty constraint for its default region. */
export function bucketLocationFinding(bucket: string, region: string, location: string | undefined): Finding[] {
  return location && location !== region
    ? [
        {
          check: "online",
          problem: `bucket ${bucket} is in ${location}, not in ${region} where the zone imports from`,
          fix: `use a bucket created in ${region} (${PROJECT}:bucket)`,
        },
      ]
    : [];
}

/** The test types against the zone's offer as the API lists it: present, and of the right architecture. */
export function serverTypeFindings(
  zone: string,
  offer: Readonly<Record<string, { arch: string }>>,
  tested: OnlineTarget["testTypes"],
): Finding[] {
  return Object.entries(tested).flatMap(([arch, t]) => {
    const offered = offer[t.type];
    if (!offered)
      return [
        {
          check: "online",
          problem: `${PROJECT}:${t.key} ${t.type} is not offered in ${zone}`,
          fix: `set ${PROJECT}:${t.key} to an ${arch} type the zone lists (GET /instance/v1/zones/${zone}/products/servers)`,
        },
      ];
    if (offered.arch !== arch)
      return [
        {
          check: "online",
          problem: `${PROJECT}:${t.key} ${t.type} is ${offered.arch} in ${zone}, not ${arch}`,
          fix: `set ${PROJECT}:${t.key} to an ${arch} type`,
        },
      ];
    return [];
  });
}

export async function onlineFindings(t: OnlineTarget): Promise<Finding[]> {
  const out: Finding[] = [];
  const client = scalewayClient({
    accessKey: t.accessKey,
    secretKey: t.secretKey,
    defaultZone: t.zone,
    ...(t.apiUrl ? { apiURL: t.apiUrl } : {}),
  });
  const instance = new Instancev1.API(client);
  const api = t.apiUrl ?? "the Scaleway API";
  try {
    await instance.listImages({ zone: t.zone as never, perPage: 1 });
    const offer: Record<string, { arch: string }> = {};
    // Pages until total_count is reached; a page adding nothing new ends it too (a server that ignores `page`).
    for (let page = 1; page <= 20; page++) {
      const res = await instance.listServersTypes({ zone: t.zone as never, page, perPage: 100 });
      const before = Object.keys(offer).length;
      Object.assign(offer, res.servers);
      const now = Object.keys(offer).length;
      if (now === before || !(now < res.totalCount)) break;
    }
    out.push(...serverTypeFindings(t.zone, offer, t.testTypes));
  } catch (err) {
    out.push({
      check: "online",
      problem: `${api} refused a read-only call in ${t.zone} (${message(err)})`,
      fix: "check the access and secret key (an API key of the stack's Project with InstancesFullAccess and BlockStorageFullAccess)",
    });
  }
  const s3 = s3Client({
    endpoint: t.s3Endpoint,
    region: t.region,
    bucket: t.bucket,
    accessKeyId: t.accessKey,
    secretAccessKey: t.secretKey,
  });
  let head: { status?: number; error?: string } | undefined;
  try {
    await s3.send(new HeadBucketCommand({ Bucket: t.bucket }));
  } catch (err) {
    head = { status: status(err), error: message(err) };
  }
  out.push(...headBucketFinding(t.bucket, t.s3Endpoint, t.region, head));
  if (!head) {
    try {
      const location = await s3.send(new GetBucketLocationCommand({ Bucket: t.bucket }));
      out.push(...bucketLocationFinding(t.bucket, t.region, location.LocationConstraint));
    } catch (err) {
      out.push({
        check: "online",
        problem: `bucket ${t.bucket}: GetBucketLocation failed (${message(err)})`,
        fix: `check that the bucket is in ${t.region} in the console`,
      });
    }
  }
  s3.destroy();
  return out;
}
