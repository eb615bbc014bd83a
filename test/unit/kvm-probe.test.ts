import { describe, expect, it } from "vitest";
import { kvmProbeCommand } from "../../builder/system/accel";

// The KVM probe boots the host's own kernel with the host's own QEMU: an arm64 build host must not be probed with
// qemu-system-x86_64 (it would be judged TCG-only and every build forced to TCG).
describe("kvmProbeCommand", () => {
  const k = "/boot/vmlinuz-6.1.0-x";
  const tail = ["-accel", "kvm", "-m", "256", "-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio"];
  it.each([
    {
      arch: "x64",
      want: {
        command: "qemu-system-x86_64",
        args: [...tail, "-kernel", k, "-append", "console=ttyS0 panic=-1 quiet loglevel=3"],
      },
    },
    {
      arch: "arm64",
      want: {
        command: "qemu-system-aarch64",
        args: [
          "-machine",
          "virt",
          "-cpu",
          "host",
          ...tail,
          "-kernel",
          k,
          "-append",
          "console=ttyAMA0 panic=-1 quiet loglevel=3",
        ],
      },
    },
    { arch: "riscv64", want: undefined },
    { arch: "ia32", want: undefined },
  ])("$arch", ({ arch, want }) => {
    expect(kvmProbeCommand(arch, k)).toEqual(want);
  });
});
