/**
 * `catalog` and `plan`: what the catalog holds and what a stack ships, read from the sources without building.
 */
import { readFileSync } from "node:fs";
import { loadCatalog, pinProblems, withOverrides } from "../../images";
import { describePlace, routeBuilds } from "../core/build-hosts";
import type { BuildDiff } from "../core/package-diff";
import { planStack } from "../core/plan";
import { diffPlans, markdownReport, type PlanRow } from "../core/plan-report";
import { scsMetadata } from "../core/scs";
import { table } from "../core/table";
import { projectRoot } from "../system/paths";
import { readStackSettings, stackNames } from "../system/stack-files";
import { register, UsageError } from "./registry";

const PROJECT_DIR = projectRoot();

function print(value: unknown, json: boolean, table: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${table()}\n`);
}

register("catalog", {
  summary: "list every release with its SCS-0102 metadata; exits non-zero on an invalid catalog",
  usage: "image-factory catalog [--json]",
  options: {
    json: { type: "boolean", description: "print JSON (with every architecture's SCS-0102 keys) instead of a table" },
  },
  run(values) {
    const catalog = loadCatalog();
    const rows = catalog.releases.map((r) => ({
      id: r.id,
      label: r.label,
      title: r.title,
      kind: r.kind,
      ...(r.kind === "app" ? { base: r.base } : {}),
      released: r.released,
      eol: r.eol,
      architectures: r.architectures,
      recipe: r.recipe,
      scs: Object.fromEntries(r.architectures.map((arch) => [arch, scsMetadata(catalog, r, arch)])),
    }));
    print(rows, values.json === true, () =>
      table(
        ["id", "label", "arch", "eol", "os_distro", "os_version", "image_source"],
        rows.map((r) => {
          const first = Object.values(r.scs)[0]!;
          return [
            r.id,
            r.label,
            r.architectures.join(","),
            r.eol ?? "rolling",
            first.os_distro,
            first.os_version,
            first.image_source,
          ].map(String);
        }),
      ),
    );
  },
});

register("plan", {
  summary:
    "show what a stack ships: images, content hashes, artifact keys; --against a previous plan: what changes and why",
  usage:
    "image-factory plan --stack NAME [--json]   (or --all)\n       image-factory plan --all --against BASE.json [--markdown] [--package-diffs A.json,...]   (BASE.json: plan --all --json of the base branch; A.json: diff --json of a rebuilt release)",
  options: {
    stack: { type: "string", value: "NAME", description: "the stack to plan (stacks/Pulumi.NAME.yaml)" },
    all: { type: "boolean", description: "plan every stack in stacks/" },
    json: {
      type: "boolean",
      description: "print JSON rows (with each image's hash inputs and pin problems) instead of a table",
    },
    against: {
      type: "string",
      value: "BASE.json",
      description: "compare with a previous `plan --all --json`: what changes and why",
    },
    markdown: { type: "boolean", description: "with --against: the pull request's report, in Markdown" },
    "package-diffs": {
      type: "string",
      value: "A.json,...",
      description: "with --markdown: `image-factory diff --json` outputs of rebuilt releases, shown as package tables",
    },
  },
  run(values) {
    const catalog = loadCatalog();
    const stacks = values.all ? stackNames(PROJECT_DIR) : [String(values.stack ?? "")];
    if (!stacks[0]) throw new UsageError("plan: give --stack NAME or --all");
    // Which host builds what, as the program routes it on this machine ("no host": its preview fails).
    const hostOf = new Map<string, string>();
    const rows: (PlanRow & { pinProblems: string[] })[] = stacks.flatMap((stack) => {
      const settings = readStackSettings(PROJECT_DIR, stack, catalog);
      const seen = withOverrides(catalog, settings);
      const plans = planStack(catalog, settings);
      const routing = routeBuilds(plans, settings.buildHosts);
      for (const p of plans) hostOf.set(`${stack}\0${p.name}`, describePlace(routing.byHash.get(p.contentHash)));
      return plans.map((p) => ({
        stack,
        name: p.name,
        zone: p.zone,
        release: p.release.id,
        arch: p.arch,
        contentHash: p.contentHash,
        artifactKey: p.artifactKey,
        hashInputs: p.hashInputs,
        // What this image's upstream is not yet trusted on (unverified pins, unpinned keys or checksums).
        pinProblems: pinProblems(seen, [{ release: p.release, arch: p.arch }]).map((x) => x.message),
      }));
    });
    const flagged = new Set(rows.flatMap((r) => r.pinProblems));
    if (flagged.size)
      process.stderr.write(
        `warning: ${rows.filter((r) => r.pinProblems.length).length} planned image(s) rest on unverified upstream trust (pinProblems):\n${[...flagged].map((m) => `  ${m}`).join("\n")}\n`,
      );
    if (typeof values.against === "string") {
      let previous: PlanRow[];
      try {
        previous = JSON.parse(readFileSync(values.against, "utf8")) as PlanRow[];
        if (!Array.isArray(previous)) throw new Error("not a list of plan rows");
      } catch (err) {
        throw new UsageError(
          `--against ${values.against}: ${(err as Error).message} (write it with plan --all --json)`,
        );
      }
      const changes = diffPlans(values.all ? previous : previous.filter((r) => stacks.includes(r.stack)), rows);
      if (values.markdown) process.stdout.write(markdownReport(changes, packageDiffFiles(values["package-diffs"])));
      else
        print(changes, values.json === true, () =>
          table(
            ["stack", "image", "change", "why"],
            changes
              .filter((c) => c.change !== "unchanged")
              .map((c) => [c.stack, c.image, c.change, c.reasons.join("; ")]),
          ),
        );
      return;
    }
    print(rows, values.json === true, () =>
      table(
        ["stack", "image", "zone", "content hash", "build host"],
        rows.map((r) => [r.stack, r.name, r.zone, r.contentHash.slice(0, 16), hostOf.get(`${r.stack}\0${r.name}`)!]),
      ),
    );
    // The stack file alone does not give the local job's hashes: it builds its own scaleway-ecosystem and replaces
    // downloads with stand-ins whose digests are only known once made.
    if (stacks.includes("local") && !values.json)
      process.stderr.write(
        "note: the local job adds its ecosystem build and stand-in digests at run time; `image-factory local --no-test --json` prints the keys it builds\n",
      );
  },
});

/** `--package-diffs a.json,b.json`: what `image-factory diff --json` wrote for each rebuilt release. */
function packageDiffFiles(list: unknown): BuildDiff[] {
  if (typeof list !== "string" || !list) return [];
  return list.split(",").map((file) => {
    try {
      const d = JSON.parse(readFileSync(file, "utf8")) as BuildDiff;
      if (typeof d.release !== "string" || !Array.isArray(d.changes))
        throw new Error("not the output of image-factory diff --json");
      return d;
    } catch (err) {
      throw new UsageError(`--package-diffs ${file}: ${(err as Error).message}`);
    }
  });
}
