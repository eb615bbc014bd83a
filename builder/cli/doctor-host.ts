/**
 * `image-factory doctor --host user@address[:port]`: is an SSH build host ready to build (scripts/prepare-build-host)?
 * Its architecture, KVM, free disk space, the CLI's version against this checkout's, and whether sshd accepts the
 * environment the remote Command sends. One probe over SSH with the host key pinned; the judging is pure.
 */
import type { Architecture } from "../../images/schema";
import { runOnHost, type SshTarget } from "../pipeline/build-host-ssh";
import type { Finding } from "./doctor-checks";

/**
 * Free space a build needs under /var/tmp: our estimate, not a measured bound — the upstream image (up to ~3 GiB
 * decompressed), its customised copy, libguestfs' overlay and the content-addressed artifact cache.
 */
export const MIN_FREE_GIB = 20;

/** The probe's `key=value` lines; the sent FACTORY_DOCTOR_PROBE comes back only when sshd accepts it. */
export const PROBE = [
  'echo "arch=$(uname -m)"',
  "if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then echo kvm=rw; elif [ -e /dev/kvm ]; then echo kvm=denied; else echo kvm=absent; fi",
  "echo \"free_kib=$(df -Pk /var/tmp | awk 'NR==2 {print $4}')\"",
  'echo "cli=$(command -v image-factory)"',
  // /dev/kvm opening proves little (nested KVM may accept a VM and hang): the host's CLI boots its kernel under KVM.
  'echo "accel=$(command -v image-factory >/dev/null && image-factory doctor --accel 2>/dev/null)"',
  "echo \"stamp=$(tr -d ' \\n' < /opt/image-factory/current/dist/builder/build-stamp.json 2>/dev/null)\"",
  'echo "env=${FACTORY_DOCTOR_PROBE:-}"',
].join("; ");

export interface HostFacts {
  arch: string;
  kvm: "rw" | "denied" | "absent";
  freeKib: number;
  cli: string;
  /** What the host's CLI found by booting its kernel under KVM; empty without a CLI. */
  accel: "kvm" | "tcg" | "";
  /** The installed CLI's build stamp digest; empty when unreadable. */
  stamp: string;
  envAccepted: boolean;
}

export function parseProbe(stdout: string): HostFacts {
  const v = Object.fromEntries(
    stdout
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).trim()]),
  );
  return {
    arch: v.arch ?? "",
    kvm: (["rw", "denied", "absent"].includes(v.kvm ?? "") ? v.kvm : "absent") as HostFacts["kvm"],
    freeKib: Number(v.free_kib) || 0,
    cli: v.cli ?? "",
    accel: v.accel === "kvm" || v.accel === "tcg" ? v.accel : "",
    stamp: /"sources":"([0-9a-f]{64})"/.exec(v.stamp ?? "")?.[1] ?? "",
    envAccepted: v.env === "accepted",
  };
}

const UNAME: Record<Architecture, string> = { x86_64: "x86_64", arm64: "aarch64" };

/** What is wrong with a host for building `arch` images with the CLI whose stamp is `digest`. */
export function hostFindings(f: HostFacts, arch: Architecture, digest: string, where: string): Finding[] {
  const prepare = `scripts/prepare-build-host ${where} '<host public key>'`;
  const out: Finding[] = [];
  const add = (problem: string, fix: string) => out.push({ check: "build-host", problem: `${where}: ${problem}`, fix });
  if (f.arch !== UNAME[arch])
    add(
      `is ${f.arch || "of unknown architecture"}, not ${UNAME[arch]}: libguestfs customises only guests of its own architecture`,
      `list it under ${Object.entries(UNAME).find(([, u]) => u === f.arch)?.[0] ?? "no architecture"} in image-factory:buildHosts, or use a ${UNAME[arch]} host`,
    );
  if (f.kvm === "absent")
    add(
      "has no /dev/kvm: builds would run under TCG, several times slower",
      "use a machine with hardware virtualisation (bare metal, or nested virtualisation enabled)",
    );
  if (f.kvm === "denied")
    add("/dev/kvm exists but this user cannot open it", "add the user to the kvm group (usermod -aG kvm <user>)");
  if (f.kvm === "rw" && f.accel === "tcg")
    add(
      "opens /dev/kvm, but its kernel does not boot under KVM there (nested virtualisation?): builds would run under TCG",
      "enable nested virtualisation on the hypervisor, or use bare metal",
    );
  if (f.freeKib < MIN_FREE_GIB * 2 ** 20)
    add(
      `has ${(f.freeKib / 2 ** 20).toFixed(1)} GiB free under /var/tmp, below the ${MIN_FREE_GIB} GiB a build needs`,
      "free space under /var/tmp or grow the disk",
    );
  if (!f.cli) add("has no image-factory on PATH", prepare);
  else if (f.stamp !== digest)
    add(
      `runs the CLI ${f.stamp ? f.stamp.slice(0, 16) : "of unknown version"}, not this checkout's ${digest.slice(0, 16)}`,
      prepare,
    );
  if (!f.envAccepted)
    add(
      "sshd does not accept FACTORY_* variables: the remote Command's environment would not arrive",
      `${prepare} (it sets AcceptEnv FACTORY_* AWS_*)`,
    );
  return out;
}

/** Probes the host over SSH and judges it. A wrong host key or a dead host throws a BuildHostError. */
export async function doctorHost(t: SshTarget, arch: Architecture, digest: string, where: string): Promise<Finding[]> {
  const r = await runOnHost(t, PROBE, { FACTORY_DOCTOR_PROBE: "accepted" }, { timeoutMs: 60_000 });
  if (r.code !== 0)
    return [
      {
        check: "build-host",
        problem: `${where}: the probe exited with ${r.code}: ${r.stderr.trim()}`,
        fix: "log in and look",
      },
    ];
  return hostFindings(parseProbe(r.stdout), arch, digest, where);
}

/** The build hosts' private key written in clear in the stack file: it belongs there only as a `secure:` secret. */
export function privateKeyFindings(config: Record<string, unknown>): Finding[] {
  return typeof config["image-factory:buildHostPrivateKey"] === "string"
    ? [
        {
          check: "build-host",
          problem: "image-factory:buildHostPrivateKey is in clear in the stack file",
          fix: "remove it and run pulumi config set --secret buildHostPrivateKey < <key file>; then replace the key on the hosts",
        },
      ]
    : [];
}
