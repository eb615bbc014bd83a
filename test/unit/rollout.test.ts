import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { parseWaves, rollout, rolloutMarkdown, type StackOutcome, type StackRunner } from "../../builder/core/rollout";
import { stackNames } from "../../builder/system/stack-files";

const STACKS = stackNames(join(__dirname, "..", ".."));

describe("rollout waves", () => {
  it("puts the first zone of each region in the canary wave by default", () => {
    expect(parseWaves("prod", STACKS)).toEqual([
      ["prod-fr-par-1", "prod-nl-ams-1", "prod-pl-waw-1"],
      ["prod-fr-par-2", "prod-fr-par-3", "prod-nl-ams-2", "prod-nl-ams-3", "prod-pl-waw-2", "prod-pl-waw-3"],
    ]);
  });

  it("takes waves as given: `,` between waves, `:` between zones", () => {
    const spec = "fr-par-1,nl-ams-1:pl-waw-1,fr-par-2:fr-par-3:nl-ams-2:nl-ams-3:pl-waw-2:pl-waw-3";
    expect(parseWaves("prod", STACKS, spec).map((w) => w.length)).toEqual([1, 2, 6]);
  });

  it.each([
    {
      env: "staging",
      spec: undefined,
      error: 'no stack of environment "staging" (expected stacks named staging-<zone>)',
    },
    {
      env: "prod",
      spec: "fr-par-1:fr-par-9",
      error: '--waves: "fr-par-9" (wave 1) is not a Scaleway Availability Zone',
    },
    { env: "prod", spec: "fr-par-1,fr-par-1", error: "--waves: zone fr-par-1 appears twice" },
    { env: "prod", spec: "fr-par-1,,nl-ams-1", error: "--waves: wave 2 is empty" },
    {
      env: "prod",
      spec: "fr-par-1",
      error:
        "--waves: no wave for prod-fr-par-2, prod-fr-par-3, prod-nl-ams-1, prod-nl-ams-2, prod-nl-ams-3, prod-pl-waw-1, prod-pl-waw-2, prod-pl-waw-3",
    },
  ])("refuses $spec for $env", ({ env, spec, error }) => {
    expect(() => parseWaves(env, STACKS, spec)).toThrow(error);
  });
});

describe("rollout", () => {
  /** Records the order stacks ran in; fails the stacks named. */
  const runner = (failing: string[], ran: string[]): StackRunner => ({
    async run(stack, op): Promise<Omit<StackOutcome, "stack">> {
      const second = ran.includes(`${stack} ${op}`);
      ran.push(`${stack} ${op}`);
      if (failing.includes(stack)) return { ok: false, operations: { create: 1 }, error: "test battery failed" };
      // The second `up` finds the batteries passed and deletes the two test Instances and their Commands.
      return second
        ? { ok: true, operations: { delete: 4, same: 12 } }
        : { ok: true, operations: { replace: 3, same: 2 } };
    },
  });

  it("runs every wave in order when all succeed, each stack's second `up` removing its test Instances", async () => {
    const ran: string[] = [];
    const report = await rollout([["a-1", "b-1"], ["a-2"]], runner([], ran), "up");
    expect(ran).toEqual(["a-1 up", "a-1 up", "b-1 up", "b-1 up", "a-2 up", "a-2 up"]);
    expect(report.stoppedAfter).toBeUndefined();
    expect(report.waves[0]!.outcomes[0]).toEqual({
      stack: "a-1",
      ok: true,
      operations: { replace: 3, delete: 4, same: 12 },
    });
  });

  it("previews each stack once", async () => {
    const ran: string[] = [];
    await rollout([["a-1"], ["a-2"]], runner([], ran), "preview");
    expect(ran).toEqual(["a-1 preview", "a-2 preview"]);
  });

  it("finishes the failing wave, then stops before the next", async () => {
    const ran: string[] = [];
    const report = await rollout(
      [
        ["a-1", "b-1"],
        ["a-2", "b-2"],
      ],
      runner(["a-1"], ran),
      "up",
    );
    expect(ran).toEqual(["a-1 up", "b-1 up", "b-1 up"]);
    expect(report.stoppedAfter).toBe(1);
    expect(rolloutMarkdown(report, 4)).toBe(
      [
        "## Rollout",
        "",
        "### Wave 1",
        "",
        "| stack | result | create | replace | delete | update |",
        "| --- | --- | --- | --- | --- | --- |",
        "| a-1 | failed: test battery failed | 1 | 0 | 0 | 0 |",
        "| b-1 | ok | 0 | 3 | 4 | 0 |",
        "",
        "Stopped after wave 1: 2 stacks not rolled out.",
        "",
      ].join("\n"),
    );
  });

  it("counts a runner that throws as a failed stack", async () => {
    const throwing: StackRunner = {
      run: async () => {
        throw new Error("no Pulumi CLI\nmore");
      },
    };
    const report = await rollout([["a-1"], ["a-2"]], throwing, "preview");
    expect(report.waves[0]!.outcomes).toEqual([{ stack: "a-1", ok: false, operations: {}, error: "no Pulumi CLI" }]);
    expect(report.stoppedAfter).toBe(1);
  });
});
