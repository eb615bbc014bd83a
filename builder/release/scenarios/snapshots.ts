/**
 * Root volume snapshots as the scenarios use them: a snapshot proves itself by a volume made from it holding the
 * marker file, and every snapshot and volume made for that is deleted afterwards, pass or fail.
 */
import { expect } from "../battery-driver";
import type { CycleDriver } from "./cycle-driver";

/** What one snapshot check created, for its cleanup. */
export interface SnapshotWork {
  snapshotId?: string;
  volumeId?: string;
}

/** Makes a volume of the snapshot and attaches it: the disk it became in the guest (detached by the caller). */
export async function attachSnapshotCopy(d: CycleDriver, work: SnapshotWork, label: string): Promise<string> {
  work.volumeId = await d.volumeFromSnapshot(work.snapshotId!, label);
  return d.attachNew(work.volumeId);
}

/** Attaches a volume made of the snapshot and reads the marker from it; the volume stays attached. */
export async function markerInSnapshot(
  d: CycleDriver,
  work: SnapshotWork,
  label: string,
): Promise<{ found: string; dev: string }> {
  const dev = await attachSnapshotCopy(d, work, label);
  return { found: await d.markerOn(dev), dev };
}

/** Deletes what a snapshot check made (the volume first: it was made from the snapshot), logging what fails. */
export async function removeSnapshotWork(d: CycleDriver, work: SnapshotWork): Promise<void> {
  if (work.volumeId)
    await d.deleteVolume(work.volumeId).catch((e: Error) => d.cleanupFailed(`volume ${work.volumeId}`, e));
  if (work.snapshotId)
    await d.deleteSnapshot(work.snapshotId).catch((e: Error) => d.cleanupFailed(`snapshot ${work.snapshotId}`, e));
}

/** The hot snapshot: taken while the server runs, the marker written just before must be in it. */
export async function hotSnapshot(d: CycleDriver): Promise<void> {
  await d.writeMarker();
  const marker = d.markerValue;
  const work: SnapshotWork = {};
  try {
    work.snapshotId = await d.snapshotRoot("hot snapshot");
    await d.snapshotReady(work.snapshotId);
    const { found, dev } = await markerInSnapshot(d, work, "hot snapshot");
    expect(found === marker, `the volume made from the hot snapshot does not hold the marker file (read "${found}")`);
    await d.detachGone(work.volumeId!, dev);
  } finally {
    await removeSnapshotWork(d, work);
  }
}
