/**
 * What a `pulumi preview` of a zone stack would do for every release trigger, simulated without the engine
 * (test/support/simulator.ts): two runs of the program under mocks, the providers' replace rules as data. The PR
 * plan report must agree on what rebuilds, and docs/rebuilds.md's "What rebuilds, and why" table is this file's table.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { planStack } from "../../builder/core/plan";
import { diffPlans, type Change, type PlanRow } from "../../builder/core/plan-report";
import { loadCatalog, type Catalog } from "../../images";
import { runStack, type Registration } from "../support/program-run";
import { opsByName, previewAgainst, simulate, type Simulation } from "../support/simulator";
import { editedCatalog, settingsFor } from "./helpers";

const IMAGES = ["debian-12", "ubuntu-24.04", "app-wordpress"];
const STACK = "prod-fr-par-2";
const BASE = { environment: "prod", images: IMAGES };

interface Run {
  settings: Record<string, unknown>;
  catalog?: Catalog;
  stack?: string;
  /** Every planned image's battery passed in the `up` before (the stack's `testedContentHashes`). */
  passed?: boolean;
}
interface Scenario {
  trigger: string;
  /** How to pull it, for docs/rebuilds.md. */
  how: string;
  before: Run | null;
  after: Run | null;
  expected: Record<string, string>;
}

const edited = editedCatalog;

const CHILDREN = ["artifact", "snapshot", "image", "test-server", "tests"] as const;
const each = (id: string, op: (child: (typeof CHILDREN)[number]) => string | null) =>
  Object.fromEntries(CHILDREN.flatMap((c) => (op(c) ? [[`${id}-x86_64-${c}`, op(c)!]] : [])));
const kept = (c: string) => c === "snapshot" || c === "image";
const rebuilt = (id: string, keep = true) => each(id, (c) => (keep && kept(c) ? "replace (retained)" : "replace"));
const retagged = (id: string) => each(id, (c) => (["snapshot", "image", "test-server"].includes(c) ? "update" : null));
/**
 * A released image's test Instance and battery leave the zone; the image, its snapshot and the artifact stay, their
 * `factory:status` tag updated in place from candidate to released.
 */
const done = (c: string) => (c === "test-server" || c === "tests" ? "delete" : kept(c) ? "update" : null);
const created = (id: string) => ({ [`${id}-x86_64`]: "create", ...each(id, () => "create") });
const removed = (id: string, keep = true) => ({
  [`${id}-x86_64`]: "delete",
  ...each(id, (c) => (keep && kept(c) ? "delete (retained)" : "delete")),
});

/** The retention component (named from the stack's zone) comes and goes with its Command; a re-run leaves it as is. */
const retentionCreated = { retention: "create", "retention-fr-par-2": "create" };
const retentionRemoved = { retention: "delete", "retention-fr-par-2": "delete" };

export const SCENARIOS: Scenario[] = [
  {
    trigger: "new upstream build",
    how: "`image-factory check-upstream --write` records it in `images/pins.json` (or edit the serial and checksum there)",
    before: { settings: BASE },
    after: { settings: BASE, catalog: edited("ubuntu-24.04", (r) => (r.upstream.pins.x86_64!.serial = "20261201")) },
    expected: { ...rebuilt("ubuntu-24.04"), ...rebuilt("app-wordpress"), retention: "replace" },
  },
  {
    trigger: "recipe change",
    how: "edit the release's `recipe` in `images/` (an app's own steps or boot-time files under `images/apps/`)",
    before: { settings: BASE },
    after: { settings: BASE, catalog: edited("debian-12", (r) => r.recipe.push({ op: "install", packages: ["vim"] })) },
    expected: { ...rebuilt("debian-12"), retention: "replace" },
  },
  {
    trigger: "new scaleway-ecosystem",
    how: "bump `image-factory:ecosystemVersion`",
    before: { settings: BASE },
    after: { settings: { ...BASE, ecosystemVersion: "1.0.1" } },
    expected: {
      ...rebuilt("debian-12"),
      ...rebuilt("ubuntu-24.04"),
      ...rebuilt("app-wordpress"),
      retention: "replace",
    },
  },
  {
    trigger: "quarterly release",
    how: "bump `image-factory:releaseEpoch` (`2026Q4` → `2027Q1`) in the stacks",
    before: { settings: BASE },
    after: { settings: { ...BASE, releaseEpoch: "2027Q1" } },
    expected: {
      ...rebuilt("debian-12"),
      ...rebuilt("ubuntu-24.04"),
      ...rebuilt("app-wordpress"),
      retention: "replace",
    },
  },
  {
    trigger: "security fix",
    how: "add `debian-12:1` (one image) or `*:1` (all) to `image-factory:securityRebuilds`; bump `n` next time",
    before: { settings: BASE },
    after: { settings: { ...BASE, securityRebuilds: ["debian-12:1"] } },
    expected: { ...rebuilt("debian-12"), retention: "replace" },
  },
  {
    trigger: "tag-only change",
    how: "change a user tag (the stack's `image-factory:environment`, tagged `factory:environment=`)",
    before: { settings: BASE },
    after: { settings: { ...BASE, environment: "production" } },
    expected: { ...retagged("debian-12"), ...retagged("ubuntu-24.04"), ...retagged("app-wordpress") },
  },
  {
    trigger: "image dropped",
    how: "remove it from the stack's `image-factory:images` (or its deprecation reaches the release epoch)",
    before: { settings: BASE },
    after: { settings: { ...BASE, images: ["debian-12", "ubuntu-24.04"] } },
    expected: { ...removed("app-wordpress"), retention: "replace" },
  },
  {
    trigger: "new zone",
    how: "add a stack file",
    before: null,
    after: { settings: BASE },
    expected: { ...created("debian-12"), ...created("ubuntu-24.04"), ...created("app-wordpress"), ...retentionCreated },
  },
  {
    trigger: "zone removed",
    how: "`pulumi destroy` the zone's stack (set `keepPreviousVersions: false` and `up` first to delete its images)",
    before: { settings: BASE },
    after: null,
    expected: { ...removed("debian-12"), ...removed("ubuntu-24.04"), ...removed("app-wordpress"), ...retentionRemoved },
  },
  {
    trigger: "security fix, previous versions not kept",
    how: "as a security fix, in a stack with `image-factory:keepPreviousVersions: false`",
    before: { settings: { ...BASE, keepPreviousVersions: false } },
    after: { settings: { ...BASE, keepPreviousVersions: false, securityRebuilds: ["debian-12:1"] } },
    expected: rebuilt("debian-12", false),
  },
  {
    trigger: "security fix while turning keepPreviousVersions off",
    how: "both in one change: the state still says keep, so the previous image stays (turn it off in an `up` of its own first)",
    before: { settings: BASE },
    after: { settings: { ...BASE, keepPreviousVersions: false, securityRebuilds: ["debian-12:1"] } },
    expected: { ...rebuilt("debian-12"), ...retentionRemoved },
  },
  {
    trigger: "battery passed",
    how: "nothing: the next `up` (`rollout` runs it right after) finds the content hash in the stack's `testedContentHashes` output",
    before: { settings: BASE },
    after: { settings: BASE, passed: true },
    expected: { ...each("debian-12", done), ...each("ubuntu-24.04", done), ...each("app-wordpress", done) },
  },
  {
    trigger: "keepPreviousVersions turned off",
    how: "set `image-factory:keepPreviousVersions: false` (Pulumi records it; nothing is rebuilt)",
    before: { settings: BASE },
    after: { settings: { ...BASE, keepPreviousVersions: false } },
    expected: { ...retentionRemoved },
  },
];

const results = new Map<string, Promise<Simulation>>();
/** The scenario's simulation, computed once per file run. */
function simulated(s: Scenario): Promise<Simulation> {
  if (!results.has(s.trigger))
    results.set(
      s.trigger,
      (async () => {
        const run = (r: Run, preview: boolean, before: Registration[] = []) =>
          runStack(r.stack ?? STACK, settingsFor(r.settings, r.stack ?? STACK), {
            preview,
            catalog: r.catalog,
            answer: preview ? previewAgainst(before) : undefined,
            passed: r.passed ? new Set(planRows(r).map((p) => p.contentHash)) : undefined,
          });
        const before = s.before ? await run(s.before, false) : [];
        const after = s.after ? await run(s.after, true, before) : [];
        return simulate(before, after);
      })(),
    );
  return results.get(s.trigger)!;
}

function planRows(r: Run | null): PlanRow[] {
  if (!r) return [];
  const stack = r.stack ?? STACK;
  return planStack(r.catalog ?? loadCatalog(), settingsFor(r.settings, stack)).map((p) => ({
    stack,
    name: p.name,
    zone: p.zone,
    release: p.release.id,
    arch: p.arch,
    contentHash: p.contentHash,
    artifactKey: p.artifactKey,
    hashInputs: p.hashInputs,
  }));
}

/** What the plan report calls the artifact's fate: a replaced artifact is a rebuild. */
const REPORTED: Record<string, Change> = {
  same: "unchanged",
  update: "unchanged",
  replace: "rebuild",
  create: "new",
  delete: "removed",
};

describe("the simulated preview", () => {
  it.each(SCENARIOS)("$trigger", async (s) => {
    expect(opsByName(await simulated(s))).toEqual(s.expected);
  });

  it.each(SCENARIOS)("agrees with the plan report on $trigger", async (s) => {
    const sim = await simulated(s);
    const bySimulator = Object.fromEntries(
      sim.changes
        .filter((c) => c.name.endsWith("-artifact"))
        .map((c) => [c.name.replace(/-artifact$/, ""), REPORTED[c.op]]),
    );
    const report = Object.fromEntries(diffPlans(planRows(s.before), planRows(s.after)).map((c) => [c.image, c.change]));
    expect(bySimulator).toEqual(report);
  });

  it("replaces in the engine's order: new resources first, old ones deleted at the end, dependents first", async () => {
    const sim = await simulated(SCENARIOS.find((s) => s.trigger === "security fix")!);
    expect(sim.steps.map((s) => `${s.step} ${s.name}${s.retained ? " (retained)" : ""}`)).toEqual([
      "create-replacement debian-12-x86_64-artifact",
      "create-replacement debian-12-x86_64-snapshot",
      "create-replacement debian-12-x86_64-image",
      "create-replacement debian-12-x86_64-test-server",
      "create-replacement debian-12-x86_64-tests",
      "create-replacement retention",
      "delete-replaced retention",
      "delete-replaced debian-12-x86_64-tests",
      "delete-replaced debian-12-x86_64-test-server",
      "delete-replaced debian-12-x86_64-image (retained)",
      "delete-replaced debian-12-x86_64-snapshot (retained)",
      "delete-replaced debian-12-x86_64-artifact",
    ]);
  });

  it("deletes a dropped image's resources dependents first and its component last", async () => {
    const sim = await simulated(SCENARIOS.find((s) => s.trigger === "image dropped")!);
    expect(
      sim.steps
        .filter((s) => s.name.startsWith("app-wordpress"))
        .map((s) => `${s.step} ${s.name}${s.retained ? " (retained)" : ""}`),
    ).toEqual([
      "delete app-wordpress-x86_64-tests",
      "delete app-wordpress-x86_64-test-server",
      "delete app-wordpress-x86_64-image (retained)",
      "delete app-wordpress-x86_64-snapshot (retained)",
      "delete app-wordpress-x86_64-artifact",
      "delete app-wordpress-x86_64",
    ]);
  });
});

/** One docs/rebuilds.md row per scenario, from its simulation. */
function summary(sim: Simulation): string {
  const ops = opsByName(sim);
  const phrases = new Map<string, string[]>();
  for (const id of IMAGES) {
    const mine = Object.fromEntries(
      Object.entries(ops).filter(([n]) => n === `${id}-x86_64` || n.startsWith(`${id}-x86_64-`)),
    );
    if (!Object.keys(mine).length) continue;
    const is = (expected: Record<string, string>) => JSON.stringify(mine) === JSON.stringify(expected);
    const phrase = is(rebuilt(id))
      ? "rebuilt, previous image and snapshot kept"
      : is(rebuilt(id, false))
        ? "rebuilt, previous image and snapshot deleted"
        : is(retagged(id))
          ? "tags updated in place"
          : is(created(id))
            ? "created"
            : is(removed(id))
              ? "removed, image and snapshot kept"
              : is(each(id, done))
                ? "test Instance and battery removed, image and snapshot tagged released"
                : Object.entries(mine)
                    .map(([n, op]) => `${n}: ${op}`)
                    .join(", ");
    phrases.set(phrase, [...(phrases.get(phrase) ?? []), `\`${id}\``]);
  }
  const retention: Record<string, string> = {
    replace: "retention runs again",
    create: "retention created",
    delete: "retention removed",
  };
  const parts = [...phrases].map(([phrase, ids]) => `${ids.join(", ")}: ${phrase}`);
  if (ops.retention) parts.push(retention[ops.retention]!);
  return parts.join("; ") || "nothing";
}

describe("README's rebuild table", () => {
  it("is the simulator's", async () => {
    const rows = ["| trigger | how to pull it | what a preview shows (simulated) |", "| --- | --- | --- |"];
    for (const s of SCENARIOS) rows.push(`| ${s.trigger} | ${s.how} | ${summary(await simulated(s))} |`);
    const readme = readFileSync(join(__dirname, "..", "..", "docs", "rebuilds.md"), "utf8");
    const start = readme.indexOf("| trigger | how to pull it |");
    const table = readme.slice(start).split("\n\n")[0]!.split("\n");
    expect(table).toEqual(rows);
  });
});

describe("the retention Command moved under its component", () => {
  const settings = settingsFor({ ...BASE }, STACK);
  /** The state a stack had before the component: the same Command, at the stack's root. */
  const asShipped = (state: Registration[]) => {
    const component = state.find((r) => r.type === "image-factory:index:Retention")!;
    return state
      .filter((r) => r !== component)
      .map((r) =>
        r.parent === component.urn
          ? { ...r, parent: "", urn: `urn:pulumi:${STACK}::image-factory::${r.type}::${r.name}` }
          : r,
      );
  };
  const moved = async (keepAliases: boolean) => {
    const before = asShipped(await runStack(STACK, settings, { preview: false }));
    const strip = (rs: Registration[]) => (keepAliases ? rs : rs.map((r) => ({ ...r, aliases: [] })));
    const after = strip(await runStack(STACK, settings, { preview: true, answer: previewAgainst(strip(before)) }));
    return simulate(before, after);
  };

  it("keeps the shipped Command (its alias names the old URN): only the component is new", async () => {
    const sim = await moved(true);
    expect(opsByName(sim)).toEqual({ "retention-fr-par-2": "create" });
    expect(sim.steps).toEqual([{ step: "create", name: "retention-fr-par-2" }]);
  });

  it("would run retention again and delete the old Command without the alias", async () => {
    const sim = await moved(false);
    expect(sim.changes.filter((c) => c.name === "retention").map((c) => c.op)).toEqual(["create", "delete"]);
  });
});
