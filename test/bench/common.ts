/** What every bench case returns and the helpers they share. */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";

export interface Row {
  bench: string;
  /** Our figure (the median where there are several samples). */
  ours: number;
  /** The figure it is compared with, where one fits side by side. */
  baseline?: number;
  unit: string;
  /** ours ÷ baseline, or ours ÷ the goal's bound when there is no baseline. */
  ratio?: number;
  goal: string;
  met?: boolean;
  samples?: Record<string, number[]>;
  /** Anything else worth keeping in the JSON (per-image results, the command run). */
  details?: unknown;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/**
 * Runs a command with our stderr as its stderr (the local job's progress lines), collecting stdout; rejects on a
 * non-zero exit with the command line in the message.
 */
export function runPassingStderr(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ stdout: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "inherit"] });
    const out: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ stdout: Buffer.concat(out).toString("utf8"), code: code ?? -1 }));
  });
}

/**
 * CPU seconds (user + system) of this process's children that have ended and been waited for, from
 * /proc/self/stat (cutime, cstime): a child's own waited-for children are in its figure, so a job's whole process
 * tree is counted. The steadier figure when other work shares the cores. Undefined where there is no /proc.
 */
export function childrenCpuSeconds(): number | undefined {
  try {
    // The fields after the command name, which is in parentheses and may hold spaces: cutime and cstime are the
    // 16th and 17th fields of the line, the 14th and 15th after the name.
    const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    const [cutime, cstime] = [Number(fields[13]), Number(fields[14])];
    return [cutime, cstime, ticks].every(Number.isFinite) && ticks > 0 ? (cutime + cstime) / ticks : undefined;
  } catch {
    return undefined;
  }
}
