/**
 * What a change does to the stacks, for a pull request: the plans before and after (as `image-factory plan --all
 * --json` writes them) compared per stack and zonal image, each rebuild with its reasons. Pure.
 */
import { packageDiffMarkdown, type BuildDiff } from "./package-diff";
import { rebuildReasons, type HashInputs } from "./plan";
import { statusTag } from "./retention";

/** One row of `plan --json`. */
export interface PlanRow {
  stack: string;
  name: string;
  zone: string;
  release: string;
  arch: string;
  contentHash: string;
  artifactKey: string;
  hashInputs: HashInputs;
}

export type Change = "new" | "rebuild" | "unchanged" | "removed";
export interface PlanChange {
  stack: string;
  image: string;
  change: Change;
  reasons: string[];
}

export function diffPlans(previous: PlanRow[], current: PlanRow[]): PlanChange[] {
  const key = (r: PlanRow) => `${r.stack}\0${r.name}`;
  const before = new Map(previous.map((r) => [key(r), r]));
  const after = new Set(current.map(key));
  const changes: PlanChange[] = current.map((r) => {
    const old = before.get(key(r));
    if (!old)
      return {
        stack: r.stack,
        image: r.name,
        change: "new",
        reasons: [
          before.size && [...before.values()].some((p) => p.stack === r.stack) ? "new image in this zone" : "new zone",
        ],
      };
    if (old.contentHash === r.contentHash) return { stack: r.stack, image: r.name, change: "unchanged", reasons: [] };
    return { stack: r.stack, image: r.name, change: "rebuild", reasons: rebuildReasons(old.hashInputs, r.hashInputs) };
  });
  for (const r of previous)
    if (!after.has(key(r)))
      changes.push({
        stack: r.stack,
        image: r.name,
        change: "removed",
        reasons: [
          current.some((c) => c.stack === r.stack)
            ? "no longer shipped (deprecated or removed from the stack)"
            : "stack removed",
        ],
      });
  return changes.sort((a, b) => a.stack.localeCompare(b.stack) || a.image.localeCompare(b.image));
}

/**
 * The report as Markdown for a pull request comment: a summary, then each stack's changes with their reasons, then
 * the package changes of each rebuilt release (`image-factory diff --json` of the builds), kernel and security first.
 */
export function markdownReport(changes: PlanChange[], packageDiffs: BuildDiff[] = []): string {
  const count = (c: Change) => changes.filter((x) => x.change === c).length;
  const lines = [
    "## Image factory plan",
    "",
    `${count("rebuild")} to rebuild, ${count("new")} new, ${count("removed")} to remove, ${count("unchanged")} unchanged, across ${new Set(changes.map((c) => c.stack)).size} stacks.`,
    "",
  ];
  // Reviewers merging a rebuild must know users keep the image that passed until the new one has passed too.
  if (count("rebuild"))
    lines.push(
      `Each rebuilt image starts as a candidate (\`${statusTag("candidate")}\`): the release's current \`${statusTag("released")}\` image stays in place, and is what a lookup by name finds, until the new image's battery passes in its zone (at once where \`runTests\` is off); a failed battery leaves it in place.`,
      "",
    );
  const stacks = [...new Set(changes.map((c) => c.stack))];
  const quiet = stacks.filter((s) => changes.every((c) => c.stack !== s || c.change === "unchanged"));
  for (const stack of stacks.filter((s) => !quiet.includes(s))) {
    lines.push(`### ${stack}`, "", "| image | change | why |", "| --- | --- | --- |");
    for (const c of changes.filter((x) => x.stack === stack && x.change !== "unchanged"))
      lines.push(`| \`${c.image}\` | ${c.change} | ${c.reasons.join("; ").replace(/\|/g, "\\|")} |`);
    lines.push("");
  }
  if (quiet.length) lines.push(`No change in: ${quiet.map((s) => `\`${s}\``).join(", ")}.`, "");
  for (const d of packageDiffs)
    lines.push(
      `### Packages of \`${d.release}\` ${d.arch}${d.from ? ` since \`${d.from.split("/").at(-1)!.slice(0, 16)}\`` : " (first build)"}`,
      "",
      packageDiffMarkdown(d.changes),
    );
  return lines.join("\n");
}
