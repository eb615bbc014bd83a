/**
 * Build hosts for real: two sshd build hosts on loopback (their own host keys, `AcceptEnv FACTORY_* AWS_*` as the
 * host preparation sets), the CLI run on them over SSH with the contract's environment as the remote Command
 * passes it, against the local stack's stand-ins (fixture mirror, ecosystem repository, embedded S3).
 * Cost: one publish of the local stack's debian-12 through a host (a build only when the per-user cache lacks it),
 * failures in seconds; in the slow lane, two real TCG builds at once (debian-12 and its security rebuild).
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildHostError, runOnHost } from "../../builder/pipeline/build-host-ssh";
import { recordKey } from "../../builder/pipeline/artifact-refs";
import { doctorHost } from "../../builder/cli/doctor-host";
import { buildHostEnv, HOST_CLI as CLI, type BuildHostEnv } from "../support/build-host-env";
import { SLOW_TESTS } from "../support/slow";

let e: BuildHostEnv;
let hosts: BuildHostEnv["hosts"];
let work: string;
const target: BuildHostEnv["target"] = (h, over) => e.target(h, over);
const plan = (n: number) => e.plan(n);
const env = (p: Parameters<BuildHostEnv["env"]>[0]) => e.env(p);
const exists = (k: string) => e.exists(k);

beforeAll(async () => {
  e = await buildHostEnv(2);
  ({ hosts, work } = e);
}, 600_000);

afterAll(async () => {
  await e?.stop();
});

describe("SSH build hosts", () => {
  // Two real builds at once: with FACTORY_SLOW_TESTS=1 only (test/support/slow.ts).
  it.skipIf(!SLOW_TESTS)(
    "two hosts build two artifacts at once, each published with its reference",
    async () => {
      const [a, b] = [plan(0), plan(1)];
      expect(a.contentHash).not.toBe(b.contentHash);
      // Each host with an empty artifact cache of its own: a real build, not a cached file.
      const jobs = [
        { host: hosts[0]!, p: a, cache: join(work, "cache-a") },
        { host: hosts[1]!, p: b, cache: join(work, "cache-b") },
      ].map(async ({ host, p, cache }) => {
        const vars = env(p);
        const command = `FACTORY_CACHE='${cache}' ${CLI} publish`;
        // Secrets travel as environment requests, never on the command line.
        expect(command).not.toContain(vars.AWS_SECRET_ACCESS_KEY!);
        const started = Date.now();
        const r = await runOnHost(target(host), command, vars, { streamStderr: true });
        return { ...r, started, ended: Date.now() };
      });
      const [ra, rb] = await Promise.all(jobs);
      for (const r of [ra!, rb!]) expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(ra!.stdout)).toMatchObject({ key: a.artifactKey, contentHash: a.contentHash, built: true });
      expect(JSON.parse(rb!.stdout)).toMatchObject({ key: b.artifactKey, contentHash: b.contentHash, built: true });
      // At once: each started before the other ended.
      expect(ra!.started < rb!.ended && rb!.started < ra!.ended).toBe(true);
      for (const p of [a, b]) {
        expect(await exists(p.artifactKey), p.artifactKey).toBe(true);
        expect(await exists(recordKey(p.artifactKey)), recordKey(p.artifactKey)).toBe(true);
      }
    },
    1_500_000,
  );

  // The remote path in every run: the local stack's debian-12 through one host with the per-user artifact cache
  // (which the main job's test shares: built once per content hash on a machine, then reused). What is proved is the
  // road (the pinned host key, the contract's environment over SSH, the CLI there, the bucket and its reference).
  it("publishes through an SSH host: the CLI run there with the contract's environment, the artifact and its reference in the bucket", async () => {
    const p = plan(0);
    const vars = env(p);
    const command = `${CLI} publish`;
    expect(command).not.toContain(vars.AWS_SECRET_ACCESS_KEY!);
    const r = await runOnHost(target(hosts[0]!), command, vars, { streamStderr: true });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ key: p.artifactKey, contentHash: p.contentHash });
    expect(await exists(p.artifactKey), p.artifactKey).toBe(true);
    expect(await exists(recordKey(p.artifactKey)), recordKey(p.artifactKey)).toBe(true);
  });

  it("refuses a host whose key is not the pinned one, and publishes nothing", async () => {
    const p = plan(2);
    // Host 0 at its address, but host 1's key pinned: what a man in the middle looks like.
    await expect(
      runOnHost(target(hosts[0]!, { hostKey: hosts[1]!.hostKey }), `${CLI} publish`, env(p)),
    ).rejects.toThrow(
      new BuildHostError(
        `build host root@127.0.0.1:${hosts[0]!.port}: its host key is not the pinned ssh-ed25519 key: refusing to connect (nothing ran there)`,
      ),
    );
    expect(await exists(p.artifactKey)).toBe(false);
    expect(await exists(recordKey(p.artifactKey))).toBe(false);
  });

  it("fails clearly on a dead host, and publishes nothing", async () => {
    const p = plan(3);
    const dead = { ...hosts[1]!, port: 1 };
    await expect(runOnHost(target(dead), `${CLI} publish`, env(p))).rejects.toThrow(
      /^build host root@127\.0\.0\.1:1: unreachable \(.*Connection refused\): nothing ran there$/,
    );
    expect(await exists(p.artifactKey)).toBe(false);
  });

  it("doctor --host probes a host for real: what this machine lacks for a build host, and nothing else", async () => {
    const problems = (await doctorHost(target(hosts[0]!), "x86_64", "0".repeat(64), "here")).map((f) => f.problem);
    // This machine: x86_64 (no finding), sshd accepting FACTORY_* (no finding), no CLI installed as a host's.
    expect(problems).toContain("here: has no image-factory on PATH");
    expect(problems.filter((p) => /architecture|FACTORY_/.test(p))).toEqual([]);
    const arm = (await doctorHost(target(hosts[0]!), "arm64", "0".repeat(64), "here")).map((f) => f.problem);
    expect(arm).toContain("here: is x86_64, not aarch64: libguestfs customises only guests of its own architecture");
  });

  it("needs the host's AcceptEnv: without it the CLI gets no contract and refuses before any work", async () => {
    const bare = await e.startHost(false);
    try {
      const p = plan(4);
      const r = await runOnHost(target(bare), `${CLI} publish`, env(p));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/FACTORY_/);
      expect(await exists(p.artifactKey)).toBe(false);
    } finally {
      await bare.stop();
    }
  });
});
