/**
 * Build hosts: where each artifact is built. libguestfs customises only guests of its own host's architecture, so
 * arm64 images need an arm64 machine; and a release of ~25 builds needs more than one. Pure: no Pulumi import, so
 * the program, the CLI's `plan` and the tests route builds the same way.
 */
import { z } from "zod";
import type { Architecture } from "../../images/schema";

const KEY_TYPES = "ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa";

export interface BuildHost {
  address: string;
  port: number;
  user: string;
  /**
   * The host's public key, pinned: `ssh-ed25519 AAAA…` as its `/etc/ssh/ssh_host_ed25519_key.pub` says. A
   * fingerprint alone is not enough: the remote Command's connection compares the whole key.
   */
  hostKey: string;
}

/** `local` (the machine that runs `pulumi up`) or SSH hosts, per architecture. */
export type BuildHosts = Partial<Record<Architecture, "local" | BuildHost[]>>;

/**
 * Pulumi types config only as strings, numbers, booleans and arrays, so the stack file lists one host per line:
 * `<arch> local` or `<arch> <user>@<address>[:<port>] <key type> <base64 key>`.
 */
const HOST_LINE = new RegExp(
  `^(x86_64|arm64) (?:(local)|([a-z_][a-z0-9_-]*)@([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:]+\\])(?::([0-9]{1,5}))? ((?:${KEY_TYPES}) AAAA[A-Za-z0-9+/]+={0,3}))$`,
);

export const BuildHostList = z
  .array(
    z
      .string()
      .trim()
      .regex(
        HOST_LINE,
        "expected `<x86_64|arm64> local` or `<x86_64|arm64> <user>@<address>[:<port>] ssh-ed25519 AAAA…` (the host's public key)",
      ),
  )
  .default(["x86_64 local"])
  .superRefine((lines, ctx) => {
    const local = lines.filter((l) => l.endsWith(" local")).map((l) => l.split(" ")[0]);
    for (const arch of new Set(local)) {
      if (lines.filter((l) => l.startsWith(`${arch} `)).length > 1)
        ctx.addIssue({ code: "custom", message: `${arch}: "local" cannot be combined with other ${arch} hosts` });
    }
    const seen = new Set<string>();
    for (const l of lines) {
      const where = l.split(" ").slice(0, 2).join(" ");
      if (seen.has(where)) ctx.addIssue({ code: "custom", message: `${where}: listed twice` });
      seen.add(where);
    }
  })
  .transform((lines): BuildHosts => {
    const hosts: BuildHosts = {};
    for (const line of lines) {
      const m = HOST_LINE.exec(line)!;
      const arch = m[1] as Architecture;
      if (m[2]) hosts[arch] = "local";
      else {
        const list = (hosts[arch] as BuildHost[] | undefined) ?? [];
        list.push({ user: m[3]!, address: m[4]!.replace(/^\[|\]$/g, ""), port: Number(m[5] ?? 22), hostKey: m[6]! });
        hosts[arch] = list;
      }
    }
    return hosts;
  });

/**
 * The SSH private key the program logs in to every build host with. A secret in the stack file (`pulumi config set
 * --secret buildHostPrivateKey < key`); the CLI, reading the file, sees only its encrypted form.
 */
export const BuildHostPrivateKey = z.union([
  z.string().regex(/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "expected an SSH private key (OpenSSH or PEM format)"),
  z.strictObject({ secure: z.string().min(1) }),
]);

/** Node's name for this machine's architecture, in the catalog's terms. */
export function machineArchitecture(nodeArch: string = process.arch): Architecture | undefined {
  return nodeArch === "x64" ? "x86_64" : nodeArch === "arm64" ? "arm64" : undefined;
}

export type BuildPlace = { kind: "local" } | { kind: "remote"; host: BuildHost; label: string };

export const hostLabel = (h: Pick<BuildHost, "user" | "address" | "port">) =>
  `${h.user}@${h.address.includes(":") ? `[${h.address}]` : h.address}:${h.port}`;

/**
 * The host of a content hash among `n`: the hash itself picks it, so every stack (every zone of a region shares
 * one bucket key) sends the same artifact to the same host, and two hosts never build the same artifact.
 */
export function hostIndex(contentHash: string, n: number): number {
  return Number(BigInt(`0x${contentHash.slice(0, 16)}`) % BigInt(n));
}

export interface Routing {
  /** Where each content hash is built. */
  byHash: Map<string, BuildPlace>;
  /** Why some builds have nowhere to run, one line each; empty when all do. */
  problems: string[];
}

/** Routes every planned build to a host of its architecture; `machine` is the architecture of `local`. */
export function routeBuilds(
  plans: readonly { name: string; arch: Architecture; contentHash: string }[],
  hosts: BuildHosts,
  machine = machineArchitecture(),
): Routing {
  const byHash = new Map<string, BuildPlace>();
  const homeless = new Map<Architecture, string[]>();
  for (const plan of plans) {
    if (byHash.has(plan.contentHash)) continue; // one build per content hash
    const forArch = hosts[plan.arch];
    if (forArch === undefined || (forArch === "local" && machine !== plan.arch)) {
      homeless.set(plan.arch, [...(homeless.get(plan.arch) ?? []), plan.name]);
      continue;
    }
    if (forArch === "local") byHash.set(plan.contentHash, { kind: "local" });
    else {
      const host = forArch[hostIndex(plan.contentHash, forArch.length)]!;
      byHash.set(plan.contentHash, { kind: "remote", host, label: hostLabel(host) });
    }
  }
  const problems = [...homeless].map(([arch, names]) => {
    const local = hosts[arch] === "local";
    return (
      `image-factory:buildHosts.${arch}: ${names.length} ${arch} build(s) (${names.join(", ")}) have no ${arch} build host` +
      (local
        ? `: "local" is this ${machine ?? "unknown"} machine, and libguestfs customises only guests of its own architecture`
        : "") +
      `; add a line \`${arch} <user>@<address>[:<port>] <host public key>\` to image-factory:buildHosts (and image-factory:buildHostPrivateKey as a secret), or remove ${arch} from image-factory:architectures`
    );
  });
  return { byHash, problems };
}

/** `plan`'s view: which host builds what. */
export function describePlace(place: BuildPlace | undefined): string {
  if (!place) return "no host";
  return place.kind === "local" ? "local" : place.label;
}
