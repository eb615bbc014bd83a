/** The libguestfs appliance's size and network, decided from the host and the recipe. */
import { describe, expect, it } from "vitest";
import { applianceSize } from "../../builder/system/accel";
import { HYGIENE_DELETES, needsNetwork } from "../../builder/pipeline/customise";
import { uefiGuestArgs } from "../../builder/pipeline/uefi";
import type { Step } from "../../images/schema";

describe("applianceSize", () => {
  it.each([
    {
      why: "a 2-core, 24 GiB host: both cores, 2 GiB",
      cores: 2,
      mem: 24_000,
      env: {},
      size: { smp: 2, memsize: 2048 },
    },
    {
      why: "one core, 3 GiB: one vCPU, never under 1 GiB",
      cores: 1,
      mem: 3_000,
      env: {},
      size: { smp: 1, memsize: 1024 },
    },
    { why: "a 16-core host: at most 4 vCPUs", cores: 16, mem: 64_000, env: {}, size: { smp: 4, memsize: 2048 } },
    { why: "6 GiB: a quarter of it", cores: 2, mem: 6_000, env: {}, size: { smp: 2, memsize: 1500 } },
    {
      why: "overrides win",
      cores: 2,
      mem: 24_000,
      env: { FACTORY_APPLIANCE_SMP: "1", FACTORY_APPLIANCE_MEMSIZE: "3072" },
      size: { smp: 1, memsize: 3072 },
    },
  ])("$why", ({ cores, mem, env, size }) => expect(applianceSize(cores, mem, env)).toEqual(size));
});

describe("needsNetwork", () => {
  const file: Step = { op: "write-file", path: "/etc/x", content: "x", mode: "0644" };
  it.each([
    {
      why: "files and services only",
      steps: [file, { op: "enable-service", name: "x.service" }] as Step[],
      network: false,
    },
    { why: "a removal (no index refresh)", steps: [{ op: "remove", packages: ["x"] }] as Step[], network: false },
    { why: "an install", steps: [file, { op: "install", packages: ["openvpn"] }] as Step[], network: true },
    { why: "the ecosystem package", steps: [{ op: "scaleway-ecosystem" }] as Step[], network: true },
    { why: "a command, which may fetch", steps: [{ op: "run", command: "true" }] as Step[], network: true },
    {
      why: "files only, but the UEFI bootloader to install",
      steps: [file],
      extra: uefiGuestArgs("rhel", { state: "added (partition 3, gpt)", needsBootloader: true }),
      network: true,
    },
    {
      why: "files only, the ESP already there",
      steps: [file],
      extra: uefiGuestArgs("rhel", { state: "present (partition 2)", needsBootloader: false }),
      network: false,
    },
  ])("$why: $network", ({ steps, extra, network }) => expect(needsNetwork(steps, extra)).toBe(network));
});

it("drops APT's binary caches, which the first apt-get update rebuilds", () => {
  expect(HYGIENE_DELETES).toContain("/var/cache/apt/*.bin");
});
