/**
 * KVM when it really works, TCG otherwise. /dev/kvm existing proves little: nested KVM can accept the VM and then
 * hang, so the probe boots the host kernel under KVM and waits for it to panic (no root fs) within seconds.
 * The answer is cached per boot of the host.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { cacheDir } from "./paths";
import { run } from "./exec";

export type Accelerator = "kvm" | "tcg";

function hostKernel(): string | undefined {
  const kernels = existsSync("/boot")
    ? readdirSync("/boot")
        .filter((f) => f.startsWith("vmlinuz-"))
        .sort()
    : [];
  return kernels.length ? join("/boot", kernels.at(-1)!) : undefined;
}

/**
 * The probe's QEMU for this host's own architecture (a build host may be arm64): KVM runs only guests of the host's
 * architecture, and an arm64 guest needs a machine type and `-cpu host`. Undefined where no probe is known (TCG).
 * The arm64 line follows QEMU's documented `virt` machine; it has not run on an arm64 host here.
 */
export function kvmProbeCommand(arch: string, kernel: string): { command: string; args: string[] } | undefined {
  const common = ["-accel", "kvm", "-m", "256", "-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio"];
  const boot = (console: string) => ["-kernel", kernel, "-append", `console=${console} panic=-1 quiet loglevel=3`];
  if (arch === "x64") return { command: "qemu-system-x86_64", args: [...common, ...boot("ttyS0")] };
  if (arch === "arm64")
    return {
      command: "qemu-system-aarch64",
      args: ["-machine", "virt", "-cpu", "host", ...common, ...boot("ttyAMA0")],
    };
  return undefined;
}

async function probeKvm(): Promise<boolean> {
  const kernel = hostKernel();
  const probe = kernel ? kvmProbeCommand(process.arch, kernel) : undefined;
  if (!existsSync("/dev/kvm") || !probe) return false;
  try {
    const { stdout } = await run(probe.command, probe.args, { timeoutMs: 15_000 });
    return /Kernel panic/.test(stdout);
  } catch {
    return false;
  }
}

/** FACTORY_ACCEL=kvm|tcg overrides the probe. */
export async function accelerator(): Promise<Accelerator> {
  const forced = process.env.FACTORY_ACCEL;
  if (forced === "kvm" || forced === "tcg") return forced;
  const bootId = existsSync("/proc/sys/kernel/random/boot_id")
    ? readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
    : "unknown";
  const file = join(cacheDir("accel"), `${bootId}.txt`);
  if (existsSync(file)) return readFileSync(file, "utf8").trim() as Accelerator;
  const accel: Accelerator = (await probeKvm()) ? "kvm" : "tcg";
  mkdirSync(cacheDir("accel"), { recursive: true });
  writeFileSync(file, accel);
  return accel;
}

/**
 * The libguestfs appliance's size. Its defaults (one vCPU, about 1.3 GiB) leave the host's other cores idle while
 * apt and dpkg unpack and run maintainer scripts; under TCG the vCPUs are host threads, so one per core (at most
 * 4) cuts a customisation's time, and a larger page cache spares the overlay's writes. Memory: 2 GiB, at most a
 * quarter of the host's. FACTORY_APPLIANCE_SMP and FACTORY_APPLIANCE_MEMSIZE (MiB) override.
 */
export function applianceSize(
  cores = availableParallelism(),
  hostMiB = Math.floor(totalmem() / 2 ** 20),
  env = process.env,
): { smp: number; memsize: number } {
  const smp = Number(env.FACTORY_APPLIANCE_SMP) || Math.max(1, Math.min(4, cores));
  const memsize = Number(env.FACTORY_APPLIANCE_MEMSIZE) || Math.max(1024, Math.min(2048, Math.floor(hostMiB / 4)));
  return { smp, memsize };
}

/** virt-customize's own flags for that size (guestfish takes the memory from LIBGUESTFS_MEMSIZE, the vCPUs by set-smp). */
export function applianceArgs(): string[] {
  const { smp, memsize } = applianceSize();
  return ["--smp", String(smp), "--memsize", String(memsize)];
}

/** The environment libguestfs needs to use that accelerator. */
export function guestfsEnv(accel: Accelerator): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LIBGUESTFS_MEMSIZE: process.env.LIBGUESTFS_MEMSIZE ?? String(applianceSize().memsize),
    LIBGUESTFS_BACKEND: process.env.LIBGUESTFS_BACKEND ?? "direct",
    ...(accel === "tcg" ? { LIBGUESTFS_BACKEND_SETTINGS: "force_tcg" } : {}),
  };
}
