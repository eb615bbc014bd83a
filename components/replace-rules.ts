/**
 * What the providers do when an input of a resource this program declares changes: replace it, or update it in
 * place. Data, read from each provider's source (cited per row), so a test can say what a `pulumi preview` would
 * show without the engine. Pure: no Pulumi import.
 *
 * Scaleway resources come from terraform-provider-scaleway through Pulumi's Terraform bridge, which turns a
 * schema field's `ForceNew: true` into a replacement; property paths are the bridge's camelCase names.
 */

export type ChangeKind = "replace" | "update";

export interface PropertyRule {
  /** Input property path (`import.key`); a rule on `import` covers every path under it. */
  path: string;
  change: ChangeKind;
  /** Where this is decided: repository, file and field or function. */
  source: string;
  /** What the change does beyond the diff, when it matters here. */
  note?: string;
}

export interface TypeRules {
  type: string;
  /** What the provider does on delete, when it is more than a delete call. */
  onDelete?: string;
  properties: PropertyRule[];
}

const TF = "scaleway/terraform-provider-scaleway";
const BLOCK_SNAPSHOT = `${TF} internal/services/block/snapshot.go (snapshotSchema, ResourceBlockSnapshotUpdate)`;
const INSTANCE_IMAGE = `${TF} internal/services/instance/image.go (imageSchema, ResourceInstanceImageUpdate)`;
const INSTANCE_SERVER = `${TF} internal/services/instance/server.go (serverSchema, ResourceInstanceServerUpdate)`;
const ZONE = `${TF} internal/locality/zonal/schemas.go (Schema: ForceNew)`;
const PROJECT = `${TF} internal/services/account/schemas.go (ProjectIDSchema: ForceNew)`;
const COMMAND = "pulumi/pulumi-command provider/pkg/provider/common/inputs.go (ResourceInputs)";
const COMMAND_BASE =
  "pulumi/pulumi-command provider/pkg/provider/local/base.go (BaseInputs): no replaceOnChanges; local/commandController.go: Update runs `update`, else `create`";

/** Inputs every local Command of this program may set, as @pulumi/command 1.x defines them. */
const commandRules: PropertyRule[] = [
  {
    path: "triggers",
    change: "replace",
    source: `${COMMAND}: \`provider:"replaceOnChanges"\``,
    note: "the create command runs again; the old resource's delete command runs",
  },
  ...["create", "delete", "update"].map((path): PropertyRule => ({
    path,
    change: "update",
    source: `${COMMAND}: no replaceOnChanges`,
    note: "no update command here: create runs again",
  })),
  ...["environment", "dir", "interpreter", "stdin"].map((path): PropertyRule => ({
    path,
    change: "update",
    source: COMMAND_BASE,
    note: "no update command here: create runs again",
  })),
  {
    path: "logging",
    change: "update",
    source: "@pulumi/command 1.2.1 local/command.d.ts (CommandArgs.logging)",
    note: "unverified: the provider source read (local/base.go) predates this field; taken as a plain input like its neighbours",
  },
];

const REMOTE_COMMAND =
  "pulumi/pulumi-command provider/pkg/provider/remote/commandController.go: Update runs `update`, else `create`";
const REMOTE_CONNECTION = "@pulumi/command 1.2.1 types/input.d.ts (remote.ConnectionArgs)";

/** Inputs the remote (build host) artifact Command sets: the local Command's, with `connection` for `dir`. */
const remoteCommandRules: PropertyRule[] = [
  ...commandRules.filter((r) => !["dir", "interpreter", "logging"].includes(r.path)),
  {
    path: "logging",
    change: "update",
    source: "@pulumi/command 1.2.1 remote/command.d.ts (CommandArgs.logging)",
    note: "unverified: taken as a plain input like its neighbours, as for the local Command",
  },
  {
    path: "connection",
    change: "update",
    source: `${REMOTE_COMMAND}; connection has no replaceOnChanges in ${REMOTE_CONNECTION}`,
    note: "a new host (routing by content hash over a changed host list) runs create again there: publish finds the artifact in the bucket and builds nothing",
  },
  {
    path: "connection.hostKey",
    change: "update",
    source: `${REMOTE_CONNECTION}: hostKey, "the expected host key to verify the server's identity"; added by pulumi/pulumi-command#794 (fixes #755)`,
    note: "unverified: the provider code comparing it was not read and no Pulumi engine runs here; the key is passed whole (`ssh-ed25519 AAAA…`), the form OpenSSH public key parsers take. The tests pin the same key with OpenSSH (known_hosts, StrictHostKeyChecking=yes)",
  },
  {
    path: "connection.privateKey",
    change: "update",
    source: REMOTE_CONNECTION,
    note: "a secret Output, and the Command lists connection in additionalSecretOutputs: encrypted in the state",
  },
];

export const REPLACE_RULES: TypeRules[] = [
  {
    type: "scaleway:block/snapshot:Snapshot",
    properties: [
      { path: "import", change: "replace", source: `${BLOCK_SNAPSHOT}: import, import.bucket, import.key ForceNew` },
      { path: "zone", change: "replace", source: ZONE },
      { path: "projectId", change: "replace", source: PROJECT },
      { path: "name", change: "update", source: `${BLOCK_SNAPSHOT}: UpdateSnapshot name` },
      { path: "tags", change: "update", source: `${BLOCK_SNAPSHOT}: UpdateSnapshot tags` },
    ],
  },
  {
    type: "scaleway:instance/image:Image",
    properties: [
      { path: "rootVolumeId", change: "replace", source: `${INSTANCE_IMAGE}: root_volume_id ForceNew` },
      { path: "zone", change: "replace", source: ZONE },
      { path: "projectId", change: "replace", source: PROJECT },
      { path: "name", change: "update", source: `${INSTANCE_IMAGE}: UpdateImage name` },
      { path: "architecture", change: "update", source: `${INSTANCE_IMAGE}: UpdateImage arch` },
      { path: "tags", change: "update", source: `${INSTANCE_IMAGE}: UpdateImage tags` },
      { path: "public", change: "update", source: `${INSTANCE_IMAGE}: UpdateImage public` },
    ],
  },
  {
    type: "scaleway:instance/server:Server",
    onDelete: `a stopped server is powered on first: termination needs it running (${TF} internal/services/instance/server.go, terminateServer); its root volume goes with it (delete_on_termination defaults to true)`,
    properties: [
      {
        path: "image",
        change: "replace",
        source: `${INSTANCE_SERVER}: customDiffInstanceServerImage forces new when the image id differs from the server's`,
        note: "unverified: while the new image id is unknown (a preview of a rebuild) that custom diff reads an empty value and returns early, so a real preview may list an update that the update turns into a replacement",
      },
      { path: "zone", change: "replace", source: ZONE },
      { path: "projectId", change: "replace", source: PROJECT },
      {
        path: "rootVolume.volumeType",
        change: "replace",
        source: `${INSTANCE_SERVER}: root_volume.volume_type ForceNew`,
      },
      {
        path: "rootVolume.sizeInGb",
        change: "update",
        source: `${INSTANCE_SERVER}: customDiffInstanceRootVolumeSize forces new only for l_ssd; this program uses sbs_volume`,
      },
      {
        path: "type",
        change: "update",
        source: `${INSTANCE_SERVER}: customDiffInstanceServerType forces new only with replace_on_type_change`,
        note: "the server is stopped, migrated and restarted",
      },
      { path: "name", change: "update", source: `${INSTANCE_SERVER}: UpdateServer name` },
      { path: "tags", change: "update", source: `${INSTANCE_SERVER}: UpdateServer tags` },
      { path: "state", change: "update", source: `${INSTANCE_SERVER}: reachState` },
      { path: "enableDynamicIp", change: "update", source: `${INSTANCE_SERVER}: enable_dynamic_ip has no ForceNew` },
      {
        path: "bootType",
        change: "update",
        source: `${INSTANCE_SERVER}: boot_type`,
        note: "unverified: taken from the resource's documentation (local, rescue or bootscript, switched on a running server), not read in the schema",
      },
    ],
  },
  { type: "command:local:Command", properties: commandRules },
  { type: "command:remote:Command", properties: remoteCommandRules },
];

/** The rule deciding a change at `path` of a `type` resource; an error names both when no row covers it. */
export function ruleFor(type: string, path: string): PropertyRule {
  const rules = REPLACE_RULES.find((r) => r.type === type);
  if (!rules) throw new Error(`replace rules: no rules for resource type ${type}`);
  const covering = rules.properties.filter((p) => path === p.path || path.startsWith(`${p.path}.`));
  const rule = covering.sort((a, b) => b.path.length - a.path.length)[0];
  if (!rule) throw new Error(`replace rules: ${type} has no rule for input ${path}`);
  return rule;
}

/** Replace when any changed path replaces, update when some path changed, none otherwise. */
export function changeFor(type: string, changedPaths: readonly string[]): ChangeKind | "none" {
  if (changedPaths.length === 0) return "none";
  return changedPaths.some((p) => ruleFor(type, p).change === "replace") ? "replace" : "update";
}
