/**
 * The providers' replace rules (components/replace-rules.ts) and the simulator's engine semantics on their own:
 * table-driven, on crafted registrations where the program does not exercise a case (deleteBeforeReplace).
 */
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { describe, expect, it } from "vitest";
import { changeFor, REPLACE_RULES, ruleFor } from "../../components/replace-rules";
import { plain, runStack, SECRET_SIG, SIG_KEY, UNKNOWN, type Registration } from "../support/program-run";
import { changedPaths, movedByAliases, simulate } from "../support/simulator";
import { ARM64_BUILD_HOST, settingsFor } from "./helpers";

const SNAPSHOT = "scaleway:block/snapshot:Snapshot";
const IMAGE = "scaleway:instance/image:Image";
const SERVER = "scaleway:instance/server:Server";
const COMMAND = "command:local:Command";

describe("replace rules", () => {
  it.each([
    { type: SNAPSHOT, paths: ["import.key"], change: "replace" },
    { type: SNAPSHOT, paths: ["import.bucket"], change: "replace" },
    { type: SNAPSHOT, paths: ["zone"], change: "replace" },
    { type: SNAPSHOT, paths: ["projectId"], change: "replace" },
    { type: SNAPSHOT, paths: ["name", "tags"], change: "update" },
    { type: IMAGE, paths: ["rootVolumeId"], change: "replace" },
    { type: IMAGE, paths: ["name", "architecture", "tags"], change: "update" },
    { type: SERVER, paths: ["image"], change: "replace" },
    { type: SERVER, paths: ["rootVolume.volumeType"], change: "replace" },
    { type: SERVER, paths: ["rootVolume.sizeInGb", "type", "state", "name", "tags"], change: "update" },
    { type: COMMAND, paths: ["triggers"], change: "replace" },
    { type: COMMAND, paths: ["create", "environment.FACTORY_BUCKET", "logging"], change: "update" },
    { type: COMMAND, paths: [], change: "none" },
  ])("$type: $paths → $change", ({ type, paths, change }) => {
    expect(changeFor(type, paths)).toBe(change);
  });

  it.each([
    {
      type: "scaleway:instance/volume:Volume",
      path: "size",
      error: "replace rules: no rules for resource type scaleway:instance/volume:Volume",
    },
    {
      type: IMAGE,
      path: "additionalVolumeIds",
      error: "replace rules: scaleway:instance/image:Image has no rule for input additionalVolumeIds",
    },
  ])("names what it does not know: $type $path", ({ type, path, error }) => {
    expect(() => ruleFor(type, path)).toThrow(error);
  });

  it("cites a source for every row", () => {
    for (const t of REPLACE_RULES)
      for (const p of t.properties)
        expect(p.source, `${t.type} ${p.path}`).toMatch(
          /^(scaleway\/terraform-provider-scaleway|pulumi\/pulumi-command|@pulumi\/command) \S+/,
        );
  });

  it("covers every input the program sets, for the whole catalog", async () => {
    const registered = await runStack("test-fr-par-2", settingsFor({ images: ["*"] }), { preview: false });
    const custom = registered.filter((r) => r.custom);
    expect(new Set(custom.map((r) => r.type))).toEqual(new Set([SNAPSHOT, IMAGE, SERVER, COMMAND]));
    for (const r of custom)
      for (const path of changedPaths({}, r.inputs))
        expect(() => ruleFor(r.type, path), `${r.name} ${path}`).not.toThrow();
  });

  it("covers every input of the remote artifact Command a build host gets", async () => {
    const registered = await runStack(
      "test-fr-par-2",
      settingsFor({ images: ["debian-12"], architectures: ["arm64"], ...ARM64_BUILD_HOST }),
      { preview: false },
    );
    const remote = registered.filter((r) => r.type === "command:remote:Command");
    expect(remote.map((r) => r.name)).toEqual(["debian-12-arm64-artifact"]);
    // The private key makes the whole connection travel as a secret.
    expect((remote[0]!.inputs.connection as Record<string, unknown>)[SIG_KEY]).toBe(SECRET_SIG);
    const paths = changedPaths({}, plain(remote[0]!.inputs));
    expect(paths.filter((p) => p.startsWith("connection")).sort()).toEqual([
      "connection.dialErrorLimit",
      "connection.host",
      "connection.hostKey",
      "connection.perDialTimeout",
      "connection.port",
      "connection.privateKey",
      "connection.user",
    ]);
    for (const path of paths) expect(() => ruleFor(remote[0]!.type, path), path).not.toThrow();
  });
});

describe("changed paths", () => {
  it.each([
    { before: { a: 1 }, after: { a: 1 }, paths: [] },
    {
      before: { import: { bucket: "b", key: "k1" } },
      after: { import: { bucket: "b", key: "k2" } },
      paths: ["import.key"],
    },
    { before: { tags: ["x", "y"] }, after: { tags: ["x", UNKNOWN] }, paths: ["tags"] },
    { before: { rootVolumeId: "fr-par-2/s" }, after: { rootVolumeId: UNKNOWN }, paths: ["rootVolumeId"] },
    { before: { name: "n" }, after: {}, paths: ["name"] },
  ])("$before → $after", ({ before, after, paths }) => {
    expect(changedPaths(before, after)).toEqual(paths);
  });
});

/** A crafted registration: a snapshot importing `key`, or an image on `root`. */
function reg(name: string, inputs: Record<string, unknown>, o: Partial<Registration> = {}): Registration {
  const type = "rootVolumeId" in inputs ? IMAGE : SNAPSHOT;
  return {
    urn: `urn:pulumi:s::p::${type}::${name}`,
    type,
    name,
    custom: true,
    parent: "",
    dependencies: [],
    retainOnDelete: false,
    deleteBeforeReplace: false,
    aliases: [],
    inputs,
    struct: Struct.fromJavaScript(inputs as never),
    ...o,
  };
}
const snapUrn = `urn:pulumi:s::p::${SNAPSHOT}::snap`;
const lines = (before: Registration[], after: Registration[]) =>
  simulate(before, after).steps.map((s) => `${s.step} ${s.name}${s.retained ? " (retained)" : ""}`);

describe("the simulator's engine order", () => {
  const before = [
    reg("snap", { import: { key: "a" } }),
    reg("img", { rootVolumeId: "s-a" }, { dependencies: [snapUrn] }),
  ];
  it.each([
    {
      what: "create before delete (the default)",
      after: [
        reg("snap", { import: { key: "b" } }),
        reg("img", { rootVolumeId: UNKNOWN }, { dependencies: [snapUrn] }),
      ],
      steps: ["create-replacement snap", "create-replacement img", "delete-replaced img", "delete-replaced snap"],
    },
    {
      what: "deleteBeforeReplace",
      after: [
        reg("snap", { import: { key: "b" } }, { deleteBeforeReplace: true }),
        reg("img", { rootVolumeId: UNKNOWN }, { dependencies: [snapUrn] }),
      ],
      steps: ["delete-replaced snap", "create-replacement snap", "create-replacement img", "delete-replaced img"],
    },
    {
      what: "an update in place",
      after: [
        reg("snap", { import: { key: "a" }, tags: ["t"] }),
        reg("img", { rootVolumeId: "s-a" }, { dependencies: [snapUrn] }),
      ],
      steps: ["update snap"],
    },
    {
      what: "a removal, dependents first",
      after: [],
      steps: ["delete img", "delete snap"],
    },
  ])("$what", ({ after, steps }) => {
    expect(lines(before, after)).toEqual(steps);
  });

  it("leaves a retained resource in the cloud", () => {
    const kept = [reg("snap", { import: { key: "a" } }, { retainOnDelete: true })];
    expect(lines(kept, [reg("snap", { import: { key: "b" } }, { retainOnDelete: true })])).toEqual([
      "create-replacement snap",
      "delete-replaced snap (retained)",
    ]);
    expect(lines(kept, [])).toEqual(["delete snap (retained)"]);
  });
});

describe("aliases: the engine moves an old resource to its new URN", () => {
  const moved = `urn:pulumi:s::p::c$${SNAPSHOT}::snap`;
  it.each([
    {
      name: "an alias naming the old URN moves it, and what depended on it follows",
      aliases: [snapUrn],
      urns: [moved, `urn:pulumi:s::p::${IMAGE}::img`],
      deps: [[], [moved]],
    },
    {
      name: "no alias: the old one stays where it was",
      aliases: [],
      urns: [snapUrn, `urn:pulumi:s::p::${IMAGE}::img`],
      deps: [[], [snapUrn]],
    },
    {
      name: "an alias naming nothing in the state changes nothing",
      aliases: ["urn:pulumi:s::p::x::y"],
      urns: [snapUrn, `urn:pulumi:s::p::${IMAGE}::img`],
      deps: [[], [snapUrn]],
    },
  ])("$name", ({ aliases, urns, deps }) => {
    const before = [
      reg("snap", { import: { key: "a" } }),
      reg("img", { rootVolumeId: "s-a" }, { dependencies: [snapUrn] }),
    ];
    const after = [
      reg("snap", { import: { key: "a" } }, { urn: moved, parent: "urn:pulumi:s::p::c::parent", aliases }),
    ];
    const state = movedByAliases(before, after);
    expect(state.map((r) => r.urn)).toEqual(urns);
    expect(state.map((r) => r.dependencies)).toEqual(deps);
  });
});
