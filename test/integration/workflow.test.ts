/**
 * The repository's CI workflow, checked by actionlint (built once from the Go module proxy): the file that
 * ships passes; a broken copy fails with the linter's reason.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ToolError, run } from "../../builder/system/exec";
import { ensureGoTool } from "../../builder/system/go-tools";
import { STACKS } from "./stacks";

const WORKFLOW = join(__dirname, "..", "..", ".github", "workflows", "image-factory.yml");
const work = mkdtempSync(join(tmpdir(), "factory-workflow-"));
let actionlint: string;

beforeAll(async () => {
  actionlint = await ensureGoTool({
    name: "actionlint",
    pkg: "github.com/rhysd/actionlint/cmd/actionlint",
    version: "v1.7.7",
  });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const lint = (file: string) => run(actionlint, ["-no-color", "-shellcheck=", "-pyflakes=", file]);

describe("the CI workflow", () => {
  it("passes actionlint", async () => {
    await expect(lint(WORKFLOW)).resolves.toBeDefined();
  });

  it("fails actionlint when broken, saying where", async () => {
    const broken = join(work, "broken.yml");
    writeFileSync(broken, readFileSync(WORKFLOW, "utf8").replace("needs: canary-wave", "needs: canary-wav"));
    const err = await lint(broken).then(
      () => undefined,
      (e: ToolError) => e,
    );
    expect(err).toBeInstanceOf(ToolError);
    expect(err!.stdout).toMatch(
      /broken\.yml:\d+:\d+: job "remaining-zones" needs job "canary-wav" which does not exist/,
    );
  });

  it("rolls out every production stack, canaries first", () => {
    const text = readFileSync(WORKFLOW, "utf8");
    const waves = [...text.matchAll(/stack: \[([^\]]+)\]/g)].map((m) => m[1]!.split(",").map((s) => s.trim()));
    expect(waves[0]).toEqual(["prod-fr-par-1", "prod-nl-ams-1", "prod-pl-waw-1"]);
    expect(waves.flat().sort()).toEqual(STACKS.filter((s) => s.startsWith("prod-")).sort());
  });

  it("runs retention on a schedule, and only retention", () => {
    const text = readFileSync(WORKFLOW, "utf8");
    expect(text).toMatch(/\n  schedule:\n    - cron: /);
    expect(text).toMatch(/node dist\/builder\/cli\.js retention --stack "\$stack" --apply/);
    const jobs = [...text.matchAll(/\n  ([a-z-]+):\n(?:    .*\n|\n)*?    if: (.*)\n/g)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(jobs)).toMatchObject({
      test: "github.event_name != 'schedule'",
      retention: "github.event_name == 'schedule'",
    });
  });
});
