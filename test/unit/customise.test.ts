import { describe, expect, it } from "vitest";
import {
  applianceUrl,
  customiseArgs,
  APT_NO_TRANSLATIONS,
  DPKG_UNSAFE_IO,
  HYGIENE_DELETES,
  POLICY_RC_D,
  shareAptRuns,
  type CustomiseInput,
} from "../../builder/pipeline/customise";
import type { Step } from "../../images/schema";

const base: CustomiseInput = {
  family: "debian",
  upstreamArch: "amd64",
  steps: [],
  ecosystem: { repository: "http://127.0.0.1:18680/packages", version: "1.0.0" },
  provenance: { IMAGE_ID: "debian-12", IMAGE_CONTENT_HASH: "abc" },
};
const argsFor = (over: Partial<CustomiseInput>) => customiseArgs({ ...base, ...over });
/** What every Debian-family customisation starts with: no service starts (policy-rc.d), no fsync, no translations. */
const GUARD = argsFor({ steps: [] }).slice(0, 8);

describe("customiseArgs", () => {
  it.each([
    { step: { op: "install", packages: ["htop", "jq"] } as Step, args: ["--install", "htop,jq"] },
    { step: { op: "remove", packages: ["nano"] } as Step, args: ["--uninstall", "nano"] },
    {
      step: { op: "upgrade-kernel", package: "linux-image-cloud-{arch}" } as Step,
      args: ["--install", "linux-image-cloud-amd64"],
    },
    { step: { op: "upgrade-cloud-init" } as Step, args: ["--install", "cloud-init"] },
    { step: { op: "run", command: "echo hi" } as Step, args: ["--run-command", "echo hi"] },
    { step: { op: "enable-service", name: "chrony" } as Step, args: ["--run-command", "systemctl enable 'chrony'"] },
    {
      step: { op: "write-file", path: "/etc/motd", content: "hello\n", mode: "0600" } as const,
      args: ["--write", "/etc/motd:hello\n", "--chmod", "0600:/etc/motd"],
    },
  ])("debian: $step.op", ({ step, args }) => {
    expect(argsFor({ steps: [step] }).slice(GUARD.length, GUARD.length + args.length)).toEqual(args);
  });

  it("keeps Debian maintainer scripts from starting services while customising, and lifts that after the recipe", () => {
    const args = argsFor({
      steps: [{ op: "install", packages: ["mariadb-server"] }],
      extraArgs: ["--run-command", "grub-install"],
    });
    expect(args.slice(0, GUARD.length)).toEqual(GUARD);
    expect(GUARD[1]).toMatch(/^\/usr\/sbin\/policy-rc\.d:#!\/bin\/sh\n[^]*exit 101\n$/);
    expect(GUARD.slice(4)).toEqual([
      "--write",
      `${DPKG_UNSAFE_IO}:force-unsafe-io\n`,
      "--write",
      `${APT_NO_TRANSLATIONS}:Acquire::Languages "none";\n`,
    ]);
    for (const path of [DPKG_UNSAFE_IO, APT_NO_TRANSLATIONS])
      expect(args[args.indexOf(path, GUARD.length) - 1], path).toBe("--delete");
    const lifted = args.indexOf(POLICY_RC_D, GUARD.length);
    expect(args[lifted - 1]).toBe("--delete");
    // After the recipe and the disk-level steps, before provenance and hygiene.
    expect(lifted).toBeGreaterThan(args.indexOf("grub-install"));
    expect(lifted).toBeLessThan(args.findIndex((a) => a.startsWith("/etc/scw-release:")));
    expect(argsFor({ family: "rhel", steps: [] })).not.toContain(POLICY_RC_D);
  });

  it.each([
    { family: "rhel" as const, args: ["--run-command", "dnf -y upgrade kernel || dnf -y install kernel"] },
    { family: "arch" as const, args: ["--run-command", "pacman -S --noconfirm --needed kernel"] },
  ])("$family upgrades with its package manager", ({ family, args }) => {
    expect(argsFor({ family, steps: [{ op: "upgrade-kernel", package: "kernel" }] }).slice(0, 2)).toEqual(args);
  });

  it("adds scaleway-ecosystem from a loopback repository through the appliance gateway, then removes the source", () => {
    expect(argsFor({ steps: [{ op: "scaleway-ecosystem" }] }).slice(GUARD.length, GUARD.length + 6)).toEqual([
      "--write",
      "/etc/apt/sources.list.d/scaleway-ecosystem.list:deb [trusted=yes] http://169.254.2.2:18680/packages/debian ./\n",
      "--install",
      "scaleway-ecosystem=1.0.0",
      "--delete",
      "/etc/apt/sources.list.d/scaleway-ecosystem.list",
    ]);
  });

  it("gives the base recipe's three installs one apt run: the repository written before it, removed after it", () => {
    const args = argsFor({
      steps: [
        { op: "scaleway-ecosystem" },
        { op: "upgrade-kernel", package: "linux-image-cloud-{arch}" },
        { op: "upgrade-cloud-init" },
      ],
    });
    expect(args.filter((a) => a === "--install")).toHaveLength(1);
    expect(args.slice(GUARD.length, GUARD.length + 6)).toEqual([
      "--write",
      "/etc/apt/sources.list.d/scaleway-ecosystem.list:deb [trusted=yes] http://169.254.2.2:18680/packages/debian ./\n",
      "--install",
      "scaleway-ecosystem=1.0.0,linux-image-cloud-amd64,cloud-init",
      "--delete",
      "/etc/apt/sources.list.d/scaleway-ecosystem.list",
    ]);
  });

  it.each([
    {
      name: "adjacent installs",
      steps: [
        ["--install", "a"],
        ["--install", "b,c"],
      ],
      out: [["--install", "a,b,c"]],
    },
    {
      name: "a command between installs keeps its place",
      steps: [
        ["--install", "a"],
        ["--run-command", "x"],
        ["--install", "b"],
      ],
      out: [
        ["--install", "a"],
        ["--run-command", "x"],
        ["--install", "b"],
      ],
    },
    {
      name: "writes before, deletes after the shared install",
      steps: [
        ["--install", "k"],
        ["--write", "/l:deb r ./", "--install", "e=1", "--delete", "/l"],
        ["--install", "c"],
      ],
      out: [["--write", "/l:deb r ./", "--install", "k,e=1,c", "--delete", "/l"]],
    },
    {
      name: "a removal is not an install",
      steps: [
        ["--install", "a"],
        ["--uninstall", "n"],
        ["--install", "b"],
      ],
      out: [
        ["--install", "a"],
        ["--uninstall", "n"],
        ["--install", "b"],
      ],
    },
    {
      name: "a file step ends a group",
      steps: [
        ["--install", "a"],
        ["--write", "/f:x", "--chmod", "0644:/f"],
        ["--install", "b"],
      ],
      out: [
        ["--install", "a"],
        ["--write", "/f:x", "--chmod", "0644:/f"],
        ["--install", "b"],
      ],
    },
  ])("shareAptRuns: $name", ({ steps, out }) => expect(shareAptRuns(steps)).toEqual(out));

  it("keeps one install per step for rhel, whose dnf keeps its metadata between runs", () => {
    const args = argsFor({
      family: "rhel",
      steps: [
        { op: "install", packages: ["tmux"] },
        { op: "install", packages: ["htop"] },
      ],
    });
    expect(args.filter((a) => a === "--install")).toHaveLength(2);
  });

  it("refuses a remote ecosystem repository without a pinned key", () => {
    expect(() =>
      argsFor({
        steps: [{ op: "scaleway-ecosystem" }],
        ecosystem: { repository: "https://pkgs.example/eco", version: "1" },
      }),
    ).toThrow(/needs a pinned signing key: set image-factory:ecosystemKeyFingerprint/);
  });

  it.each([
    {
      name: "a signed loopback repository: verified with its key, then source and key removed",
      family: "debian" as const,
      repository: "http://127.0.0.1:18680/packages",
      args: [
        "--write",
        "/usr/share/keyrings/scaleway-ecosystem.asc:KEY",
        "--write",
        "/etc/apt/sources.list.d/scaleway-ecosystem.list:deb [signed-by=/usr/share/keyrings/scaleway-ecosystem.asc] http://169.254.2.2:18680/packages/debian ./\n",
        "--install",
        "scaleway-ecosystem=1",
        "--delete",
        "/etc/apt/sources.list.d/scaleway-ecosystem.list",
        "--delete",
        "/usr/share/keyrings/scaleway-ecosystem.asc",
      ],
    },
    {
      name: "a remote repository: its key installed for the image's updates",
      family: "debian" as const,
      repository: "https://pkgs.example/eco",
      args: [
        "--write",
        "/usr/share/keyrings/scaleway-ecosystem.asc:KEY",
        "--write",
        "/etc/apt/sources.list.d/scaleway-ecosystem.list:deb [signed-by=/usr/share/keyrings/scaleway-ecosystem.asc] https://pkgs.example/eco/debian ./\n",
        "--install",
        "scaleway-ecosystem=1",
      ],
    },
    {
      name: "a remote dnf repository: gpgcheck with the installed key",
      family: "rhel" as const,
      repository: "https://pkgs.example/eco",
      args: [
        "--write",
        "/etc/pki/rpm-gpg/RPM-GPG-KEY-scaleway-ecosystem:KEY",
        "--write",
        "/etc/yum.repos.d/scaleway-ecosystem.repo:[scaleway-ecosystem]\nname=Scaleway ecosystem\nbaseurl=https://pkgs.example/eco/rhel/$basearch\nenabled=1\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-scaleway-ecosystem\n",
        "--install",
        "scaleway-ecosystem-1",
      ],
    },
  ])("$name", ({ family, repository, args }) => {
    const all = argsFor({
      family,
      steps: [{ op: "scaleway-ecosystem" }],
      ecosystem: { repository, version: "1", signingKey: "KEY" },
    });
    const start = all.indexOf("--write", family === "debian" ? GUARD.length : 0);
    expect(all.slice(start, start + args.length)).toEqual(args);
    if (!repository.startsWith("http://127.")) expect(all).not.toContain("/usr/share/keyrings/scaleway-ecosystem.asc");
  });

  it("writes provenance, lists packages, cleans up, and relabels last", () => {
    const args = argsFor({ family: "rhel", steps: [{ op: "selinux-relabel" }, { op: "install", packages: ["tmux"] }] });
    expect(args.slice(0, 2)).toEqual(["--install", "tmux"]);
    expect(args).toContain("/etc/scw-release:IMAGE_ID=debian-12\nIMAGE_CONTENT_HASH=abc\n");
    for (const path of HYGIENE_DELETES) expect(args).toContain(path);
    expect(args.slice(-3)).toEqual(["--truncate", "/etc/machine-id", "--selinux-relabel"]);
  });

  it.each([
    ["http://127.0.0.1:9000/x/", "http://169.254.2.2:9000/x"],
    ["http://localhost:9000/x", "http://169.254.2.2:9000/x"],
    ["https://pkgs.example/x", "https://pkgs.example/x"],
  ])("applianceUrl(%s) = %s", (url, out) => expect(applianceUrl(url)).toBe(out));
});
