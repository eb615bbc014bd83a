/**
 * A diff simulator for tests: what `pulumi preview` would list for a zone stack between two runs of the program,
 * without the engine. The "before" run is an `up` (every output known); the "after" run is a preview whose mocked
 * provider answers as the engine would: an unchanged or updated resource keeps its outputs, a created or
 * replaced one has unknown computed outputs (new id, no stdout), which then changes the inputs of what reads
 * them. Whether a changed input replaces or updates comes from components/replace-rules.ts.
 *
 * Ordering follows the engine: creates, updates and replacements in registration order (which respects
 * dependsOn, parents and property dependencies); a replacement creates the new resource first and deletes the
 * old one at the end, with the deletions, unless deleteBeforeReplace; deletions run dependents first. A
 * resource with retainOnDelete is dropped from the stack but left in the cloud.
 */
import { changeFor } from "../../components/replace-rules";
import { plain, UNKNOWN, upAnswer, type Answer, type Registration } from "./program-run";

export type Op = "same" | "update" | "replace" | "create" | "delete";

export interface ResourceChange {
  urn: string;
  type: string;
  name: string;
  op: Op;
  /** Input paths that differ (for update and replace). */
  paths: string[];
  /** The deletion leaves the cloud resource in place (retainOnDelete). */
  retained?: boolean;
}

export type StepKind = "create" | "update" | "create-replacement" | "delete-replaced" | "delete";
export interface Step {
  step: StepKind;
  name: string;
  retained?: boolean;
}

/** Leaf paths whose values differ, descending into objects (not arrays); an unknown new value differs. */
export function changedPaths(before: unknown, after: unknown, prefix = ""): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
  // An object added or removed counts by its leaves, so rules on nested paths (`import.key`) still apply.
  if (
    (isObject(before) || isObject(after)) &&
    (isObject(before) || before === undefined) &&
    (isObject(after) || after === undefined)
  ) {
    const b = (before ?? {}) as Record<string, unknown>;
    const a = (after ?? {}) as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].sort();
    return keys.flatMap((k) => changedPaths(b[k], a[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [prefix];
}

const containsUnknown = (v: unknown): boolean =>
  v === UNKNOWN ||
  (Array.isArray(v) ? v.some(containsUnknown) : !!v && typeof v === "object" && Object.values(v).some(containsUnknown));

/** What one registration of the after run is, against the before state. */
export function classify(old: Registration | undefined, r: Registration): ResourceChange {
  const base = { urn: r.urn, type: r.type, name: r.name };
  if (!old) return { ...base, op: "create", paths: [] };
  if (!r.custom) return { ...base, op: "same", paths: [] };
  const paths = changedPaths(plain(old.inputs), plain(r.inputs));
  const change = changeFor(r.type, paths);
  return { ...base, op: change === "none" ? "same" : change, paths };
}

/**
 * The mocked provider of the after run: kept resources answer with their `up` outputs, new and replaced ones
 * with unknown outputs. A Command updated with an unknown input gets an unknown stdout (its outputs depend on
 * every input: pulumi-command's WireDependencies).
 */
export function previewAgainst(before: Registration[]): Answer {
  const byUrn = new Map(before.map((r) => [r.urn, r]));
  return (r) => {
    // At its own URN, else where an alias says it was.
    const old = byUrn.get(r.urn) ?? r.aliases.map((a) => byUrn.get(a)).find((x) => x !== undefined);
    const c = classify(old, r);
    if (c.op === "create" || c.op === "replace") return { state: r.inputs };
    const kept = upAnswer(old!);
    if (c.op === "update" && r.type === "command:local:Command" && containsUnknown(r.inputs))
      return { id: kept.id, state: r.inputs };
    return { id: kept.id, state: { ...kept.state, ...r.inputs } };
  };
}

export interface Simulation {
  changes: ResourceChange[];
  steps: Step[];
}

/**
 * The state with every resource that an `after` resource aliases carried over to its new URN, as the engine does
 * (parents and dependencies renamed with it); a resource whose own URN is in the state is not moved.
 */
export function movedByAliases(before: Registration[], after: Registration[]): Registration[] {
  const urns = new Set(before.map((r) => r.urn));
  const moved = new Map<string, string>();
  for (const r of after) {
    if (urns.has(r.urn)) continue;
    const old = r.aliases.find((a) => urns.has(a) && !moved.has(a));
    if (old) moved.set(old, r.urn);
  }
  if (!moved.size) return before;
  const to = (urn: string) => moved.get(urn) ?? urn;
  return before.map((r) => ({ ...r, urn: to(r.urn), parent: to(r.parent), dependencies: r.dependencies.map(to) }));
}

/** The preview of `after` against the state `before` left: per resource, and as the engine's ordered steps. */
export function simulate(shipped: Registration[], after: Registration[]): Simulation {
  const before = movedByAliases(shipped, after);
  const byUrn = new Map(before.map((r) => [r.urn, r]));
  const present = new Set(after.map((r) => r.urn));
  const changes = after.map((r) => classify(byUrn.get(r.urn), r));
  const removed = before.filter((r) => !present.has(r.urn));
  for (const r of removed)
    changes.push({ urn: r.urn, type: r.type, name: r.name, op: "delete", paths: [], retained: r.retainOnDelete });
  // The old side's fate is the state's retainOnDelete, not the program's new one: "the data saved to state defines
  // what we do with the old version" (pulumi/pulumi issue 13428, maintainer's comment).
  for (const c of changes) if (c.op === "replace") c.retained = byUrn.get(c.urn)!.retainOnDelete;

  const steps: Step[] = [];
  const retainedStep = (r: Registration) => (r.retainOnDelete ? { retained: true } : {});
  for (const c of changes.filter((x) => x.op !== "delete")) {
    const old = byUrn.get(c.urn);
    if (c.op === "create") steps.push({ step: "create", name: c.name });
    else if (c.op === "update") steps.push({ step: "update", name: c.name });
    else if (c.op === "replace") {
      const dbr = after.find((r) => r.urn === c.urn)!.deleteBeforeReplace;
      if (dbr) steps.push({ step: "delete-replaced", name: c.name, ...retainedStep(old!) });
      steps.push({ step: "create-replacement", name: c.name });
    }
  }
  // Deletions last: removed resources and the old side of create-before-delete replacements, dependents first.
  const replacedLate = changes
    .filter((c) => c.op === "replace" && !after.find((r) => r.urn === c.urn)!.deleteBeforeReplace)
    .map((c) => c.urn);
  const pending = before.filter((r) => replacedLate.includes(r.urn) || !present.has(r.urn));
  const dependsOn = (r: Registration, urn: string) => r.dependencies.includes(urn) || r.parent === urn;
  while (pending.length) {
    // The last registered resource that nothing pending depends on: reverse registration order among the free.
    const free = pending.filter((r) => !pending.some((o) => o !== r && dependsOn(o, r.urn)));
    const next = free[free.length - 1]!;
    steps.push({ step: present.has(next.urn) ? "delete-replaced" : "delete", name: next.name, ...retainedStep(next) });
    pending.splice(pending.indexOf(next), 1);
  }
  return { changes, steps };
}

/** The op of each resource, by name, leaving out what stays the same. */
export function opsByName(s: Simulation): Record<string, string> {
  return Object.fromEntries(
    s.changes
      .filter((c) => c.op !== "same")
      .map((c) => [c.name, c.retained && c.op !== "update" ? `${c.op} (retained)` : c.op]),
  );
}
