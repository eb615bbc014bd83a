import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { inSubnet, RUN_ORDER, SCENARIOS } from "../../builder/release/battery";
import { confText } from "../../builder/release/metadata-server";

describe("test battery helpers", () => {
  it.each([
    { address: "172.16.4.15", cidr: "172.16.4.0/22", inside: true },
    { address: "172.16.7.255", cidr: "172.16.4.0/22", inside: true },
    { address: "172.16.8.1", cidr: "172.16.4.0/22", inside: false },
    { address: "10.0.2.15", cidr: "172.16.0.0/12", inside: false },
    { address: "192.168.1.1", cidr: "0.0.0.0/0", inside: true },
    { address: "192.168.1.1", cidr: "192.168.1.1/32", inside: true },
    { address: "192.168.1.2", cidr: "192.168.1.1/32", inside: false },
  ])("$address in $cidr: $inside", ({ address, cidr, inside }) => {
    expect(inSubnet(address, cidr)).toBe(inside);
  });

  // Written out, not derived from SCENARIOS: dropping a scenario from the code must fail here.
  const TWELVE = [
    "archive",
    "backup",
    "block volume",
    "cold snapshot",
    "dns",
    "hot snapshot",
    "network",
    "private networks",
    "reboot",
    "rescue",
    "security group",
    "stop in place",
  ];

  it("runs each of the twelve scenarios in exactly one group", () => {
    // The names alone prove nothing: a scenario left out of GROUPS is known to the CLI but never run.
    const run = [...RUN_ORDER];
    expect([...run].sort()).toEqual(TWELVE);
    expect(new Set(run).size).toBe(run.length);
  });

  it("documents the scenarios it has, and only those, in docs/battery.md's table", () => {
    const doc = readFileSync(join(__dirname, "../../docs/battery.md"), "utf8");
    const lines = doc.slice(doc.indexOf("| scenario | what must hold |")).split("\n").slice(2);
    const end = lines.findIndex((l) => !l.startsWith("|"));
    const rows = lines.slice(0, end < 0 ? undefined : end).map((l) => l.split("|")[1]!.trim());
    expect(rows.sort()).toEqual([...SCENARIOS].sort());
  });

  it("has the blog's twelve scenarios", () => {
    expect([...SCENARIOS].sort()).toEqual(TWELVE);
  });
});

describe("metadata /conf text form", () => {
  it("numbers lists, joins nested keys and quotes strings as the real API does", () => {
    expect(
      confText({
        id: "x",
        ssh_public_keys: [{ key: "ssh-ed25519 AAA c" }],
        public_ip: { address: "1.2.3.4" },
        ipv6: null,
        n: 3,
      }),
    ).toBe(
      [
        "ID='x'",
        "SSH_PUBLIC_KEYS=1",
        "SSH_PUBLIC_KEYS_0_KEY='ssh-ed25519 AAA c'",
        "PUBLIC_IP_ADDRESS='1.2.3.4'",
        "N=3",
        "",
      ].join("\n"),
    );
    expect(confText({ name: "it's" })).toBe("NAME='it'\\''s'\n");
  });
});

describe("image-factory test-instance", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });
  async function cli(args: string[]) {
    const err: string[] = [];
    const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => (err.push(String(s)), true));
    try {
      const { main } = await import("../../builder/cli.js");
      return { code: await main(args), stderr: err.join("") };
    } finally {
      e.mockRestore();
    }
  }
  // Checked before anything else, as every variable of the Command's environment (builder/core/contract.ts).
  const creds = { SCW_ACCESS_KEY: "SCWXXXXXXXXXXXXXXXXX", SCW_SECRET_KEY: "not-a-real-secret" };
  it.each([
    { args: ["test-instance"], env: {}, error: /missing --server \(or FACTORY_SERVER_ID\)/ },
    {
      args: ["test-instance", "--server", "s", "--zone", "fr-par-9", "--release", "debian-12"],
      env: creds,
      error: /--zone \(FACTORY_ZONE\): expected a Scaleway Availability Zone .*\(got "fr-par-9"\)/,
    },
    {
      args: ["test-instance", "--server", "s", "--zone", "fr-par-1", "--release", "debian-99"],
      env: creds,
      error: /no release "debian-99"/,
    },
    {
      args: [
        "test-instance",
        "--server",
        "s",
        "--zone",
        "fr-par-1",
        "--release",
        "debian-12",
        "--only",
        "reboot,teleport",
      ],
      env: { ...creds, SCW_DEFAULT_PROJECT_ID: "11111111-2222-4333-8444-555555555555" },
      error: /--only \(FACTORY_TESTS\): unknown scenario\(s\) teleport/,
    },
    {
      args: ["test-instance", "--server", "s", "--zone", "fr-par-1", "--release", "debian-12"],
      env: { SCW_ACCESS_KEY: "" },
      error: /SCW_ACCESS_KEY is not set/,
    },
  ])("refuses $args with a usage error", async ({ args, env, error }) => {
    delete process.env.SCW_ACCESS_KEY;
    delete process.env.FACTORY_SERVER_ID;
    Object.assign(process.env, env);
    const { code, stderr } = await cli(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(error);
  });
});
