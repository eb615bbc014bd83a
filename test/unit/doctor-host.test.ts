/** `doctor --host`: the probe's output as a build host answers it, judged for an architecture and a CLI version. */
import { describe, expect, it } from "vitest";
import { hostFindings, parseProbe, privateKeyFindings, type HostFacts } from "../../builder/cli/doctor-host";

const DIGEST = "a".repeat(64);
const ready: HostFacts = {
  arch: "aarch64",
  kvm: "rw",
  freeKib: 50 * 2 ** 20,
  cli: "/usr/local/bin/image-factory",
  accel: "kvm",
  stamp: DIGEST,
  envAccepted: true,
};
const W = "factory@10.0.0.5:22";

describe("the probe", () => {
  it("reads its key=value lines, the stamp's digest and whether the sent variable came back", () => {
    const out = [
      "arch=aarch64",
      "kvm=rw",
      "free_kib=52428800",
      "cli=/usr/local/bin/image-factory",
      "accel=kvm",
      `stamp={"sources":"${DIGEST}"}`,
      "env=accepted",
      "",
    ].join("\n");
    expect(parseProbe(out)).toEqual(ready);
    expect(parseProbe("arch=x86_64\nkvm=absent\nfree_kib=\ncli=\naccel=\nstamp=\nenv=\n")).toEqual({
      arch: "x86_64",
      kvm: "absent",
      freeKib: 0,
      cli: "",
      accel: "",
      stamp: "",
      envAccepted: false,
    });
  });
});

describe("a build host's findings", () => {
  it.each([
    { what: "a ready arm64 host", facts: {}, arch: "arm64" as const, problems: [] },
    {
      what: "an x86_64 host listed for arm64",
      facts: { arch: "x86_64" },
      arch: "arm64" as const,
      problems: [`${W}: is x86_64, not aarch64: libguestfs customises only guests of its own architecture`],
    },
    {
      what: "no KVM",
      facts: { kvm: "absent" },
      arch: "arm64" as const,
      problems: [`${W}: has no /dev/kvm: builds would run under TCG, several times slower`],
    },
    {
      what: "KVM the user cannot open",
      facts: { kvm: "denied" },
      arch: "arm64" as const,
      problems: [`${W}: /dev/kvm exists but this user cannot open it`],
    },
    {
      what: "KVM that opens but does not boot a kernel (nested)",
      facts: { accel: "tcg" as const },
      arch: "arm64" as const,
      problems: [
        `${W}: opens /dev/kvm, but its kernel does not boot under KVM there (nested virtualisation?): builds would run under TCG`,
      ],
    },
    {
      what: "no CLI yet to boot a kernel with: the device is all there is to judge",
      facts: { cli: "", stamp: "", accel: "" as const },
      arch: "arm64" as const,
      problems: [`${W}: has no image-factory on PATH`],
    },
    {
      what: "a small disk",
      facts: { freeKib: 5 * 2 ** 20 },
      arch: "arm64" as const,
      problems: [`${W}: has 5.0 GiB free under /var/tmp, below the 20 GiB a build needs`],
    },
    {
      what: "no CLI",
      facts: { cli: "", stamp: "" },
      arch: "arm64" as const,
      problems: [`${W}: has no image-factory on PATH`],
    },
    {
      what: "another CLI version",
      facts: { stamp: "b".repeat(64) },
      arch: "arm64" as const,
      problems: [`${W}: runs the CLI bbbbbbbbbbbbbbbb, not this checkout's aaaaaaaaaaaaaaaa`],
    },
    {
      what: "sshd without AcceptEnv",
      facts: { envAccepted: false },
      arch: "arm64" as const,
      problems: [`${W}: sshd does not accept FACTORY_* variables: the remote Command's environment would not arrive`],
    },
  ])("$what", ({ facts, arch, problems }) => {
    expect(hostFindings({ ...ready, ...facts } as HostFacts, arch, DIGEST, W).map((f) => f.problem)).toEqual(problems);
  });
});

describe("the build hosts' private key in the stack file", () => {
  it.each([
    { config: {}, problems: [] },
    { config: { "image-factory:buildHostPrivateKey": { secure: "v1:abc" } }, problems: [] },
    {
      config: { "image-factory:buildHostPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\n…" },
      problems: ["image-factory:buildHostPrivateKey is in clear in the stack file"],
    },
  ])("$config", ({ config, problems }) => {
    expect(privateKeyFindings(config).map((f) => f.problem)).toEqual(problems);
  });
});
