/**
 * What the ZonalImage's Scaleway resources do after publish, against the emulated API: import the artifact from
 * Object Storage as a block snapshot, make an Instance image of it, create the test Instance (stopped, as the
 * component does) and run `image-factory test-instance` with the environment the component's test Command gives it.
 * Once the battery passed, the test Instance leaves the zone, as the stack's next `up` removes it. Run again in the
 * same zone, a release adopts what an earlier run left (its state), as a rerun of `up` would: no second of anything.
 */
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { readFileSync } from "node:fs";
import type { Accelerator } from "../system/accel";
import type { Emulator, Fault } from "../emulator/api";
import { run, ToolError } from "../system/exec";
import type { CheckResult } from "../release/guest-checks";
import { LineSplitter } from "./progress";
import { sdkRequests, testEnvironment, type ReleaseSpec } from "../core/release-spec";
import {
  leftovers,
  ReleaseStepError,
  removeTestServer,
  startEmulatedZone,
  zoneContents,
  type EmulatedZone,
  type ReleaseStep,
} from "./release-zone";

export { ReleaseStepError, removeTestServer, startEmulatedZone, type EmulatedZone } from "./release-zone";

export interface EmulatedReleaseOptions {
  stateDir: string;
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  /** The release sequence the ZonalImage maps to Pulumi resources (builder/core/release-spec.ts). */
  spec: ReleaseSpec;
  /** The artifact's build date as publish reported it: the image's SCS image_build_date tag. */
  buildDate: string;
  accel: Accelerator;
  cli: string;
  dnsNames: string[];
  only?: string[];
  /** Where the test Command writes its JSON report. */
  reportFile: string;
  log: (line: string) => void;
  /** Faults the emulated API injects (tests only: builder/emulator/faults.ts). */
  faults?: Fault[];
  /** Called with the emulator once it is up, for a test to read its faults' hits before it closes. */
  onEmulator?: (emulator: Emulator) => void;
  /** How long the snapshot import may take, in seconds (900 by default). */
  importTimeoutS?: number;
  /** Third octet of the 127.0.N.x public IPs: releases running at once need one each (the battery's ports). */
  publicNet?: number;
  /**
   * The zone to release in, left open afterwards, for a rerun to meet what this run left (tests); by default a zone
   * of the release's own, closed at its end. `faults` are added to either.
   */
  zone?: EmulatedZone;
}

export interface EmulatedReleaseResult {
  imageId: string;
  serverId: string;
  passed: boolean;
  results: CheckResult[];
  /** What the battery created and did not remove (each scenario must clean up, even when it fails). */
  leftovers: string[];
}

export async function releaseThroughEmulator(o: EmulatedReleaseOptions): Promise<EmulatedReleaseResult> {
  const z =
    o.zone ??
    (await startEmulatedZone({
      stateDir: o.stateDir,
      zone: o.spec.zone,
      s3: o.s3,
      accel: o.accel,
      publicNet: o.publicNet,
    }));
  const emulator = z.emulator;
  for (const f of o.faults ?? []) emulator.faults.add(f);
  o.onEmulator?.(emulator);
  try {
    const { client, state } = z;
    const block = new Blockv1.API(client);
    const instance = new Instancev1.API(client);
    const requests = sdkRequests(o.spec, z.projectId, o.buildDate);
    const zone = o.spec.zone;
    // What this run made or adopted, undone in reverse when a later step fails, as a failed `up` must not leave
    // orphans; what an undo cannot remove stays in the state, for the rerun to adopt rather than duplicate.
    const made: { what: string; key: keyof typeof state; undo: () => Promise<unknown> }[] = [];
    const step = async <T>(name: ReleaseStep, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        const failed: string[] = [];
        for (const m of made.reverse())
          await m.undo().then(
            () => delete state[m.key],
            (e: Error) => failed.push(`removing the ${m.what}: ${e.message}`),
          );
        throw new ReleaseStepError(name, zone, err as Error, await zoneContents(client, zone), failed);
      }
    };
    /** The resource an earlier run left in the state, if it is still there and fit to adopt; else it is removed. */
    const adopt = async <T>(
      key: keyof typeof state,
      get: (id: string) => Promise<T>,
      fit: (r: T) => boolean,
      remove: (id: string) => Promise<unknown>,
    ): Promise<T | undefined> => {
      const id = state[key];
      if (!id) return undefined;
      const found = await get(id).catch((e: Error & { status?: number }) =>
        e.status === 404 ? undefined : Promise.reject(e),
      );
      if (found && fit(found)) {
        o.log(`scaleway: adopting the ${key} ${id} an earlier run left`);
        return found;
      }
      if (found) await remove(id);
      delete state[key];
      return undefined;
    };
    o.log(
      `scaleway: importing s3://${o.spec.snapshot.import.bucket}/${o.spec.snapshot.import.key} as a block snapshot`,
    );
    const snap = await step("import", async () => {
      const own = (id: string) => {
        state.snapshot = id;
        made.push({
          what: `snapshot ${id}`,
          key: "snapshot",
          undo: () => block.deleteSnapshot({ zone, snapshotId: id }),
        });
      };
      const earlier = await adopt(
        "snapshot",
        (snapshotId) => block.getSnapshot({ zone, snapshotId }),
        // In use: by the image an earlier run made of it.
        (x) => x.status === "available" || x.status === "in_use",
        (snapshotId) => block.deleteSnapshot({ zone, snapshotId }),
      );
      if (earlier) return (own(earlier.id), earlier);
      const imported = await block.importSnapshotFromObjectStorage(requests.importSnapshot);
      own(imported.id);
      const ready = await block
        .waitForSnapshot(
          { zone, snapshotId: imported.id },
          { timeout: o.importTimeoutS ?? 900, minDelay: 1, maxDelay: 5 },
        )
        .catch((err: Error) =>
          Promise.reject(
            new Error(`snapshot ${imported.id} not available after ${o.importTimeoutS ?? 900} s: ${err.message}`),
          ),
        );
      if (ready.status !== "available") throw new Error(`snapshot import ended ${ready.status}`);
      return ready;
    });
    const image = await step("image", async () => {
      const created =
        (await adopt(
          "image",
          async (imageId) => (await instance.getImage({ zone, imageId })).image!,
          (x) => x.state === "available" && x.rootVolume?.id === snap.id,
          (imageId) => instance.deleteImage({ zone, imageId }),
        )) ?? (await instance.createImage(requests.createImage(snap.id))).image!;
      state.image = created.id;
      made.push({
        what: `image ${created.id}`,
        key: "image",
        undo: () => instance.deleteImage({ zone, imageId: created.id }),
      });
      return created;
    });
    const server = await step("server create", async () => {
      let created: Instancev1.Server | undefined;
      if (state.server) {
        const earlier = await instance.getServer({ zone, serverId: state.server }).then(
          (r) => r.server,
          (e: Error & { status?: number }) => (e.status === 404 ? undefined : Promise.reject(e)),
        );
        if (earlier?.image?.id === image.id) {
          o.log(`scaleway: adopting the test server ${earlier.id} an earlier run left`);
          created = earlier;
        }
      }
      // A server of another image, or one whose removal stopped half-way: removed before its successor comes.
      if (!created && (state.server || state.rootVolume)) await removeTestServer(client, zone, state.server, state);
      created ??= (await instance.createServer(requests.createServer(image.id))).server!;
      state.server = created.id;
      state.rootVolume = created.volumes["0"]?.id;
      return created;
    });
    o.log(`scaleway: image ${image.id}, test server ${server.id}: running the battery`);
    let passed = true;
    try {
      // The test Command's environment, written as the component writes it.
      const env = testEnvironment(o.spec, {
        serverId: server.id,
        accessKey: z.accessKey,
        secretKey: z.secretKey,
        projectId: z.projectId,
        apiUrl: emulator.url,
        dnsNames: o.dnsNames,
        only: o.only?.length ? o.only : undefined,
        report: o.reportFile,
      });
      const lines = new LineSplitter(o.log);
      try {
        await run(process.execPath, [o.cli, "test-instance"], {
          env: { ...process.env, ...env },
          onStderr: (d) => lines.push(d),
        });
      } finally {
        lines.flush();
      }
    } catch (err) {
      if (!(err instanceof ToolError) || err.code !== 1) throw err;
      passed = false;
      o.log(`scaleway: test server console tail:\n${emulator.console(server.id).slice(-2000)}`);
    }
    const report = JSON.parse(readFileSync(o.reportFile, "utf8")) as { results: CheckResult[] };
    const left = await leftovers(client, zone, { snapshot: snap.id, image: image.id, server: server.id });
    // The stack's second `up`: a passed content hash no longer declares its test Instance, so the provider deletes
    // it and its root volume. The battery must have left it as declared (stopped), or that `up` would see drift.
    if (passed) left.push(...(await removeTestServer(client, zone, server.id, state)));
    return { imageId: image.id, serverId: server.id, passed, results: report.results, leftovers: left };
  } finally {
    if (!o.zone) await emulator.close();
  }
}
