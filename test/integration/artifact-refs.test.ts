/**
 * Shared artifacts against the real S3 server (versitygw): references under concurrent publish and unpublish,
 * the stale multipart sweep, and aborting a failed multipart upload. Tiny objects, no image build: seconds.
 */
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACT_COMPANIONS, dropReference, references, withReference } from "../../builder/pipeline/artifact-refs";
import { companionKeys } from "../../builder/pipeline/provenance";
import { startS3, type S3Server } from "../../builder/local/s3-server";
import { s3Client, sweepStaleUploads, uploadArtifact } from "../../builder/pipeline/upload";

const BUCKET = "refs-test";
let work: string;
let s3: S3Server;
let client: S3Client;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "factory-refs-"));
  s3 = await startS3(join(work, "s3"));
  client = s3Client({ ...s3, bucket: BUCKET });
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  await s3?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function exists(key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

async function pendingUploads(prefix: string) {
  const list = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
  return (list.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId!, initiated: u.Initiated! }));
}

/** A deterministic generator, so a failing round can be replayed from its seed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe("references: the artifact exists exactly while some stack references it", () => {
  it("survives 300 rounds of 2-4 concurrent publishes and unpublishes of the same key", async () => {
    const key = "images/race/x86_64/0123abcd.qcow2";
    const stacks = ["fr-par-1", "fr-par-2", "fr-par-3", "nl-ams-1", "pl-waw-1"].map(
      (z) => `prod-${z}/debian-12-x86_64`,
    );
    const random = rng(20261201);
    // A random pause before every request widens the windows between a read and the write that depends on it.
    const jittery = s3Client({ ...s3, bucket: BUCKET });
    jittery.middlewareStack.add(
      (next) => async (args) => {
        await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
        return next(args);
      },
      { step: "initialize", name: "jitter" },
    );
    const opts = { pollMs: 2 };
    let held = new Set<string>();
    const problems: string[] = [];

    for (let round = 0; round < 300; round++) {
      const n = 2 + Math.floor(random() * 3);
      // Distinct stacks within a round, so the expected outcome does not depend on the order.
      const picked = [...stacks].sort(() => random() - 0.5).slice(0, n);
      const ops = picked.map((ref) => {
        const kind = held.has(ref)
          ? random() < 0.7
            ? "unpublish"
            : "publish"
          : random() < 0.85
            ? "publish"
            : "unpublish";
        // Now and then a publish fails after recording its reference (a build or upload error).
        const fails = kind === "publish" && random() < 0.1;
        return { ref, kind, fails, delay: Math.floor(random() * 6) };
      });
      const results = await Promise.allSettled(
        ops.map(async (op) => {
          await new Promise((r) => setTimeout(r, op.delay));
          if (op.kind === "unpublish") return dropReference(jittery, BUCKET, key, op.ref, opts);
          return withReference(jittery, BUCKET, key, op.ref, opts, async () => {
            // What publish does once its reference is recorded: upload unless the artifact is there.
            if (!(await exists(key)))
              await jittery.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "qcow2" }));
            if (op.fails) throw new Error("injected build failure");
          });
        }),
      );
      const next = new Set(held);
      ops.forEach((op, i) => {
        const r = results[i]!;
        if (r.status === "rejected" && !(op.fails && String(r.reason).includes("injected")))
          problems.push(`round ${round}: ${op.kind} ${op.ref} failed: ${String(r.reason)}`);
        if (op.kind === "unpublish") next.delete(op.ref);
        else if (!op.fails) next.add(op.ref);
        // A failed publish of a stack that held the artifact already keeps that reference.
      });
      held = next;
      const record = await references(client, BUCKET, key);
      const recorded = [...(record?.refs ?? [])].sort();
      const there = await exists(key);
      if (JSON.stringify(recorded) !== JSON.stringify([...held].sort()))
        problems.push(
          `round ${round} ${JSON.stringify(ops)}: references ${JSON.stringify(recorded)}, expected ${JSON.stringify([...held].sort())}`,
        );
      if (there !== held.size > 0)
        problems.push(
          `round ${round} ${JSON.stringify(ops)}: artifact ${there ? "present" : "missing"} with references ${JSON.stringify(recorded)}`,
        );
      if (record?.deletingSince) problems.push(`round ${round}: a deletion was left half-done`);
      if (problems.length >= 5) break;
    }
    expect(problems).toEqual([]);
  });

  it("waits for a deletion under way, and finishes one whose deleter died", async () => {
    const key = "images/stale/x86_64/feed.qcow2";
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "old" }));
    // What an unpublisher killed between marking the record and deleting leaves behind.
    const since = Date.now();
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: `${key}.refs`,
        Body: JSON.stringify({ refs: [], deletingSince: new Date(since).toISOString() }),
      }),
    );
    let clock = since + 1000;
    const waits: number[] = [];
    const opts = {
      staleDeletionMs: 60_000,
      now: () => clock,
      sleep: async (ms: number) => {
        waits.push(ms);
        clock += 30_000;
      },
    };
    await withReference(client, BUCKET, key, "b/img", opts, async () => {
      expect(await exists(key)).toBe(false);
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "new" }));
    });
    // Two waits (at +1 s and +31 s), then at +61 s the deletion is finished and the reference recorded.
    expect(waits.length).toBe(2);
    expect(await references(client, BUCKET, key)).toEqual({ refs: ["b/img"] });
    expect(await exists(key)).toBe(true);
  });

  it("still deletes the record where the server refuses conditional deletes", async () => {
    const key = "images/nocond/x86_64/d00d.qcow2";
    // Scaleway documents conditional writes, not conditional deletes: a server answering 501 to If-Match on
    // DeleteObject must not leave the record behind (nor fail the unpublish).
    const strict = s3Client({ ...s3, bucket: BUCKET });
    let refused = 0;
    strict.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "DeleteObjectCommand" && (args.input as { IfMatch?: string }).IfMatch) {
          refused++;
          throw Object.assign(new Error("A header you provided implies functionality that is not implemented"), {
            name: "NotImplemented",
            $metadata: { httpStatusCode: 501 },
          });
        }
        return next(args);
      },
      { step: "initialize", name: "refuse-conditional-delete" },
    );
    await withReference(strict, BUCKET, key, "a/img", {}, async () => {
      await strict.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "qcow2" }));
    });
    expect(await dropReference(strict, BUCKET, key, "a/img")).toEqual({ deleted: true });
    expect(refused).toBe(1);
    expect(await exists(key)).toBe(false);
    expect(await exists(`${key}.refs`)).toBe(false);
  });

  it("deletes what publish wrote beside the artifact with it, and nothing of a neighbour", async () => {
    const key = "images/companions/x86_64/c0ffee.qcow2";
    const neighbour = "images/companions/x86_64/c0ffee.qcow2.bak";
    const beside = Object.values(companionKeys(key));
    expect(beside.sort()).toEqual(ARTIFACT_COMPANIONS.map((suffix) => `${key}${suffix}`).sort());
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: neighbour, Body: "someone else's" }));
    await withReference(client, BUCKET, key, "a/img", {}, async () => {
      for (const k of [...beside, key]) await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: k, Body: "x" }));
    });
    expect(await dropReference(client, BUCKET, key, "a/img")).toEqual({ deleted: true });
    for (const k of [key, ...beside, `${key}.refs`]) expect(await exists(k), k).toBe(false);
    expect(await exists(neighbour)).toBe(true);
  });

  it("folds the older one-object-per-reference layout into the record", async () => {
    const key = "images/legacy/x86_64/beef.qcow2";
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "qcow2" }));
    for (const ref of ["local/debian-12-x86_64", "local-2/debian-12-x86_64"])
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: `${key}.refs/${encodeURIComponent(ref)}`, Body: "" }),
      );
    expect(await dropReference(client, BUCKET, key, "local/debian-12-x86_64")).toEqual({ deleted: false });
    expect(await references(client, BUCKET, key)).toEqual({ refs: ["local-2/debian-12-x86_64"] });
    expect(await exists(`${key}.refs/${encodeURIComponent("local-2/debian-12-x86_64")}`)).toBe(false);
    expect(await dropReference(client, BUCKET, key, "local-2/debian-12-x86_64")).toEqual({ deleted: true });
    expect(await exists(key)).toBe(false);
    expect(await references(client, BUCKET, key)).toBeUndefined();
  });
});

describe("stale multipart uploads", () => {
  it("aborts those under images/ older than the threshold, never younger ones or others'", async () => {
    const start = (key: string) => client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    await start("images/sweep/x86_64/old.qcow2");
    await start("elsewhere/old.bin");
    // The server dates uploads to the second: the young one must be visibly younger.
    await new Promise((r) => setTimeout(r, 2100));
    await start("images/sweep/x86_64/young.qcow2");
    const before = await pendingUploads("");
    const old = before.find((u) => u.key === "images/sweep/x86_64/old.qcow2")!;
    const young = before.find((u) => u.key === "images/sweep/x86_64/young.qcow2")!;
    expect(young.initiated.getTime()).toBeGreaterThan(old.initiated.getTime());

    const threshold = 24 * 3600_000;
    // The clock stands exactly one threshold after the old upload began.
    const result = await sweepStaleUploads(client, BUCKET, {
      olderThanMs: threshold,
      now: () => old.initiated.getTime() + threshold,
    });
    expect(result.aborted.map((u) => u.key)).toEqual(["images/sweep/x86_64/old.qcow2"]);
    expect((await pendingUploads("")).map((u) => u.key).sort()).toEqual([
      "elsewhere/old.bin",
      "images/sweep/x86_64/young.qcow2",
    ]);

    // With the real clock, everything just started is young.
    expect((await sweepStaleUploads(client, BUCKET)).aborted).toEqual([]);
  });
});

describe("upload: a failed multipart upload is aborted", () => {
  it("leaves no pending upload for the key when a part fails", async () => {
    const file = join(work, "payload.bin");
    writeFileSync(file, Buffer.alloc(16 * 2 ** 20, 3));
    const key = "images/abort/x86_64/cafe.qcow2";
    await expect(
      uploadArtifact(client, BUCKET, key, file, "cafe", {
        partSize: 5 * 2 ** 20,
        concurrency: 1,
        onPart: (n) => {
          if (n === 2) throw new Error("connection reset during part 2");
        },
      }),
    ).rejects.toThrow("connection reset during part 2");
    expect(await pendingUploads(key)).toEqual([]);
    expect(await exists(key)).toBe(false);
  });
});
