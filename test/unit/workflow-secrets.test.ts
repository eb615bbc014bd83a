/**
 * Which secrets the CI workflow hands to which job: a job that can run on a pull request runs the pull request's
 * code (`npm ci` scripts, the program, the tests), so it may see only the read-only preview key; no workflow-wide
 * or job-wide `env` may carry a secret at all; write secrets only in jobs bound to the protected `production`
 * Environment; a job holding a secret installs without dependency scripts, never beside the secret; every
 * third-party action is pinned by commit. The check is run on the workflow that ships and on crafted violations.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const WORKFLOW = join(__dirname, "..", "..", ".github", "workflows", "image-factory.yml");

/** Secrets a pull request's code may see: the read-only preview key, the project id (not a credential), the token. */
const PR_ALLOWED = [/^SCW_PREVIEW_[A-Z0-9_]+$/, /^SCW_DEFAULT_PROJECT_ID$/, /^GITHUB_TOKEN$/];
const PR_EVENTS = ["pull_request", "pull_request_target"];

interface Job {
  if?: string;
  needs?: string | string[];
  secrets?: unknown;
  [key: string]: unknown;
}

/** Every string in a parsed YAML value (keys too). */
function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)]);
  return [];
}

/** Every `secrets.NAME` / `secrets['NAME']` in the `${{ }}` expressions of a value, and `*` for the whole context. */
function secretsIn(value: unknown): string[] {
  const found = new Set<string>();
  for (const text of strings(value))
    for (const [, expr] of text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)) {
      for (const m of expr!.matchAll(/\bsecrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_-]*)|\[\s*'([^']+)'\s*\])/g))
        found.add(m[1] ?? m[2]!);
      if (/\bsecrets\b(?!\s*[.[])/.test(expr!)) found.add("*");
    }
  return [...found];
}

function triggers(on: unknown): string[] {
  if (typeof on === "string") return [on];
  if (Array.isArray(on)) return on.map(String);
  return on && typeof on === "object" ? Object.keys(on) : [];
}

/**
 * Whether a job's `if` keeps it off pull requests: a top-level `&&` clause `github.event_name == 'X'` (X not a
 * pull request event) or `github.event_name != 'pull_request'`. Anything else (`||`, other conditions) counts
 * as possibly running on a pull request.
 */
function excludesPullRequests(condition: string | undefined): boolean {
  if (!condition) return false;
  const expr = condition.replace(/^\s*\$\{\{\s*|\s*\}\}\s*$/g, "");
  if (expr.includes("||")) return false;
  return expr.split("&&").some((clause) => {
    const eq = /^\s*\(?\s*github\.event_name\s*==\s*'([^']+)'\s*\)?\s*$/.exec(clause);
    if (eq) return !PR_EVENTS.includes(eq[1]!);
    const ne = /^\s*\(?\s*github\.event_name\s*!=\s*'([^']+)'\s*\)?\s*$/.exec(clause);
    return ne !== null && ne[1] === "pull_request";
  });
}

/** Jobs that can run on a pull request: not excluded by their `if`, nor by a job they need (unless `always()`). */
function pullRequestJobs(jobs: Record<string, Job>): Set<string> {
  const memo = new Map<string, boolean>();
  const runsOnPr = (name: string, seen: string[] = []): boolean => {
    if (memo.has(name)) return memo.get(name)!;
    const job = jobs[name];
    if (!job || seen.includes(name)) return true;
    const cond = job.if ?? "";
    const needs = typeof job.needs === "string" ? [job.needs] : (job.needs ?? []);
    const runsAnyway = /\b(always|failure|cancelled)\s*\(/.test(cond);
    const result = !excludesPullRequests(cond) && (runsAnyway || needs.every((n) => runsOnPr(n, [...seen, name])));
    memo.set(name, result);
    return result;
  };
  return new Set(Object.keys(jobs).filter((n) => runsOnPr(n)));
}

interface Step {
  uses?: string;
  run?: string;
  env?: unknown;
  with?: unknown;
  [key: string]: unknown;
}

/** The protected Environment the write secrets live in, whose rules keep it to reviewed code on main. */
const PROTECTED_ENVIRONMENT = "production";

const environmentOf = (job: Job): string | undefined =>
  typeof job.environment === "string"
    ? job.environment
    : ((job.environment as { name?: string } | undefined)?.name ?? undefined);

/** A step that installs npm dependencies and so runs their install scripts, unless told not to. */
const installsWithScripts = (run: string): boolean =>
  run.split(/&&|;|\n|\|\|/).some((cmd) => /\bnpm\s+(ci|install|i)\b/.test(cmd) && !/--ignore-scripts\b/.test(cmd));

/** The hardening rules for jobs that hold secrets and for every action used, one line per breach. */
function hardeningViolations(jobs: Record<string, Job>): string[] {
  const problems: string[] = [];
  for (const [name, job] of Object.entries(jobs)) {
    const steps = (job.steps as Step[] | undefined) ?? [];
    for (const s of secretsIn(job.env))
      problems.push(`job ${name} holds secrets.${s} job-wide: give it to the one step that needs it`);
    const held = secretsIn(job);
    const write = held.filter((s) => !PR_ALLOWED.some((re) => re.test(s)));
    if (write.length && environmentOf(job) !== PROTECTED_ENVIRONMENT)
      problems.push(
        `job ${name} references ${write.map((s) => (s === "*" ? "the whole secrets context" : `secrets.${s}`)).join(", ")} outside the protected ${PROTECTED_ENVIRONMENT} environment`,
      );
    steps.forEach((step, i) => {
      const what = `job ${name} step ${i + 1}`;
      if (held.length && step.run && installsWithScripts(step.run))
        problems.push(
          `${what} installs npm dependencies with their scripts in a job that holds secrets: add --ignore-scripts`,
        );
      if (secretsIn(step).length && step.run && /\bnpm\s+(ci|install|i)\b/.test(step.run))
        problems.push(`${what} installs npm dependencies beside a secret`);
      const uses = step.uses;
      if (uses && !uses.startsWith("./") && !uses.startsWith("docker://") && !/@[0-9a-f]{40}$/.test(uses))
        problems.push(`${what} uses ${uses}: pin it by commit`);
    });
  }
  return problems;
}

/** What is wrong with a workflow's secrets, one line each; empty when nothing is. */
function secretViolations(text: string): string[] {
  const wf = parse(text) as { on?: unknown; true?: unknown; env?: unknown; jobs?: Record<string, Job> };
  const problems: string[] = [];
  for (const s of secretsIn(wf.env))
    problems.push(`workflow-level env references secrets.${s}: every job would get it`);
  problems.push(...hardeningViolations(wf.jobs ?? {}));
  // YAML 1.1 readers turn a bare `on` key into true; the yaml package (1.2) keeps "on".
  const onPullRequests = triggers(wf.on ?? wf.true).some((t) => PR_EVENTS.includes(t));
  if (!onPullRequests) return problems;
  const jobs = wf.jobs ?? {};
  for (const name of pullRequestJobs(jobs)) {
    if (jobs[name]!.secrets === "inherit") problems.push(`job ${name} runs on pull requests and inherits every secret`);
    for (const s of secretsIn(jobs[name]))
      if (!PR_ALLOWED.some((re) => re.test(s)))
        problems.push(
          `job ${name} runs on pull requests and references ${s === "*" ? "the whole secrets context" : `secrets.${s}`}`,
        );
  }
  return problems;
}

const shipped = readFileSync(WORKFLOW, "utf8");

describe("the CI workflow's secrets", () => {
  it("gives no job that runs on a pull request a write key, the state or its passphrase, and nothing workflow-wide", () => {
    expect(secretViolations(shipped)).toEqual([]);
  });

  it("still gives the deploy and retention jobs what they need, and previews only the preview key", () => {
    const jobs = (parse(shipped) as { jobs: Record<string, Job> }).jobs;
    for (const name of ["canary-wave", "remaining-zones"])
      expect(secretsIn(jobs[name]).sort()).toEqual([
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE",
        "SCW_ACCESS_KEY",
        "SCW_DEFAULT_PROJECT_ID",
        "SCW_SECRET_KEY",
      ]);
    expect(secretsIn(jobs.retention).sort()).toEqual(["SCW_ACCESS_KEY", "SCW_DEFAULT_PROJECT_ID", "SCW_SECRET_KEY"]);
    expect(secretsIn(jobs.preview).sort()).toEqual([
      "SCW_DEFAULT_PROJECT_ID",
      "SCW_PREVIEW_ACCESS_KEY",
      "SCW_PREVIEW_SECRET_KEY",
    ]);
    expect([...pullRequestJobs(jobs)].sort()).toEqual(["comment", "plan", "preview", "test"]);
  });

  // Each crafted workflow is the shipped one with one change: the check must name what that change did.
  const variants: { name: string; edit: (t: string) => string; want: string[] }[] = [
    {
      name: "secrets in the workflow-level env (as before this check)",
      edit: (t) =>
        t.replace(
          "\njobs:\n",
          "\nenv:\n  SCW_SECRET_KEY: ${{ secrets.SCW_SECRET_KEY }}\n  PULUMI_CONFIG_PASSPHRASE: ${{ secrets.PULUMI_CONFIG_PASSPHRASE }}\n\njobs:\n",
        ),
      want: [
        "workflow-level env references secrets.SCW_SECRET_KEY: every job would get it",
        "workflow-level env references secrets.PULUMI_CONFIG_PASSPHRASE: every job would get it",
      ],
    },
    {
      name: "the passphrase given to the preview",
      edit: (t) =>
        t.replace(
          "          SCW_ACCESS_KEY: ${{ secrets.SCW_PREVIEW_ACCESS_KEY }}\n",
          "          SCW_ACCESS_KEY: ${{ secrets.SCW_PREVIEW_ACCESS_KEY }}\n          PULUMI_CONFIG_PASSPHRASE: ${{ secrets.PULUMI_CONFIG_PASSPHRASE }}\n",
        ),
      want: [
        "job preview runs on pull requests and references secrets.PULUMI_CONFIG_PASSPHRASE",
        "job preview references secrets.PULUMI_CONFIG_PASSPHRASE outside the protected production environment",
      ],
    },
    {
      name: "the write key in a test step, bracket syntax",
      edit: (t) =>
        t.replace(
          "        run: sudo --preserve-env=HOME,PATH bash .ci/run\n",
          "        run: sudo --preserve-env=HOME,PATH bash .ci/run\n        env:\n          KEY: ${{ secrets['SCW_SECRET_KEY'] }}\n",
        ),
      want: [
        "job test runs on pull requests and references secrets.SCW_SECRET_KEY",
        "job test references secrets.SCW_SECRET_KEY outside the protected production environment",
      ],
    },
    {
      name: "the whole secrets context dumped in the plan job",
      edit: (t) =>
        t.replace(
          "      - name: Plan of the base branch\n",
          "      - run: echo '${{ toJSON(secrets) }}' > /dev/null\n      - name: Plan of the base branch\n",
        ),
      want: [
        "job plan runs on pull requests and references the whole secrets context",
        "job plan references the whole secrets context outside the protected production environment",
        "job plan step 4 installs npm dependencies with their scripts in a job that holds secrets: add --ignore-scripts",
        "job plan step 6 installs npm dependencies with their scripts in a job that holds secrets: add --ignore-scripts",
      ],
    },
    {
      name: "a deploy wave's secrets job-wide again, outside the protected environment",
      edit: (t) =>
        t.replace(
          "  canary-wave:\n    if: github.event_name == 'push'\n    needs: test\n    runs-on: ubuntu-24.04\n    timeout-minutes: 240\n",
          "  canary-wave:\n    if: github.event_name == 'push'\n    needs: test\n    runs-on: ubuntu-24.04\n    timeout-minutes: 240\n    env:\n      KEY: ${{ secrets.SCW_SECRET_KEY }}\n",
        ),
      want: ["job canary-wave holds secrets.SCW_SECRET_KEY job-wide: give it to the one step that needs it"],
    },
    {
      name: "the retention job unbound from the protected environment",
      edit: (t) => t.replace("    timeout-minutes: 30\n    environment: production\n", "    timeout-minutes: 30\n"),
      want: [
        "job retention references secrets.SCW_ACCESS_KEY, secrets.SCW_SECRET_KEY outside the protected production environment",
      ],
    },
    {
      name: "install scripts run in a deploy job",
      edit: (t) =>
        t.replace(
          "      - run: npm ci --ignore-scripts && npm run build\n      - uses: pulumi",
          "      - run: npm ci && npm run build\n      - uses: pulumi",
        ),
      want: [
        "job canary-wave step 3 installs npm dependencies with their scripts in a job that holds secrets: add --ignore-scripts",
      ],
    },
    {
      name: "npm ci in the step that holds the retention key",
      edit: (t) =>
        t.replace(
          "        run: |\n          status=0",
          "        run: |\n          npm ci --ignore-scripts\n          status=0",
        ),
      want: ["job retention step 4 installs npm dependencies beside a secret"],
    },
    {
      name: "an action by tag",
      edit: (t) =>
        t.replace("uses: pulumi/actions@8582a9e8cc630786854029b4e09281acd6794b58 # v6.6.1", "uses: pulumi/actions@v6"),
      want: ["job preview step 5 uses pulumi/actions@v6: pin it by commit"],
    },
    {
      // remaining-zones has its own push-only condition: it stays off pull requests.
      name: "a deploy wave opened to pull requests",
      edit: (t) =>
        t.replace(
          "  canary-wave:\n    if: github.event_name == 'push'\n",
          "  canary-wave:\n    if: github.event_name == 'push' || github.event_name == 'pull_request'\n",
        ),
      want: [
        "job canary-wave runs on pull requests and references secrets.PULUMI_BACKEND_URL",
        "job canary-wave runs on pull requests and references secrets.PULUMI_CONFIG_PASSPHRASE",
        "job canary-wave runs on pull requests and references secrets.SCW_ACCESS_KEY",
        "job canary-wave runs on pull requests and references secrets.SCW_SECRET_KEY",
      ],
    },
    {
      name: "retention's schedule-only condition dropped",
      edit: (t) => t.replace("    if: github.event_name == 'schedule'\n", ""),
      want: [
        "job retention runs on pull requests and references secrets.SCW_ACCESS_KEY",
        "job retention runs on pull requests and references secrets.SCW_SECRET_KEY",
      ],
    },
  ];

  it.each(variants)("fails on a crafted workflow: $name", ({ edit, want }) => {
    const crafted = edit(shipped);
    expect(crafted).not.toBe(shipped); // the edit applied
    expect(secretViolations(crafted).sort()).toEqual([...want].sort());
  });

  it("follows needs: a job after a push-only job stays off pull requests, unless it runs always()", () => {
    const crafted = shipped.replace(
      "  remaining-zones:\n    if: github.event_name == 'push'\n",
      "  remaining-zones:\n    if: always()\n",
    );
    expect(crafted).not.toBe(shipped);
    expect(secretViolations(crafted)).toContain(
      "job remaining-zones runs on pull requests and references secrets.SCW_SECRET_KEY",
    );
    const needsOnly = shipped.replace(
      "  remaining-zones:\n    if: github.event_name == 'push'\n",
      "  remaining-zones:\n",
    );
    expect(needsOnly).not.toBe(shipped);
    expect(secretViolations(needsOnly)).toEqual([]);
  });

  it("does not flag write secrets when the workflow has no pull request trigger", () => {
    const crafted = shipped
      .replace("  pull_request:\n", "")
      .replace("  canary-wave:\n    if: github.event_name == 'push'\n", "  canary-wave:\n");
    expect(crafted).not.toBe(shipped);
    expect(secretViolations(crafted)).toEqual([]);
  });
});
