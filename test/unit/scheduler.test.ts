import { describe, expect, it } from "vitest";
import {
  decide,
  machineBudget,
  schedule,
  validateSteps,
  type Budget,
  type Snapshot,
  type Step,
} from "../../builder/local/scheduler";
import { jobSteps, stepCost } from "../../builder/local/local-job";
import { LineSplitter, prefixLine, progress } from "../../builder/local/progress";

const core = { cpus: 1, memoryMiB: 2048 };
const step = (id: string, needs: string[] = [], cost = core) => ({ id, needs, cost });
const twoCores: Budget = { cpus: 2, memoryMiB: 16_384 };

describe("what starts now", () => {
  it.each<{ name: string; snap: Snapshot; budget: Budget; start: string[]; skip?: { id: string; reason: string }[] }>([
    {
      name: "independent steps up to the cores",
      snap: { steps: [step("a"), step("b"), step("c")], running: [], finished: {} },
      budget: twoCores,
      start: ["a", "b"],
    },
    {
      name: "nothing beyond the cores while two run",
      snap: { steps: [step("a"), step("b"), step("c")], running: ["a", "b"], finished: {} },
      budget: twoCores,
      start: [],
    },
    {
      name: "the next one when a core frees",
      snap: { steps: [step("a"), step("b"), step("c")], running: ["b"], finished: { a: "done" } },
      budget: twoCores,
      start: ["c"],
    },
    {
      name: "memory bounds too",
      snap: { steps: [step("a"), step("b")], running: [], finished: {} },
      budget: { cpus: 8, memoryMiB: 3000 },
      start: ["a"],
    },
    {
      name: "under KVM two guests share a core",
      snap: {
        steps: [
          step("a", [], { cpus: 0.5, memoryMiB: 2048 }),
          step("b", [], { cpus: 0.5, memoryMiB: 2048 }),
          step("c", [], { cpus: 0.5, memoryMiB: 2048 }),
        ],
        running: [],
        finished: {},
      },
      budget: { cpus: 1, memoryMiB: 16_384 },
      start: ["a", "b"],
    },
    {
      name: "a step cap of 1 runs one after another",
      snap: { steps: [step("a"), step("b")], running: [], finished: {} },
      budget: { ...twoCores, steps: 1 },
      start: ["a"],
    },
    {
      name: "a step costing more than the machine still runs alone",
      snap: { steps: [step("big", [], { cpus: 4, memoryMiB: 2048 })], running: [], finished: {} },
      budget: twoCores,
      start: ["big"],
    },
    {
      name: "…but not beside another",
      snap: { steps: [step("a"), step("big", [], { cpus: 4, memoryMiB: 2048 })], running: ["a"], finished: {} },
      budget: twoCores,
      start: [],
    },
    {
      name: "a later step may pass one that does not fit yet",
      snap: {
        steps: [step("a"), step("big", [], { cpus: 2, memoryMiB: 2048 }), step("c")],
        running: ["a"],
        finished: {},
      },
      budget: twoCores,
      start: ["c"],
    },
    {
      name: "a dependent waits for what it needs",
      snap: {
        steps: [step("build base"), step("build app", ["build base"]), step("test base", ["build base"])],
        running: [],
        finished: {},
      },
      budget: twoCores,
      start: ["build base"],
    },
    {
      name: "…and starts beside its sibling once it is done",
      snap: {
        steps: [step("build base"), step("build app", ["build base"]), step("test base", ["build base"])],
        running: [],
        finished: { "build base": "done" },
      },
      budget: twoCores,
      start: ["build app", "test base"],
    },
    {
      name: "a failed step's dependents are skipped with the reason, transitively; independent ones start",
      snap: {
        steps: [
          step("build base"),
          step("build app", ["build base"]),
          step("test app", ["build app"]),
          step("build other"),
        ],
        running: [],
        finished: { "build base": "failed" },
      },
      budget: twoCores,
      start: ["build other"],
      skip: [
        { id: "build app", reason: "build base failed" },
        { id: "test app", reason: "build app was skipped" },
      ],
    },
    {
      name: "nothing left",
      snap: { steps: [step("a")], running: [], finished: { a: "done" } },
      budget: twoCores,
      start: [],
    },
  ])("$name", ({ snap, budget, start, skip = [] }) => {
    expect(decide(snap, budget)).toEqual({ start, skip });
  });
});

describe("steps that cannot be scheduled", () => {
  it.each<{ name: string; steps: { id: string; needs: string[] }[]; errors: string[] }>([
    { name: "fine", steps: [step("a"), step("b", ["a"])], errors: [] },
    { name: "unknown need", steps: [step("a", ["x"])], errors: ['step "a" needs "x", which is not a step'] },
    { name: "twice", steps: [step("a"), step("a")], errors: ['step "a" is declared twice'] },
    {
      name: "cycle",
      steps: [step("a", ["b"]), step("b", ["a"])],
      errors: ["steps depend on each other in a cycle: a -> b -> a"],
    },
  ])("$name", ({ steps, errors }) => {
    expect(validateSteps(steps)).toEqual(errors);
  });

  it("schedule refuses them before running anything", async () => {
    let ran = false;
    await expect(schedule([{ ...step("a", ["a"]), run: async () => void (ran = true) }], twoCores)).rejects.toThrow(
      /cycle: a -> a/,
    );
    expect(ran).toBe(false);
  });
});

describe("schedule runs real async steps", () => {
  /** Steps that take `ms` each and record how many ran at once. */
  function timed(defs: { id: string; needs?: string[]; ms: number; fail?: boolean }[]) {
    let now = 0;
    let peak = 0;
    const order: string[] = [];
    const steps: Step<string>[] = defs.map((d) => ({
      id: d.id,
      needs: d.needs ?? [],
      cost: core,
      run: async () => {
        now++;
        peak = Math.max(peak, now);
        order.push(`start ${d.id}`);
        await new Promise((r) => setTimeout(r, d.ms));
        now--;
        order.push(`end ${d.id}`);
        if (d.fail) throw new Error(`${d.id} broke`);
        return d.id;
      },
    }));
    return { steps, peak: () => peak, order };
  }

  it("runs two at once on two cores, and never a dependent before what it needs", async () => {
    const t = timed([
      { id: "build base", ms: 20 },
      { id: "build app", needs: ["build base"], ms: 20 },
      { id: "test base", needs: ["build base"], ms: 20 },
      { id: "test app", needs: ["build app"], ms: 5 },
    ]);
    const out = await schedule(t.steps, twoCores);
    expect(t.peak()).toBe(2);
    expect(t.order.slice(0, 2)).toEqual(["start build base", "end build base"]);
    expect(t.order.indexOf("start test app")).toBeGreaterThan(t.order.indexOf("end build app"));
    expect([...out.values()].every((o) => o.status === "done")).toBe(true);
  });

  it("runs one at a time with a cap of one step", async () => {
    const t = timed([
      { id: "a", ms: 5 },
      { id: "b", ms: 5 },
      { id: "c", ms: 5 },
    ]);
    await schedule(t.steps, { ...twoCores, steps: 1 });
    expect(t.peak()).toBe(1);
    expect(t.order).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });

  it("a failing step does not stop an independent one; its dependents are skipped, each reported once", async () => {
    const t = timed([
      { id: "build base", ms: 5, fail: true },
      { id: "build app", needs: ["build base"], ms: 5 },
      { id: "test app", needs: ["build app"], ms: 5 },
      { id: "build other", ms: 30 },
    ]);
    const ends: string[] = [];
    const out = await schedule(t.steps, twoCores, { onEnd: (id, o) => ends.push(`${id}: ${o.status}`) });
    expect(out.get("build base")).toMatchObject({ status: "failed", error: new Error("build base broke") });
    expect(out.get("build app")).toEqual({ status: "skipped", reason: "build base failed" });
    expect(out.get("test app")).toEqual({ status: "skipped", reason: "build app was skipped" });
    expect(out.get("build other")).toMatchObject({ status: "done", value: "build other" });
    expect(ends.sort()).toEqual(["build app: skipped", "build base: failed", "build other: done", "test app: skipped"]);
  });
});

describe("the local job's steps", () => {
  const debian = { name: "debian-12-x86_64", releaseId: "debian-12", arch: "x86_64" };
  const openvpn = { name: "app-openvpn-x86_64", releaseId: "app-openvpn", baseId: "debian-12", arch: "x86_64" };
  it.each([
    {
      name: "an app's build needs its base's build, each battery its own build",
      plans: [debian, openvpn],
      test: true,
      want: [
        ["build debian-12-x86_64", []],
        ["test debian-12-x86_64", ["build debian-12-x86_64"]],
        ["build app-openvpn-x86_64", ["build debian-12-x86_64"]],
        ["test app-openvpn-x86_64", ["build app-openvpn-x86_64"]],
      ],
    },
    {
      name: "no battery with --no-test",
      plans: [debian, openvpn],
      test: false,
      want: [
        ["build debian-12-x86_64", []],
        ["build app-openvpn-x86_64", ["build debian-12-x86_64"]],
      ],
    },
    {
      name: "an app already in the bucket waits for no base: it layers on nothing",
      plans: [debian, { ...openvpn, published: true }],
      test: true,
      want: [
        ["build debian-12-x86_64", []],
        ["test debian-12-x86_64", ["build debian-12-x86_64"]],
        ["build app-openvpn-x86_64", []],
        ["test app-openvpn-x86_64", ["build app-openvpn-x86_64"]],
      ],
    },
    {
      name: "a published base does not spare an unpublished app the wait",
      plans: [{ ...debian, published: true }, openvpn],
      test: false,
      want: [
        ["build debian-12-x86_64", []],
        ["build app-openvpn-x86_64", ["build debian-12-x86_64"]],
      ],
    },
    {
      name: "a base not in this run is no edge",
      plans: [openvpn],
      test: false,
      want: [["build app-openvpn-x86_64", []]],
    },
    {
      name: "a base of another architecture is no edge",
      plans: [{ ...debian, arch: "arm64", name: "debian-12-arm64" }, openvpn],
      test: false,
      want: [
        ["build debian-12-arm64", []],
        ["build app-openvpn-x86_64", []],
      ],
    },
  ])("$name", ({ plans, test, want }) => {
    expect(jobSteps(plans, test).map((s) => [s.id, s.needs])).toEqual(want);
  });
});

describe("what a step of the local job costs", () => {
  it.each([
    ["tcg", "build", false, { cpus: 1, memoryMiB: 2048 }],
    ["kvm", "build", false, { cpus: 0.5, memoryMiB: 2048 }],
    ["tcg", "test", false, { cpus: 1, memoryMiB: 2048 }],
    ["tcg", "build", true, { cpus: 0.5, memoryMiB: 256 }],
    ["kvm", "build", true, { cpus: 0.5, memoryMiB: 256 }],
    // A battery boots a guest whatever the bucket holds.
    ["tcg", "test", true, { cpus: 1, memoryMiB: 2048 }],
  ] as const)("%s %s, artifact in the bucket: %s", (accel, kind, published, want) => {
    expect(stepCost(accel, kind, published)).toEqual(want);
  });
  it("three checks of a second run fit two cores at once, two builds do not", () => {
    const twoCoresTcg = { cpus: 2, memoryMiB: 16_384 };
    const checks = ["a", "b", "c"].map((id) => ({ id, needs: [], cost: stepCost("tcg", "build", true) }));
    const builds = ["a", "b", "c"].map((id) => ({ id, needs: [], cost: stepCost("tcg", "build", false) }));
    expect(decide({ steps: checks, running: [], finished: {} }, twoCoresTcg).start).toEqual(["a", "b", "c"]);
    expect(decide({ steps: builds, running: [], finished: {} }, twoCoresTcg).start).toEqual(["a", "b"]);
  });
});

describe("budget", () => {
  it.each<[number, number, string | undefined, Budget | string]>([
    [2, 20_000, undefined, { cpus: 2, memoryMiB: 18_976 }],
    [2, 20_000, "", { cpus: 2, memoryMiB: 18_976 }],
    [8, 1_500, undefined, { cpus: 8, memoryMiB: 1024 }],
    [2, 20_000, "1", { cpus: 2, memoryMiB: 18_976, steps: 1 }],
    [2, 20_000, "0", 'FACTORY_LOCAL_JOBS (--jobs) must be a whole number of at least 1, not "0"'],
    [2, 20_000, "two", 'FACTORY_LOCAL_JOBS (--jobs) must be a whole number of at least 1, not "two"'],
  ])("%i cores, %i MiB, jobs %s", (cpus, mem, jobs, want) => {
    if (typeof want === "string") expect(() => machineBudget(cpus, mem, jobs)).toThrow(want);
    else expect(machineBudget(cpus, mem, jobs)).toEqual(want);
  });
});

describe("progress lines", () => {
  it("prefix every line with the time since the start and the image and step, aligned", () => {
    const out: string[] = [];
    let t = 1000;
    const p = progress(
      (s) => out.push(s),
      () => t,
      24,
    );
    const build = p.lane("debian-12-x86_64", "build");
    t = 13_400;
    build("publishing");
    t = 75_050;
    p.lane("app-openvpn-x86_64", "test")("booting");
    p.job("done");
    expect(out.join("")).toBe(
      [
        "+   12.4s debian-12-x86_64 build   | publishing",
        "+   74.0s app-openvpn-x86_64 test  | booting",
        "+   74.0s local                    | done",
        "",
      ].join("\n"),
    );
    expect(prefixLine(0, "x", 1, "y")).toBe("+    0.0s x | y");
  });

  it.each<{ name: string; chunks: string[]; want: string[] }>([
    { name: "whole lines", chunks: ["a\nb\n"], want: ["a", "b"] },
    {
      name: "a line split across chunks",
      chunks: ["vir", "t-customize: ok\nnext"],
      want: ["virt-customize: ok", "next"],
    },
    { name: "CRLF and progress bars' CR", chunks: ["a\r\n", "50%\r100%\n"], want: ["a", "50%", "100%"] },
    { name: "blank lines dropped", chunks: ["\n\n  \nx"], want: ["x"] },
  ])("split: $name", ({ chunks, want }) => {
    const got: string[] = [];
    const s = new LineSplitter((l) => got.push(l));
    for (const c of chunks) s.push(c);
    s.flush();
    expect(got).toEqual(want);
  });
});
