/**
 * Bench case: our customisation against the Packer way, side by side on the same fixture (issue #15, part 6).
 *
 *   benchCustomiseVsPacker(rounds = 2): Promise<CustomiseVsPackerRow>
 *     { bench: "customise vs packer", ours: s, baseline: s, unit: "s", ratio: ours / baseline,
 *       goal: "<= 0.7x", met: ratio <= 0.7, samples: { ours: number[], baseline: number[] } }
 *   ours and baseline are medians over `rounds`; the two sides alternate which goes first in each round.
 *
 * Ours: the debian-12 recipe through customiseImage (one appliance, no boot), then finalise (package list out,
 * trim, zlib-compressed qcow2), i.e. fixture in, importable artifact out. Packer: Debian's `packer` (1.6.6, qemu
 * builder, TCG, same vCPUs and memory as our appliance) boots the fixture with a NoCloud seed over its HTTP server,
 * runs test/bench/packer/provision.sh over SSH (the same operations), shuts the guest down and writes a compressed
 * qcow2. Both fetch the same packages from the same repositories (this machine's Debian mirror, the local
 * scaleway-ecosystem repository on loopback). Packer must be installed (`apt-get install packer`): the bench's
 * own requirement, not the main job's.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accelerator, applianceSize } from "../../builder/system/accel";
import { customiseImage, type CustomiseInput } from "../../builder/pipeline/customise";
import { run } from "../../builder/system/exec";
import { convertForImport, extractPackagesAndTrim } from "../../builder/pipeline/finalise";
import { buildEcosystemRepo } from "../../builder/local/ecosystem-repo";
import { ensureFixture } from "../../builder/local/fixture";
import { serveDirectory } from "../../builder/local/http-server";
import { projectRoot } from "../../builder/system/paths";
import { loadCatalog, type OsRelease } from "../../images";
import type { Row } from "./common";

/** The bench table's row (test/bench/common.ts), with a baseline measured side by side. */
export type CustomiseVsPackerRow = Row & Required<Pick<Row, "baseline" | "ratio" | "met" | "samples">>;

/** QEMU's user-mode network shows the host's loopback to the guest at this address. */
const SLIRP_HOST = "10.0.2.2";
const GOAL = 0.7;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** A NoCloud seed that lets Packer in with a throwaway key and passwordless sudo, as cloud images expect. */
function writeSeed(dir: string, publicKey: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "meta-data"), "instance-id: packer-bench\nlocal-hostname: packer-bench\n");
  writeFileSync(
    join(dir, "user-data"),
    `#cloud-config\nusers:\n  - name: packer\n    sudo: "ALL=(ALL) NOPASSWD:ALL"\n    shell: /bin/bash\n    ssh_authorized_keys:\n      - ${publicKey}\n`,
  );
}

export async function benchCustomiseVsPacker(rounds = 2): Promise<CustomiseVsPackerRow> {
  await run("packer", ["version"]).catch(() => {
    throw new Error("bench customise vs packer: `packer` is not installed (apt-get install packer)");
  });
  const work = mkdtempSync(join(tmpdir(), "bench-packer-"));
  const fixture = await ensureFixture();
  const accel = await accelerator();
  await buildEcosystemRepo(join(work, "www", "packages"), "1.0.0");
  const www = await serveDirectory(join(work, "www"));
  const debian = loadCatalog().byId.get("debian-12") as OsRelease;
  const input: CustomiseInput = {
    family: "debian",
    upstreamArch: "amd64",
    steps: debian.recipe,
    ecosystem: { repository: `${www.url}/packages`, version: "1.0.0" },
    provenance: { IMAGE_ID: "debian-12", IMAGE_CONTENT_HASH: "bench" },
  };
  const key = join(work, "packer-key");
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "packer-bench", "-f", key]);
  const { smp, memsize } = applianceSize();
  const template = join(projectRoot(), "test", "bench", "packer", "debian-12.json");

  const oursRound = async (i: number) => {
    const disk = join(work, `ours-${i}.qcow2`);
    copyFileSync(fixture, disk);
    const t = await seconds(async () => {
      await customiseImage(disk, input, accel);
      await extractPackagesAndTrim(disk, join(work, `ours-${i}.tsv`), accel);
      await convertForImport(disk, join(work, `ours-${i}.out.qcow2`));
    });
    rmSync(disk, { force: true });
    rmSync(join(work, `ours-${i}.out.qcow2`), { force: true });
    return t;
  };
  const packerRound = async (i: number) => {
    const output = join(work, `packer-${i}`);
    writeSeed(`${output}-http`, readFileSync(`${key}.pub`, "utf8").trim());
    const vars = {
      fixture,
      output,
      cpus: String(smp),
      memory: String(memsize),
      ssh_key: key,
      ecosystem_repo: `http://${SLIRP_HOST}:${new URL(www.url).port}/packages`,
      ecosystem_version: "1.0.0",
    };
    const t = await seconds(() =>
      run(
        "packer",
        ["build", "-color=false", ...Object.entries(vars).flatMap(([k, v]) => ["-var", `${k}=${v}`]), template],
        {
          cwd: join(projectRoot(), "test", "bench", "packer"),
          // No call home to HashiCorp's checkpoint service; the cache stays in the bench's directory.
          env: { ...process.env, CHECKPOINT_DISABLE: "1", PACKER_CACHE_DIR: join(work, "packer_cache") },
        },
      ),
    );
    rmSync(output, { recursive: true, force: true });
    return t;
  };

  const ours: number[] = [];
  const packer: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // Alternate who goes first: the second side of a round finds the mirror's and the page cache's state warmer.
      if (i % 2 === 0) {
        ours.push(await oursRound(i));
        packer.push(await packerRound(i));
      } else {
        packer.push(await packerRound(i));
        ours.push(await oursRound(i));
      }
      process.stderr.write(
        `bench customise vs packer round ${i + 1}: ours ${ours.at(-1)!.toFixed(1)} s, packer ${packer.at(-1)!.toFixed(1)} s\n`,
      );
    }
  } finally {
    await www.close();
    rmSync(work, { recursive: true, force: true });
  }
  const ratio = median(ours) / median(packer);
  return {
    bench: "customise vs packer",
    ours: median(ours),
    baseline: median(packer),
    unit: "s",
    ratio,
    goal: `<= ${GOAL}x`,
    met: ratio <= GOAL,
    samples: { ours, baseline: packer },
  };
}

// Run alone: node dist/test/bench/customise-vs-packer.js [rounds]
if (require.main === module) {
  benchCustomiseVsPacker(Number(process.argv[2] ?? 2)).then(
    (row) => process.stdout.write(`${JSON.stringify(row, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
