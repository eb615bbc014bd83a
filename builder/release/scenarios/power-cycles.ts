/**
 * The scenarios that power-cycle the test server, grouped so that one cycle serves every check that can share it.
 * Each boot under TCG costs a minute or more, so the battery spends them like this:
 *
 * - stop in place: `stop_in_place`, then `poweron` from "stopped in place" (its own path: "starting in place",
 *   the node kept), so it keeps its own cycle.
 * - archive, cold snapshot, rescue and reboot share one `poweroff`: while the server is stopped (archive's state)
 *   the root volume is snapshotted (cold snapshot); `poweron` boots the rescue system, which finds the root volume
 *   attached, unmounted and bit for bit what the cold snapshot holds (rescue, and the snapshot's content); the
 *   `reboot` back to local boot must bring a new boot id and the marker written before the power-off (reboot,
 *   archive, and rescue's way back).
 *
 * Every check names the scenario it proves, and a scenario passes only on its own checks (verdicts.ts). A marker
 * written at the start of each cycle carries a fresh value, so no cycle passes on an earlier cycle's data.
 */
import { sleep } from "../battery-driver";
import type { CycleDriver } from "./cycle-driver";
import { attachSnapshotCopy, removeSnapshotWork, type SnapshotWork } from "./snapshots";
import type { Verdicts } from "./verdicts";

export type { CycleDriver } from "./cycle-driver";

/** Boots of the test server a group costs for the wanted scenarios (the rescue system's counts as one). */
export function cycleBoots(group: "stop in place" | "stopped and rescued", v: Pick<Verdicts, "wants">): number {
  if (group === "stop in place") return v.wants("stop in place") ? 1 : 0;
  const stop = v.wants("archive") || v.wants("cold snapshot") || v.wants("rescue");
  return (stop ? 1 : 0) + (v.wants("rescue") || v.wants("reboot") ? 1 : 0);
}

export async function stopInPlace(d: CycleDriver, v: Verdicts): Promise<void> {
  await d.writeMarker();
  const marker = d.markerValue;
  await d.act("stop_in_place", "stopped in place");
  const s = await d.cycleState();
  v.check(
    "stop in place",
    s.allowedActions.includes("poweron"),
    `a server stopped in place does not allow poweron (${s.allowedActions.join(", ")})`,
  );
  await d.act("poweron", "running");
  await d.connect();
  v.check(
    "stop in place",
    (await d.readMarker()) === marker,
    "data written before stop in place is gone after poweron",
  );
  v.done("stop in place");
}

/** A reboot shows in a new boot id; the state may read "running" a moment before the guest restarted. */
async function rebootedFrom(d: CycleDriver, before: string[]): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const now = await d.bootId().catch(() => before[0]!);
    if (!before.includes(now)) return now;
    await (d.pause ? d.pause(3000) : sleep(3000));
    await d.connect();
  }
  return before[0]!;
}

export async function stoppedAndRescued(d: CycleDriver, v: Verdicts): Promise<void> {
  const rescue = v.wants("rescue");
  const cold = v.wants("cold snapshot") || rescue;
  const stop = v.wants("archive") || cold;
  await d.writeMarker();
  const marker = d.markerValue;
  const boots = [await d.bootId()];
  const uuid = rescue ? await d.rootFsUuid() : "";
  const work: SnapshotWork = {};
  let inRescue = false;
  try {
    if (rescue) {
      await d.setBootType("rescue");
      // The rescue system publishes its own host key: the image's must not vouch for it.
      await d.forgetFingerprints();
    }
    if (stop) {
      await d.act("poweroff", "stopped");
      const s = await d.cycleState();
      v.check(
        "archive",
        s.allowedActions.includes("poweron"),
        `a stopped server does not allow poweron (${s.allowedActions.join(", ")})`,
      );
      if (cold) {
        work.snapshotId = await d.snapshotRoot("cold snapshot");
        await d.snapshotReady(work.snapshotId);
      }
      await d.act("poweron", "running");
      inRescue = rescue;
      await d.connect();
      boots.push(await d.bootId());
      let rootHash = "";
      if (rescue) {
        const state = await d.cycleState();
        v.check("rescue", state.bootType === "rescue", `boot type is ${state.bootType} after switching to rescue`);
        v.check(
          "rescue",
          (await d.readMarker()) === "",
          "the system booted in rescue mode holds the marker file: it is the Instance's own volume, not a rescue system",
        );
        const found = await d.filesystems(uuid);
        v.check(
          "rescue",
          found.length === 1,
          `the root file system ${uuid} shows on ${found.length} devices in rescue mode, expected 1 (the root volume)`,
        );
        v.check(
          "rescue",
          found.every((f) => !f.mounted),
          `the root volume is mounted in rescue mode (${found.map((f) => f.device).join(", ")}): it must be left alone`,
        );
        if (found.length === 1) rootHash = await d.headHash(found[0]!.device);
      }
      if (cold) {
        const dev = await attachSnapshotCopy(d, work, "cold snapshot");
        if (rescue && rootHash) {
          // Hashed before anything mounts it; the copy's file system carries the root's UUID.
          const copy = (await d.filesystems(uuid)).find((f) => f.device.startsWith(dev));
          const copyHash = copy ? await d.headHash(copy.device) : "";
          v.check(
            "rescue",
            copyHash === rootHash,
            "the root volume seen from rescue mode differs from the cold snapshot taken at power-off: the rescue boot wrote to it",
          );
        }
        const found = await d.markerOn(dev);
        v.check(
          "cold snapshot",
          found === marker,
          `the volume made from the cold snapshot does not hold the marker file (read "${found}")`,
        );
        await d.detachGone(work.volumeId!, dev);
        v.done("cold snapshot");
      }
      if (!rescue) {
        v.check("archive", (await d.readMarker()) === marker, "data is gone after archive (poweroff) and poweron");
        v.done("archive");
      }
    }
    if (rescue || v.wants("reboot")) {
      if (rescue) {
        await d.setBootType("local");
        await d.forgetFingerprints();
      }
      await d.act("reboot", "running");
      await d.connect();
      inRescue = false;
      const now = await rebootedFrom(d, boots);
      v.check("reboot", !boots.includes(now), "the boot id never changed: the server did not reboot");
      const after = await d.readMarker();
      v.check("reboot", after === marker, "the marker file did not survive the reboot");
      if (rescue) {
        const state = await d.cycleState();
        v.check("rescue", state.bootType === "local", `boot type is ${state.bootType} after switching back to local`);
        v.check("rescue", after === marker, "after leaving rescue mode the Instance does not boot its own volume");
        v.check("archive", after === marker, "data is gone after archive (poweroff) and poweron");
        v.done("archive");
      }
      v.done("reboot");
      v.done("rescue");
    }
  } finally {
    await removeSnapshotWork(d, work);
    if (rescue) {
      await d.setBootType("local").catch((e: Error) => d.cleanupFailed("boot type", e));
      if (inRescue) {
        await d.forgetFingerprints();
        await d.act("reboot", "running").catch((e: Error) => d.cleanupFailed("reboot out of rescue", e));
      }
    }
  }
}
