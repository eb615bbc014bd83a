/** The local stack's subcommands: ecosystem-repo, local (the main job), test-local. */
import { writeFileSync } from "node:fs";
import { ENVIRONMENT, register, UsageError } from "./registry";
import { loadCatalog } from "../../images";
import { buildEcosystemRepo } from "../local/ecosystem-repo";
import { runLocalJob } from "../local/local-job";
import { table } from "../core/table";
import { SCENARIOS } from "../release/scenarios/names";
import { str, need, CACHE, APPLIANCE, out } from "./command-inputs";

register("ecosystem-repo", {
  summary:
    "build the factory's scaleway-ecosystem package into a flat APT repository, signed by the committed THROWAWAY test key (builder/local/test-keys/)",
  usage: "image-factory ecosystem-repo --out DIR --version V",
  options: {
    out: { type: "string", value: "DIR", description: "where to write the repository" },
    version: { type: "string", value: "VERSION", description: "the scaleway-ecosystem version to package" },
  },
  async run(v) {
    out({ repository: await buildEcosystemRepo(need(v, "out"), need(v, "version")) });
  },
});

register("local", {
  summary:
    "the local stack's main job: fixture upstream, embedded S3, build and publish every planned image, then release it through the emulated API; independent images at the same time, as cores and memory allow",
  usage: "image-factory local [--no-test] [--images id,...] [--only scenario,...] [--jobs N] [--json]",
  options: {
    json: { type: "boolean", description: "print the results as JSON" },
    "no-test": { type: "boolean", description: "build and publish only: no test Instance, no battery" },
    images: { type: "string", value: "ID,...", description: "only these planned images (release ids); all by default" },
    only: {
      type: "string",
      value: "SCENARIO,...",
      description: `only these battery scenarios (${SCENARIOS.join(", ")})`,
    },
    jobs: {
      type: "string",
      value: "N",
      env: "FACTORY_LOCAL_JOBS",
      description: "at most N steps at once (1: one after another); by default as the cores and memory allow",
    },
  },
  environment: {
    ...CACHE,
    ...APPLIANCE,
    FACTORY_ACCEL: ENVIRONMENT.FACTORY_ACCEL!,
    FACTORY_EMULATOR_NETWORK: ENVIRONMENT.FACTORY_EMULATOR_NETWORK!,
    FACTORY_LOCAL_STATE: ENVIRONMENT.FACTORY_LOCAL_STATE!,
  },
  async run(v) {
    const list = (k: string) =>
      (str(v, k) ?? "")
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean);
    const only = list("only");
    const unknown = only.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
    if (unknown.length)
      throw new UsageError(`--only: unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.join(", ")}`);
    const jobs = str(v, "jobs");
    if (jobs !== undefined && !/^[1-9]\d*$/.test(jobs))
      throw new UsageError(`--jobs: a whole number of at least 1, not "${jobs}"`);
    const results = await runLocalJob({
      test: !v["no-test"],
      only,
      images: list("images"),
      ...(jobs ? { jobs: Number(jobs) } : {}),
    });
    if (v.json) out(results);
    else {
      process.stdout.write(
        `${table(
          ["image", "built", "uploaded MiB", "tests", "build s", "test s", "artifact"],
          results.map((r) => [
            r.image,
            r.error?.startsWith("build skipped")
              ? "skipped"
              : r.error?.startsWith("build:")
                ? "FAILED"
                : r.built
                  ? "yes"
                  : r.uploadedBytes > 0
                    ? "no (cached artifact)"
                    : "no (already in bucket)",
            (r.uploadedBytes / 2 ** 20).toFixed(1),
            r.tests,
            r.buildSeconds.toFixed(0),
            r.testSeconds.toFixed(0),
            r.key,
          ]),
        )}\n`,
      );
      for (const r of results) if (r.error) process.stdout.write(`${r.image}: ${r.error}\n`);
    }
    return results.some((r) => r.tests === "failed" || r.error) ? 1 : 0;
  },
});

register("test-local", {
  summary: "boot a built qcow2 in QEMU (KVM or TCG) and run the in-guest checks over SSH",
  usage: "image-factory test-local <image.qcow2> --release ID [--user debian] [--uefi] [--json] [--console FILE]",
  options: {
    release: { type: "string", value: "ID", description: "the release the image is of: which checks apply" },
    user: {
      type: "string",
      value: "USER",
      description: "the user to log in as; the release's image_original_user by default",
    },
    uefi: { type: "boolean", description: "boot with UEFI firmware instead of BIOS" },
    json: { type: "boolean", description: "print the results as JSON" },
    console: { type: "string", value: "FILE", description: "write the serial console's output to FILE" },
  },
  environment: { ...CACHE, FACTORY_ACCEL: ENVIRONMENT.FACTORY_ACCEL! },
  async run(v, p) {
    const image = p[0];
    if (!image) throw new UsageError("give the qcow2 to boot");
    const releaseId = need(v, "release");
    const release = loadCatalog().byId.get(releaseId);
    if (!release) throw new UsageError(`no release "${releaseId}" in the catalog`);
    // Loaded here: QEMU's and the guest checks' modules are not the main job's (it loads them for a battery).
    const { testLocal } = await import("../release/local-boot.js");
    const { results, console: consoleText } = await testLocal({
      image,
      releaseId,
      user: str(v, "user") ?? release.scs.image_original_user,
      firmware: v.uefi ? "uefi" : "bios",
    });
    if (str(v, "console")) writeFileSync(str(v, "console")!, consoleText);
    if (v.json) out(results);
    else
      process.stdout.write(
        `${table(
          ["check", "result", "seconds", "reason"],
          results.map((r) => [r.name, r.status, r.seconds.toFixed(1), r.reason]),
        )}\n`,
      );
    return results.some((r) => r.status === "fail") ? 1 : 0;
  },
});
