/**
 * Micro benches of single steps, each alternating the two sides on the same input to spread out noise:
 *   customise: our customise step vs bare virt-customize doing the same operations on the same fixture
 *   upload:    our multipart upload vs @aws-sdk/lib-storage's Upload to the same local S3 server
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { randomBytes } from "node:crypto";
import { copyFileSync, createReadStream, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accelerator, guestfsEnv } from "../../builder/system/accel";
import { customiseArgs, customiseImage, type CustomiseInput } from "../../builder/pipeline/customise";
import { run } from "../../builder/system/exec";
import { buildEcosystemRepo } from "../../builder/local/ecosystem-repo";
import { ensureFixture } from "../../builder/local/fixture";
import { serveDirectory } from "../../builder/local/http-server";
import { ensureVersitygw, startS3 } from "../../builder/local/s3-server";
import { s3Client, uploadArtifact } from "../../builder/pipeline/upload";
import { loadCatalog, type OsRelease } from "../../images";
import { median, seconds, type Row } from "./common";

export async function benchCustomise(work: string, rounds: number): Promise<Row> {
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
  // The baseline runs virt-customize directly with the very operations ours runs, so the ratio is our overhead
  // (argument building, process handling) around the one appliance launch.
  const bareArgs = customiseArgs(input);
  const ours: number[] = [];
  const bare: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const a = join(work, `ours-${i}.qcow2`);
      const b = join(work, `bare-${i}.qcow2`);
      copyFileSync(fixture, a);
      copyFileSync(fixture, b);
      ours.push(await seconds(() => customiseImage(a, input, accel)));
      bare.push(
        await seconds(() =>
          run("virt-customize", ["--format", "qcow2", "-a", b, ...bareArgs], { env: guestfsEnv(accel) }),
        ),
      );
      rmSync(a);
      rmSync(b);
      process.stderr.write(
        `bench customise round ${i + 1}: ours ${ours.at(-1)!.toFixed(1)} s, bare ${bare.at(-1)!.toFixed(1)} s\n`,
      );
    }
  } finally {
    await www.close();
  }
  const ratio = median(ours) / median(bare);
  return {
    bench: `customise debian-12 (${accel})`,
    ours: median(ours),
    baseline: median(bare),
    unit: "s",
    ratio,
    goal: "<= 1.15x",
    met: ratio <= 1.15,
    samples: { ours, baseline: bare },
  };
}

export async function benchUpload(work: string, rounds: number): Promise<Row> {
  await ensureVersitygw();
  const s3 = await startS3(join(work, "s3"));
  const bucket = "bench";
  const client = s3Client({ ...s3, bucket });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const file = join(work, "payload.bin");
  // Incompressible bytes, the size of a compressed small cloud image.
  const size = 512 * 2 ** 20;
  writeFileSync(file, randomBytes(size));
  const ours: number[] = [];
  const sdk: number[] = [];
  // Uploads are seconds long and noisy: more rounds, and each side goes first every other round.
  const n = Math.max(rounds, 6);
  const runOurs = async (i: number) =>
    ours.push(await seconds(() => uploadArtifact(client, bucket, `ours-${i}.qcow2`, file, `h${i}`)));
  const runSdk = async (i: number) =>
    sdk.push(
      await seconds(() =>
        new Upload({
          client,
          params: { Bucket: bucket, Key: `sdk-${i}.qcow2`, Body: createReadStream(file) },
          partSize: 64 * 2 ** 20,
          queueSize: 4,
        }).done(),
      ),
    );
  try {
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) {
        await runOurs(i);
        await runSdk(i);
      } else {
        await runSdk(i);
        await runOurs(i);
      }
      process.stderr.write(
        `bench upload round ${i + 1}: ours ${ours.at(-1)!.toFixed(2)} s, lib-storage ${sdk.at(-1)!.toFixed(2)} s\n`,
      );
    }
  } finally {
    await s3.stop();
  }
  const mib = statSync(file).size / 2 ** 20;
  const oursRate = mib / median(ours);
  const sdkRate = mib / median(sdk);
  return {
    bench: `upload ${mib} MiB to local S3`,
    ours: oursRate,
    baseline: sdkRate,
    unit: "MiB/s",
    ratio: oursRate / sdkRate,
    goal: ">= 1.0x",
    met: oursRate >= sdkRate,
    samples: { ours: ours.map((s) => mib / s), baseline: sdk.map((s) => mib / s) },
  };
}
