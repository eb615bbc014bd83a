/**
 * Turns a release's declared recipe into one virt-customize invocation: the recipe steps in order, then the
 * provenance file, the package list for the manifest and the never-booted hygiene, SELinux relabel last.
 * Building the argument list is pure; running it is `customiseImage`.
 */
import type { Family, Step } from "../../images/schema";
import { applianceArgs, guestfsEnv, type Accelerator } from "../system/accel";
import { run } from "../system/exec";

/** Where the package list is left for finalise to read and remove. */
export const SBOM_PATH = "/root/.factory-packages.tsv";

export interface EcosystemSource {
  /** Repository base URL; `<repo>/<family>` holds the packages (`debian/` is a flat APT repository). */
  repository: string;
  version: string;
  /**
   * The repository's signing key (armoured), fetched from it and checked against the stack's pinned fingerprint;
   * required off loopback. Without one, a loopback repository is trusted as the build's own.
   */
  signingKey?: string;
}

export interface CustomiseInput {
  family: Family;
  /** Upstream's name for the architecture, for `{arch}` in package names. */
  upstreamArch: string;
  steps: Step[];
  ecosystem: EcosystemSource;
  /** Lines of `/etc/scw-release`. */
  provenance: Record<string, string>;
  /** virt-customize arguments from disk-level steps (UEFI bootloader install), run after the recipe. */
  extraArgs?: string[];
  /** Files fetched and verified on the host for `fetch-file` steps: guest path → host path. */
  fetched?: Record<string, string>;
}

export class RecipeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecipeError";
  }
}

/** The libguestfs appliance reaches the host's loopback services through its user-mode network gateway. */
export const APPLIANCE_HOST = "169.254.2.2";

export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "localhost" || host.startsWith("127.") || host === "[::1]";
}

/** A URL as the appliance sees it: loopback services are reached through the gateway. */
export function applianceUrl(url: string): string {
  if (!isLoopback(url)) return url;
  const u = new URL(url);
  u.hostname = APPLIANCE_HOST;
  return u.toString().replace(/\/$/, "");
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function ecosystemArgs(family: Family, eco: EcosystemSource): string[] {
  const repo = applianceUrl(eco.repository.replace(/\/$/, ""));
  const local = isLoopback(eco.repository);
  const key = eco.signingKey;
  if (!local && !key)
    throw new RecipeError(
      `scaleway-ecosystem: repository ${eco.repository} needs a pinned signing key: set image-factory:ecosystemKeyFingerprint (FACTORY_ECOSYSTEM_KEY_FINGERPRINT)`,
    );
  switch (family) {
    case "debian": {
      const list = "/etc/apt/sources.list.d/scaleway-ecosystem.list";
      const keyring = "/usr/share/keyrings/scaleway-ecosystem.asc";
      const opts = key ? `[signed-by=${keyring}]` : "[trusted=yes]";
      return [
        ...(key ? ["--write", `${keyring}:${key}`] : []),
        "--write",
        `${list}:deb ${opts} ${repo}/debian ./\n`,
        "--install",
        `scaleway-ecosystem=${eco.version}`,
        // The build's own loopback repository (and its test key) mean nothing once the image boots elsewhere.
        ...(local ? ["--delete", list, ...(key ? ["--delete", keyring] : [])] : []),
      ];
    }
    case "rhel": {
      const file = "/etc/yum.repos.d/scaleway-ecosystem.repo";
      const keyFile = "/etc/pki/rpm-gpg/RPM-GPG-KEY-scaleway-ecosystem";
      const gpg = key ? `gpgcheck=1\ngpgkey=file://${keyFile}` : "gpgcheck=0";
      return [
        ...(key ? ["--write", `${keyFile}:${key}`] : []),
        "--write",
        `${file}:[scaleway-ecosystem]\nname=Scaleway ecosystem\nbaseurl=${repo}/rhel/$basearch\nenabled=1\n${gpg}\n`,
        "--install",
        `scaleway-ecosystem-${eco.version}`,
        ...(local ? ["--delete", file, ...(key ? ["--delete", keyFile] : [])] : []),
      ];
    }
    case "arch":
      return [
        "--append-line",
        `/etc/pacman.conf:[scaleway-ecosystem]`,
        "--append-line",
        `/etc/pacman.conf:SigLevel = ${local ? "Never" : "Required"}`,
        "--append-line",
        `/etc/pacman.conf:Server = ${repo}/arch/$arch`,
        "--run-command",
        `pacman -Sy --noconfirm scaleway-ecosystem`,
      ];
  }
}

function upgradeArgs(family: Family, pkg: string): string[] {
  switch (family) {
    case "debian":
      // apt-get install upgrades an installed package to the newest candidate, and installs a missing one.
      return ["--install", pkg];
    case "rhel":
      return ["--run-command", `dnf -y upgrade ${pkg} || dnf -y install ${pkg}`];
    case "arch":
      return ["--run-command", `pacman -S --noconfirm --needed ${pkg}`];
  }
}

function stepArgs(step: Step, input: CustomiseInput): string[] {
  const { family } = input;
  switch (step.op) {
    case "install":
      return ["--install", step.packages.join(",")];
    case "remove":
      return ["--uninstall", step.packages.join(",")];
    case "upgrade-kernel":
      return upgradeArgs(family, step.package.replaceAll("{arch}", input.upstreamArch));
    case "upgrade-cloud-init":
      return upgradeArgs(family, "cloud-init");
    case "scaleway-ecosystem":
      return ecosystemArgs(family, input.ecosystem);
    case "write-file":
      return ["--write", `${step.path}:${step.content}`, "--chmod", `${step.mode}:${step.path}`];
    case "run":
      return ["--run-command", step.command];
    case "enable-service":
      return ["--run-command", `systemctl enable ${shellQuote(step.name)}`];
    case "fetch-file": {
      const local = input.fetched?.[step.path];
      if (!local) throw new RecipeError(`fetch-file ${step.path}: not fetched on the host`);
      return ["--upload", `${local}:${step.path}`];
    }
    case "selinux-relabel":
      return ["--selinux-relabel"];
    case "ensure-uefi":
      // Done on the disk before virt-customize runs (see uefi.ts); nothing inside the guest's chroot.
      return [];
  }
}

/**
 * virt-customize runs `apt-get update` before every `--install`: under TCG each update re-reads the distribution's
 * package lists for many seconds. Adjacent steps that install packages (the base recipe's ecosystem package, kernel
 * and cloud-init) share one `--install`, so one update and one apt transaction serve them all. A step's file writes
 * (a repository and its key) move before the shared install and its deletes after it; a step that is not an install
 * (a command, a file) keeps its place between installs, as it may depend on what came before it.
 */
export function shareAptRuns(steps: string[][]): string[][] {
  const out: string[][] = [];
  let group: { before: string[]; packages: string[]; after: string[] } | undefined;
  const flush = () => {
    if (group) out.push([...group.before, "--install", group.packages.join(","), ...group.after]);
    group = undefined;
  };
  for (const args of steps) {
    const at = args.indexOf("--install");
    if (at < 0 || args.indexOf("--install", at + 1) >= 0 || args.includes("--run-command")) {
      flush();
      out.push(args);
      continue;
    }
    group ??= { before: [], packages: [], after: [] };
    group.before.push(...args.slice(0, at));
    group.packages.push(args[at + 1]!);
    group.after.push(...args.slice(at + 2));
  }
  flush();
  return out;
}

export const SBOM_COMMAND: Record<Family, string> = {
  debian: `dpkg-query -W -f='\${Package}\\t\${Version}\\t\${Architecture}\\n' > ${SBOM_PATH}`,
  // The rpm database names each package's source RPM and licence: columns 4 and 5, as the SBOM reports them.
  rhel: `rpm -qa --qf '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{LICENSE}\\n' | sort > ${SBOM_PATH}`,
  // pacman's local database has each package's licences (-Qi), but no source package to name.
  arch: `LC_ALL=C pacman -Qi | awk -F' *: ' '/^Name /{n=$2} /^Version /{v=$2} /^Architecture /{a=$2} /^Licenses /{l=$2} function out(){if(n)print n"\\t"v"\\t"a"\\t\\t"l; n=""} /^$/{out()} END{out()}' | sort > ${SBOM_PATH}`,
};

/**
 * What a never-booted image must not carry: identity (machine-id, SSH host keys), cloud-init state, history,
 * logs and caches from the build. Globs are expanded by virt-customize.
 */
export const HYGIENE_DELETES = [
  "/etc/ssh/ssh_host_*",
  "/var/lib/dbus/machine-id",
  "/var/lib/cloud/*",
  "/var/log/cloud-init*",
  "/root/.bash_history",
  "/home/*/.bash_history",
  "/var/log/apt/*",
  "/var/log/dpkg.log",
  "/var/log/alternatives.log",
  "/var/log/dnf*",
  "/var/log/hawkey.log",
  "/var/log/pacman.log",
  "/var/log/journal/*",
  "/var/cache/apt/archives/*.deb",
  // APT's binary caches of the package lists (tens of MiB), rebuilt by the first apt-get update on the Instance.
  "/var/cache/apt/*.bin",
  "/var/cache/debconf/*-old",
  "/var/lib/apt/lists/*",
  "/var/cache/dnf/*",
  "/var/cache/pacman/pkg/*",
  "/tmp/*",
  "/var/tmp/*",
];

export function provenanceFile(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n")
    .concat("\n");
}

/**
 * Debian's maintainer scripts start the daemons they install (MariaDB, Apache…) unless policy-rc.d says no, as
 * debootstrap arranges it: a never-booted image must not have run them, and the appliance must not keep them.
 */
export const POLICY_RC_D = "/usr/sbin/policy-rc.d";
const DENY_SERVICE_STARTS = "#!/bin/sh\n# image-factory: no service starts while the image is customised\nexit 101\n";
/**
 * dpkg fsyncs every file it unpacks, which under TCG and a qcow2 overlay makes a LAMP stack take many minutes.
 * A build that crashes is thrown away and finalise flushes the whole disk, so the build turns that off.
 */
export const DPKG_UNSAFE_IO = "/etc/dpkg/dpkg.cfg.d/image-factory-unsafe-io";
/**
 * apt-get update also fetches the package descriptions' translations (6 MB of the 15 MB a Debian 12 update reads):
 * nothing in a build reads them, and hygiene deletes the lists anyway.
 */
export const APT_NO_TRANSLATIONS = "/etc/apt/apt.conf.d/image-factory-no-translations";
/** Written before the recipe, deleted after it: none of them is in the image. */
export const BUILD_GUARDS = [POLICY_RC_D, DPKG_UNSAFE_IO, APT_NO_TRANSLATIONS] as const;

export function customiseArgs(input: CustomiseInput): string[] {
  const relabel = input.steps.some((s) => s.op === "selinux-relabel");
  const guard = input.family === "debian";
  const args = guard
    ? [
        "--write",
        `${POLICY_RC_D}:${DENY_SERVICE_STARTS}`,
        "--chmod",
        `0755:${POLICY_RC_D}`,
        "--write",
        `${DPKG_UNSAFE_IO}:force-unsafe-io\n`,
        "--write",
        `${APT_NO_TRANSLATIONS}:Acquire::Languages "none";\n`,
      ]
    : [];
  const recipe = input.steps.filter((s) => s.op !== "selinux-relabel").map((s) => stepArgs(s, input));
  args.push(...(input.family === "debian" ? shareAptRuns(recipe) : recipe).flat());
  args.push(...(input.extraArgs ?? []));
  if (guard) for (const path of BUILD_GUARDS) args.push("--delete", path);
  args.push("--write", `/etc/scw-release:${provenanceFile(input.provenance)}`);
  args.push("--run-command", SBOM_COMMAND[input.family]);
  for (const path of HYGIENE_DELETES) args.push("--delete", path);
  // An empty (not missing) machine-id: systemd generates it on first boot.
  args.push("--truncate", "/etc/machine-id");
  // Relabel last, after every file this run wrote.
  if (relabel) args.push("--selinux-relabel");
  return args;
}

/** Steps that reach a package repository or may (a command): the appliance gets a network only for them. */
const NETWORKED: ReadonlySet<Step["op"]> = new Set([
  "install",
  "upgrade-kernel",
  "upgrade-cloud-init",
  "scaleway-ecosystem",
  "run",
]);

export function needsNetwork(steps: Step[], extraArgs: readonly string[] = []): boolean {
  // The UEFI bootloader's packages come from the distribution's repository too.
  return steps.some((s) => NETWORKED.has(s.op)) || extraArgs.includes("--install");
}

/** Runs virt-customize on `disk` in place (the caller works on a copy). */
export async function customiseImage(disk: string, input: CustomiseInput, accel: Accelerator): Promise<void> {
  const network = needsNetwork(input.steps, input.extraArgs) ? [] : ["--no-network"];
  await run(
    "virt-customize",
    ["--format", "qcow2", ...applianceArgs(), ...network, "-a", disk, ...customiseArgs(input)],
    {
      env: guestfsEnv(accel),
      streamStderr: true,
    },
  );
}
