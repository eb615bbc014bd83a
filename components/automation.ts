/** The rollout's runner on the real engine: Pulumi's Automation API over this project's stacks. */
import * as pulumi from "@pulumi/pulumi";
import type { StackRunner } from "../builder/core/rollout";

export function automationRunner(projectDir: string, onOutput?: (line: string) => void): StackRunner {
  return {
    async run(stackName, op) {
      const stack = await pulumi.automation.LocalWorkspace.selectStack({ stackName, workDir: projectDir });
      if (op === "preview") {
        const r = await stack.preview({ diff: true, onOutput });
        return { ok: true, operations: r.changeSummary };
      }
      const r = await stack.up({ onOutput });
      const ok = r.summary.result === "succeeded";
      return { ok, operations: r.summary.resourceChanges ?? {}, ...(ok ? {} : { error: r.summary.message }) };
    },
  };
}
