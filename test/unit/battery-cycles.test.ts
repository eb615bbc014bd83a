/**
 * The power-cycle scenarios against a model of the test server, right and broken: each scenario must fail when
 * the API or the guest gives the wrong answer for its feature (a mutation), pass when all is right, and every
 * snapshot and volume a check made must be gone afterwards, pass or fail.
 */
import { describe, expect, it } from "vitest";
import { ScenarioFailure } from "../../builder/release/battery-driver";
import { plannedBoots } from "../../builder/release/battery";
import { stopInPlace, stoppedAndRescued, type CycleDriver } from "../../builder/release/scenarios/power-cycles";
import { hotSnapshot } from "../../builder/release/scenarios/snapshots";
import { SCENARIOS, Verdicts, type ScenarioName } from "../../builder/release/scenarios/verdicts";

type Fault =
  | "stop in place stops fully"
  | "stop in place loses data"
  | "poweroff loses data"
  | "stopped server refuses poweron"
  | "snapshot misses the marker"
  | "rescue boots the image"
  | "rescue mounts the root volume"
  | "rescue lacks the root volume"
  | "reboot does nothing"
  | "reboot loses data"
  | "boot type stays rescue"
  | "volume deletion fails";

interface Disk {
  marker: string;
  head: string;
  dev?: string;
}

/** A test server as the scenarios see it through the API and SSH; `fault` breaks one feature. */
class FakeServer implements CycleDriver {
  readonly serverId = "server";
  markerValue = "";
  state = "running";
  bootType: "local" | "rescue" = "local";
  booted: "local" | "rescue" = "local";
  boots = 0;
  mounts = 0;
  root: Disk = { marker: "", head: "head-0", dev: "/dev/vda" };
  snapshots = new Map<string, Disk>();
  volumes = new Map<string, Disk>();
  lines: string[] = [];
  cleanupFailures: string[] = [];
  private n = 0;
  constructor(readonly fault?: Fault) {}

  private id = (kind: string) => `${kind}-${++this.n}`;
  /** Mounting a file system read-write changes its superblock. */
  private mountRoot = () => (this.root.head = `head-${++this.mounts}`);
  private boot(type: "local" | "rescue") {
    this.booted = this.fault === "rescue boots the image" ? "local" : type;
    this.boots++;
    if (this.booted === "local" || this.fault === "rescue mounts the root volume") this.mountRoot();
  }

  log(line: string) {
    this.lines.push(line);
  }
  cleanupFailed(what: string, err: Error) {
    this.cleanupFailures.push(`removing the ${what}: ${err.message}`);
  }
  async writeMarker() {
    this.markerValue = `m${++this.n}`;
    if (this.booted === "local") this.root.marker = this.markerValue;
  }
  async readMarker() {
    return this.booted === "local" ? this.root.marker : "";
  }
  async bootId() {
    return `boot-${this.boots}`;
  }
  async cycleState() {
    const allowed =
      {
        running: ["poweroff", "reboot", "stop_in_place"],
        stopped: this.fault === "stopped server refuses poweron" ? [] : ["poweron"],
        "stopped in place": ["poweron", "poweroff"],
      }[this.state] ?? [];
    return { state: this.state, bootType: this.bootType, allowedActions: allowed, rootVolumeId: "root" };
  }
  async act(action: "poweroff" | "poweron" | "reboot" | "stop_in_place", expected: string) {
    if (action === "stop_in_place") {
      this.state = this.fault === "stop in place stops fully" ? "stopped" : "stopped in place";
      if (this.fault === "stop in place loses data") this.root.marker = "";
    } else if (action === "poweroff") {
      this.state = "stopped";
      if (this.fault === "poweroff loses data") this.root.marker = "";
    } else if (action === "poweron") {
      this.state = "running";
      this.boot(this.bootType);
    } else if (this.fault !== "reboot does nothing") {
      this.boot(this.bootType);
      if (this.fault === "reboot loses data") this.root.marker = "";
    }
    if (this.state !== expected) throw new ScenarioFailure(`server is ${this.state}, expected ${expected}`);
  }
  async setBootType(t: "local" | "rescue") {
    if (!(t === "local" && this.fault === "boot type stays rescue")) this.bootType = t;
  }
  async forgetFingerprints() {}
  async pause() {}
  async connect() {
    if (this.state !== "running") throw new ScenarioFailure("no SSH login: the server is not running");
  }
  async ensureRunning() {
    if (this.state !== "running") await this.act("poweron", "running");
  }
  async rootFsUuid() {
    return "uuid-root";
  }
  async filesystems(uuid: string) {
    expect(uuid).toBe("uuid-root");
    const disks = [
      ...(this.fault === "rescue lacks the root volume" ? [] : [this.root]),
      ...this.volumes.values(),
    ].filter((d) => d.dev);
    const mounted = (d: Disk) =>
      d === this.root && (this.booted === "local" || this.fault === "rescue mounts the root volume");
    return disks.map((d) => ({ device: `${d.dev}1`, mounted: mounted(d) }));
  }
  async headHash(device: string) {
    return [this.root, ...this.volumes.values()].find((d) => `${d.dev}1` === device)!.head;
  }
  async snapshotRoot() {
    const id = this.id("snapshot");
    this.snapshots.set(id, {
      marker: this.fault === "snapshot misses the marker" ? "" : this.root.marker,
      head: this.root.head,
    });
    return id;
  }
  async snapshotReady(id: string) {
    expect(this.snapshots.has(id)).toBe(true);
  }
  async volumeFromSnapshot(snapshotId: string) {
    const id = this.id("volume");
    this.volumes.set(id, { ...this.snapshots.get(snapshotId)! });
    return id;
  }
  async attachNew(volumeId: string) {
    const dev = `/dev/vd${String.fromCharCode(98 + [...this.volumes.values()].filter((d) => d.dev).length)}`;
    this.volumes.get(volumeId)!.dev = dev;
    return dev;
  }
  async detachGone(volumeId: string) {
    delete this.volumes.get(volumeId)!.dev;
  }
  async markerOn(dev: string) {
    return [...this.volumes.values()].find((d) => d.dev === dev)?.marker ?? "";
  }
  async deleteVolume(id: string) {
    if (this.fault === "volume deletion fails")
      throw new Error(`http error 503: injected 503 on DELETE /block/volumes/{id}`);
    this.volumes.delete(id);
  }
  async deleteSnapshot(id: string) {
    this.snapshots.delete(id);
  }
}

async function run(group: typeof stopInPlace, wanted: ScenarioName[], fault?: Fault) {
  const server = new FakeServer(fault);
  await server.writeMarker();
  const v = new Verdicts(wanted);
  try {
    await group(server, v);
  } catch (err) {
    v.abort(err);
  }
  // As runBattery does after each group.
  v.cleanupFailed(server.cleanupFailures);
  return {
    server,
    results: v.results(),
    failed: v
      .results()
      .filter((r) => r.status === "fail")
      .map((r) => r.name)
      .sort(),
  };
}

const STOPPED: ScenarioName[] = ["archive", "cold snapshot", "rescue", "reboot"];

describe("power-cycle scenarios fail when their feature breaks", () => {
  it.each<{ fault?: Fault; failed: ScenarioName[] }>([
    { failed: [] },
    { fault: "poweroff loses data", failed: ["archive", "cold snapshot", "reboot", "rescue"] },
    { fault: "stopped server refuses poweron", failed: ["archive"] },
    { fault: "snapshot misses the marker", failed: ["cold snapshot"] },
    { fault: "rescue boots the image", failed: ["rescue"] },
    { fault: "rescue mounts the root volume", failed: ["rescue"] },
    { fault: "rescue lacks the root volume", failed: ["rescue"] },
    { fault: "reboot does nothing", failed: ["archive", "reboot", "rescue"] },
    { fault: "reboot loses data", failed: ["archive", "reboot", "rescue"] },
    { fault: "boot type stays rescue", failed: ["archive", "reboot", "rescue"] },
  ])("archive, cold snapshot, rescue, reboot in one cycle, $fault: fails $failed", async ({ fault, failed }) => {
    const { server, results, failed: got } = await run(stoppedAndRescued, STOPPED, fault);
    expect(got, JSON.stringify(results)).toEqual(failed);
    // Two boots: the rescue system, then back to local.
    if (!fault) expect(server.boots).toBe(2);
    expect(server.state).toBe("running");
  });

  it.each<{ wanted: ScenarioName[]; fault?: Fault; failed: ScenarioName[]; boots: number }>([
    { wanted: ["reboot"], failed: [], boots: 1 },
    { wanted: ["reboot"], fault: "reboot does nothing", failed: ["reboot"], boots: 0 },
    { wanted: ["reboot"], fault: "reboot loses data", failed: ["reboot"], boots: 1 },
    { wanted: ["archive", "cold snapshot"], failed: [], boots: 1 },
    { wanted: ["archive"], fault: "poweroff loses data", failed: ["archive"], boots: 1 },
    { wanted: ["cold snapshot"], fault: "snapshot misses the marker", failed: ["cold snapshot"], boots: 1 },
    { wanted: ["rescue"], fault: "rescue boots the image", failed: ["rescue"], boots: 2 },
  ])("only $wanted, $fault: fails $failed in $boots boot(s)", async ({ wanted, fault, failed, boots }) => {
    const { server, failed: got } = await run(stoppedAndRescued, wanted, fault);
    expect(got).toEqual(failed);
    expect(server.boots).toBe(boots);
  });

  it.each<{ fault?: Fault; failed: ScenarioName[] }>([
    { failed: [] },
    { fault: "stop in place stops fully", failed: ["stop in place"] },
    { fault: "stop in place loses data", failed: ["stop in place"] },
  ])("stop in place, $fault: fails $failed", async ({ fault, failed }) => {
    expect((await run(stopInPlace, ["stop in place"], fault)).failed).toEqual(failed);
  });

  it("a marker from an earlier cycle does not pass a later one", async () => {
    const server = new FakeServer();
    await server.writeMarker();
    const first = server.markerValue;
    await server.writeMarker();
    expect(server.markerValue).not.toBe(first);
  });
});

describe("snapshot cleanup", () => {
  it.each<{ fault?: Fault; fails: boolean }>([
    { fails: false },
    { fault: "snapshot misses the marker", fails: true },
    { fault: "poweroff loses data", fails: true },
    { fault: "rescue lacks the root volume", fails: true },
  ])("the cycle leaves no snapshot or volume behind ($fault)", async ({ fault, fails }) => {
    const { server, failed } = await run(stoppedAndRescued, STOPPED, fault);
    expect(failed.length > 0).toBe(fails);
    expect([...server.snapshots.keys(), ...server.volumes.keys()]).toEqual([]);
    expect(server.bootType).toBe(fault === "boot type stays rescue" ? "rescue" : "local");
  });

  it("a volume whose deletion fails fails every scenario of the cycle, naming it", async () => {
    const { server, results } = await run(stoppedAndRescued, STOPPED, "volume deletion fails");
    expect(results.map((r) => [r.name, r.status])).toEqual(STOPPED.map((n) => [n, "fail"]));
    for (const r of results)
      expect(r.reason).toMatch(
        /^cleanup failed: removing the volume volume-\d+: http error 503: injected 503 on DELETE/,
      );
    // What is left is named, never hidden: the volume stays, the snapshot it came from could still go.
    expect([...server.volumes.keys()]).toHaveLength(1);
  });

  it.each<{ fault?: Fault; fails: boolean }>([{ fails: false }, { fault: "snapshot misses the marker", fails: true }])(
    "the hot snapshot leaves no snapshot or volume behind ($fault)",
    async ({ fault, fails }) => {
      const server = new FakeServer(fault);
      const outcome = await hotSnapshot(server).then(
        () => "pass",
        (e: Error) => e.message,
      );
      expect(outcome === "pass").toBe(!fails);
      expect(server.snapshots.size + server.volumes.size).toBe(0);
    },
  );
});

describe("verdicts of a shared cycle", () => {
  it.each<{ checks: [ScenarioName, boolean, string][]; failures: string[]; want: [string, string, string][] }>([
    {
      checks: [],
      failures: [],
      want: [
        ["archive", "pass", ""],
        ["reboot", "pass", ""],
      ],
    },
    {
      checks: [],
      failures: ["removing the volume v1: 503"],
      want: [
        ["archive", "fail", "cleanup failed: removing the volume v1: 503"],
        ["reboot", "fail", "cleanup failed: removing the volume v1: 503"],
      ],
    },
    {
      checks: [["archive", false, "data is gone"]],
      failures: ["removing the volume v1: 503", "removing the snapshot s1: 412"],
      want: [
        [
          "archive",
          "fail",
          "data is gone; cleanup failed too: removing the volume v1: 503; removing the snapshot s1: 412",
        ],
        ["reboot", "fail", "cleanup failed: removing the volume v1: 503; removing the snapshot s1: 412"],
      ],
    },
  ])("a failed cleanup fails the group: $failures", ({ checks, failures, want }) => {
    const v = new Verdicts(["archive", "reboot"]);
    for (const [name, ok, reason] of checks) v.check(name, ok, reason);
    v.done("archive");
    v.done("reboot");
    v.cleanupFailed(failures);
    expect(v.results().map((r) => [r.name, r.status, r.reason])).toEqual(want);
  });

  it("passes only what was concluded, fails the rest with the reason the cycle broke", () => {
    const v = new Verdicts(["archive", "cold snapshot", "rescue"]);
    v.check("archive", false, "data is gone");
    v.done("archive");
    v.done("cold snapshot");
    v.abort(new ScenarioFailure("poweron failed"));
    expect(v.results().map((r) => [r.name, r.status, r.reason])).toEqual([
      ["archive", "fail", "data is gone"],
      ["cold snapshot", "pass", ""],
      ["rescue", "fail", "not reached: poweron failed"],
    ]);
  });

  it("fails a wanted scenario the cycle never concluded, and reports none it did not want", () => {
    const v = new Verdicts(["reboot"]);
    v.done("rescue");
    expect(v.results().map((r) => [r.name, r.status])).toEqual([["reboot", "fail"]]);
  });

  it("plans 5 boots for the whole battery (8 before grouping), fewer for a selection", () => {
    expect(plannedBoots([...SCENARIOS])).toBe(5);
    expect(plannedBoots(["network", "dns"])).toBe(1);
    expect(plannedBoots(["reboot"])).toBe(2);
    expect(plannedBoots(["rescue"])).toBe(3);
    expect(plannedBoots(["backup", "stop in place"])).toBe(3);
  });
});
