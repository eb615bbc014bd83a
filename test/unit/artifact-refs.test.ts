import { describe, expect, it, vi } from "vitest";
import { planAdd, planDrop, RefsRecord } from "../../builder/pipeline/artifact-refs";
import { staleUploads } from "../../builder/pipeline/upload";

const T = Date.parse("2026-12-01T12:00:00Z");
const ago = (ms: number) => new Date(T - ms).toISOString();
const STALE = 10 * 60_000;

describe("planAdd: what a publisher does with the references record", () => {
  it.each<{ name: string; current: RefsRecord | undefined; step: ReturnType<typeof planAdd> }>([
    {
      name: "no record: create it holding the reference",
      current: undefined,
      step: { kind: "write", record: { refs: ["a/x"] } },
    },
    {
      name: "others hold it: add, sorted",
      current: { refs: ["c/x", "b/x"] },
      step: { kind: "write", record: { refs: ["a/x", "b/x", "c/x"] } },
    },
    { name: "already held: nothing to write", current: { refs: ["a/x", "b/x"] }, step: { kind: "held" } },
    {
      name: "a deletion under way: wait for it",
      current: { refs: [], deletingSince: ago(STALE - 1) },
      step: { kind: "wait" },
    },
    {
      name: "a deletion past the threshold: finish it",
      current: { refs: [], deletingSince: ago(STALE) },
      step: { kind: "finish-deletion" },
    },
  ])("$name", ({ current, step }) => {
    expect(planAdd(current, "a/x", T, STALE)).toEqual(step);
  });
});

describe("planDrop: what an unpublisher does with the references record", () => {
  it.each<{ name: string; current: RefsRecord | undefined; step: ReturnType<typeof planDrop> }>([
    {
      name: "others still hold it: drop ours, keep the artifact",
      current: { refs: ["a/x", "b/x"] },
      step: { kind: "write", record: { refs: ["b/x"] }, thenDelete: false },
    },
    {
      name: "the last reference: mark deleting, then delete",
      current: { refs: ["a/x"] },
      step: { kind: "write", record: { refs: [], deletingSince: new Date(T).toISOString() }, thenDelete: true },
    },
    {
      name: "no record: nothing holds the artifact, delete it",
      current: undefined,
      step: { kind: "write", record: { refs: [], deletingSince: new Date(T).toISOString() }, thenDelete: true },
    },
    { name: "held by others only: leave it", current: { refs: ["b/x"] }, step: { kind: "not-held" } },
    {
      name: "being deleted already: nothing to do",
      current: { refs: [], deletingSince: ago(5) },
      step: { kind: "wait" },
    },
  ])("$name", ({ current, step }) => {
    expect(planDrop(current, "a/x", T)).toEqual(step);
  });
});

describe("RefsRecord: the record read from the bucket is validated", () => {
  it.each([
    { raw: { refs: ["a/x"] }, ok: true },
    { raw: { refs: [], deletingSince: "2026-12-01T12:00:00.000Z" }, ok: true },
    { raw: { refs: "a/x" }, ok: false },
    { raw: { refs: [""] }, ok: false },
    { raw: { refs: [], deletingSince: "yesterday" }, ok: false },
  ])("$raw → $ok", ({ raw, ok }) => {
    expect(RefsRecord.safeParse(raw).success).toBe(ok);
  });
});

describe("staleUploads: only uploads at least the threshold old are swept", () => {
  const H = 3600_000;
  it.each([
    { name: "a day and a second old", initiated: new Date(T - 24 * H - 1000), stale: true },
    { name: "exactly the threshold", initiated: new Date(T - 24 * H), stale: true },
    { name: "a second younger than the threshold", initiated: new Date(T - 24 * H + 1000), stale: false },
    { name: "started just now", initiated: new Date(T), stale: false },
    { name: "no initiation date: age unknown, kept", initiated: undefined, stale: false },
  ])("$name", ({ initiated, stale }) => {
    const u = { key: "images/x/y.qcow2", uploadId: "u1", initiated };
    expect(staleUploads([u], T, 24 * H)).toEqual(stale ? [u] : []);
  });
});

describe("publish --stale-upload-hours (FACTORY_STALE_UPLOAD_HOURS)", () => {
  it.each(["0", "-3", "soon"])("refuses %s with a usage error naming the flag and its variable", async (value) => {
    const err: string[] = [];
    const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => (err.push(String(s)), true));
    try {
      const { main } = await import("../../builder/cli.js");
      expect(await main(["publish", `--stale-upload-hours=${value}`])).toBe(2);
    } finally {
      e.mockRestore();
    }
    expect(err.join("")).toContain(
      `--stale-upload-hours (FACTORY_STALE_UPLOAD_HOURS): expected a positive number of hours (got "${value}")`,
    );
  });
});
