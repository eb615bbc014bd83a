/**
 * When publish may reuse the sha256 this machine computed for an artifact in the bucket: only for the very object
 * version it read (same endpoint, bucket, key, ETag, size, Last-Modified and version), never when the server gives
 * less than that. The reads and records themselves run against a real S3 server in test/integration/supply-chain.
 */
import { describe, expect, it } from "vitest";
import {
  identityOf,
  recordedSha256,
  recordName,
  type ObjectHeaders,
  type ObjectIdentity,
} from "../../builder/pipeline/bucket-digests";

const WHERE = { endpoint: "http://127.0.0.1:18681", bucket: "b", key: "images/debian-12/x86_64/abc.qcow2" };
const HEAD: ObjectHeaders = {
  ETag: '"2b92f1d5628cc6501a93c0f9e25baaff-3"',
  ContentLength: 190082560,
  LastModified: new Date("2026-12-02T16:16:06Z"),
};
const SHA = "f".repeat(64);
const id = (h: ObjectHeaders, where = WHERE) => identityOf(where, h)!;

describe("an object version's identity", () => {
  it.each<[string, ObjectHeaders]>([
    ["no ETag", { ...HEAD, ETag: undefined }],
    ["an empty ETag", { ...HEAD, ETag: "" }],
    ["no size", { ...HEAD, ContentLength: undefined }],
    ["no Last-Modified", { ...HEAD, LastModified: undefined }],
    ["an unreadable Last-Modified", { ...HEAD, LastModified: new Date("not a date") }],
  ])("is none with %s: the bytes are read every time", (_, h) => {
    expect(identityOf(WHERE, h)).toBeUndefined();
  });

  it("names the version, and ignores a trailing slash on the endpoint and the unversioned bucket's null version", () => {
    expect(id(HEAD)).toEqual({
      ...WHERE,
      etag: HEAD.ETag,
      size: HEAD.ContentLength,
      lastModified: "2026-12-02T16:16:06.000Z",
    });
    expect(id(HEAD, { ...WHERE, endpoint: `${WHERE.endpoint}/` })).toEqual(id(HEAD));
    expect(id({ ...HEAD, VersionId: "null" })).toEqual(id(HEAD));
    expect(id({ ...HEAD, VersionId: "v2" }).versionId).toBe("v2");
  });
});

describe("a recorded sha256", () => {
  const recorded = { identity: id(HEAD), sha256: SHA, hashedAt: "2026-12-02T16:28:30.076Z" };

  it("answers for the very version it was read from", () => {
    expect(recordedSha256(id(HEAD), recorded)).toBe(SHA);
    expect(recordName(id({ ...HEAD }))).toBe(recordName(id(HEAD)));
  });

  it.each<[string, ObjectIdentity]>([
    ["another ETag (the bytes were replaced)", id({ ...HEAD, ETag: '"0123456789abcdef0123456789abcdef"' })],
    ["another size", id({ ...HEAD, ContentLength: 190082561 })],
    ["another Last-Modified (written again)", id({ ...HEAD, LastModified: new Date("2026-12-02T16:16:07Z") })],
    ["another version", id({ ...HEAD, VersionId: "v2" })],
    ["another key", id(HEAD, { ...WHERE, key: "images/debian-12/x86_64/def.qcow2" })],
    ["another bucket", id(HEAD, { ...WHERE, bucket: "c" })],
    ["another endpoint", id(HEAD, { ...WHERE, endpoint: "http://127.0.0.1:18682" })],
  ])("answers nothing for %s, under another record name", (_, other) => {
    expect(recordedSha256(other, recorded)).toBeUndefined();
    expect(recordName(other)).not.toBe(recordName(id(HEAD)));
  });

  it.each<[string, unknown]>([
    ["nothing", undefined],
    ["not JSON's object", "text"],
    ["no identity", { sha256: SHA }],
    ["no sha256", { identity: id(HEAD) }],
    ["a sha256 that is not one", { identity: id(HEAD), sha256: "f".repeat(63) }],
    ["an upper-case sha256", { identity: id(HEAD), sha256: "F".repeat(64) }],
  ])("answers nothing from a record with %s", (_, record) => {
    expect(recordedSha256(id(HEAD), record)).toBeUndefined();
  });
});
