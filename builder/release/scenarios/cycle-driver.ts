/**
 * The test server as the power-cycle and snapshot scenarios use it: battery-driver.ts's Battery implements it against
 * the API and SSH; the unit tests implement it as a model with one feature broken at a time.
 */
export interface CycleDriver {
  readonly serverId: string;
  /** The value the last `writeMarker` wrote. */
  readonly markerValue: string;
  log(line: string): void;
  /** A removal in a cleanup failed: recorded, it fails the scenarios of the group (battery.ts), beside their verdict. */
  cleanupFailed(what: string, err: Error): void;
  writeMarker(): Promise<void>;
  /** The marker file as the booted system sees it ("" when absent). */
  readMarker(): Promise<string>;
  bootId(): Promise<string>;
  cycleState(): Promise<{ state: string; bootType: string; allowedActions: string[]; rootVolumeId: string }>;
  act(action: "poweroff" | "poweron" | "reboot" | "stop_in_place", expected: string): Promise<void>;
  setBootType(bootType: "local" | "rescue"): Promise<void>;
  forgetFingerprints(): Promise<void>;
  /** Waits for the booted system's published host keys and an SSH login. */
  connect(): Promise<unknown>;
  ensureRunning(): Promise<void>;
  rootFsUuid(): Promise<string>;
  filesystems(uuid: string): Promise<{ device: string; mounted: boolean }[]>;
  headHash(device: string): Promise<string>;
  snapshotRoot(label: string): Promise<string>;
  snapshotReady(snapshotId: string): Promise<void>;
  volumeFromSnapshot(snapshotId: string, label: string): Promise<string>;
  attachNew(volumeId: string): Promise<string>;
  detachGone(volumeId: string, dev: string): Promise<void>;
  markerOn(dev: string): Promise<string>;
  deleteVolume(volumeId: string): Promise<void>;
  deleteSnapshot(snapshotId: string): Promise<void>;
  /** Waits between polls (a plain sleep when absent). */
  pause?(ms: number): Promise<void>;
}
