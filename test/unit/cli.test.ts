import { afterEach, describe, expect, it, vi } from "vitest";
import { SCS_KEYS } from "../../builder/core/scs";

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => (err.push(String(s)), true));
  try {
    const { main } = await import("../../builder/cli.js");
    const code = await main(args);
    return { code, stdout: out.join(""), stderr: err.join("") };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => {
  vi.doUnmock("../../images");
  vi.resetModules();
});

describe("image-factory CLI", () => {
  it("catalog --json prints every release with its SCS-0102 keys under exactly those names", async () => {
    const { code, stdout } = await run(["catalog", "--json"]);
    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as {
      id: string;
      architectures: string[];
      scs: Record<string, Record<string, unknown>>;
    }[];
    expect(rows.length).toBeGreaterThanOrEqual(12);
    for (const row of rows) {
      expect(Object.keys(row.scs)).toEqual(row.architectures);
      for (const meta of Object.values(row.scs)) expect(Object.keys(meta).sort()).toEqual([...SCS_KEYS].sort());
    }
  });

  it("exits 2 with the problems on an invalid catalog", async () => {
    vi.doMock("../../images", async (original) => {
      const real = await original<typeof import("../../images")>();
      return {
        ...real,
        loadCatalog: () => real.parseCatalog([{ file: "images/broken.ts", releases: [{ kind: "os", id: "x" }] }]),
      };
    });
    const { code, stderr } = await run(["catalog", "--json"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/image-factory catalog: invalid image catalog:\n  - images\/broken\.ts: entry 0 \(x\): /);
  });

  it("plans a stack from its stack file", async () => {
    const { code, stdout } = await run(["plan", "--stack", "prod-fr-par-2", "--json"]);
    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as { name: string; zone: string }[];
    expect(rows.every((r) => r.zone === "fr-par-2")).toBe(true);
    expect(rows.map((r) => r.name)).toContain("ubuntu-24.04-arm64");
  });

  it("shows which host builds what, and the builds with none", async () => {
    const lines = (await run(["plan", "--stack", "prod-fr-par-2"])).stdout.split("\n");
    expect(lines[0]).toMatch(/build host\s*$/);
    expect(lines.find((l) => l.includes("debian-12-x86_64"))).toMatch(/ local\s*$/);
    // No arm64 host in the prod stack yet: its preview fails, and plan says why ahead of it.
    expect(lines.find((l) => l.includes("debian-12-arm64"))).toMatch(/ no host\s*$/);
  });

  it("says where the local stack's hashes come from, and only for it", async () => {
    expect((await run(["plan", "--stack", "local"])).stderr).toMatch(
      /^note: the local job adds its ecosystem build and stand-in digests at run time/m,
    );
    const prod = (await run(["plan", "--stack", "prod-fr-par-2"])).stderr;
    expect(prod).not.toMatch(/note:/);
    // Today's pins were written without reading upstream: plan says so for every image.
    expect(prod).toMatch(
      /^warning: \d+ planned image\(s\) rest on unverified upstream trust \(pinProblems\):\n  ubuntu-26.04 x86_64: serial \S+ was pinned without reading upstream's listing/m,
    );
  });

  it("names the stack and key on bad stack config", async () => {
    const { code, stderr } = await run(["plan", "--stack", "no-such-stack"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/stack no-such-stack: invalid configuration:\n  - .*Pulumi\.no-such-stack\.yaml: ENOENT/);
  });

  it("scs-check passes the catalog, and fails a crafted bad entry with its reason", async () => {
    const good = await run(["scs-check", "--at", "2026-11-23"]);
    expect(good).toMatchObject({ code: 0, stdout: "no findings\n" });
    vi.resetModules();
    vi.doMock("../../images", async (original) => {
      const real = await original<typeof import("../../images")>();
      const catalog = real.loadCatalog();
      const releases = catalog.releases.map((r) =>
        r.id === "debian-12" ? { ...r, scs: { ...r.scs, replace_frequency: "sometimes" } } : r,
      ) as typeof catalog.releases;
      return { ...real, loadCatalog: () => ({ releases, byId: new Map(releases.map((r) => [r.id, r])) }) };
    });
    const bad = await run(["scs-check", "--at", "2026-11-23", "--json"]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toEqual([
      expect.objectContaining({ severity: "error", subject: "debian-12 x86_64", rule: "SCS-0102 replace_frequency" }),
      expect.objectContaining({ severity: "error", subject: "debian-12 arm64", rule: "SCS-0102 replace_frequency" }),
    ]);
  });

  it("reports the local stack's lifecycle with the stack's grace period", async () => {
    const { code, stdout } = await run(["lifecycle", "--stack", "local", "--at", "2028-09-01", "--json"]);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { graceDays: number; images: { id: string; state: string }[] };
    expect(report.graceDays).toBe(90);
    expect(report.images.find((i) => i.id === "debian-12")).toMatchObject({ state: "notice" });
  });

  it.each([
    { args: ["--zone", "mars-1"], says: "--zone: give a Scaleway Availability Zone" },
    { args: ["--zone", "fr-par-1"], says: "SCW_ACCESS_KEY is not set" },
  ])("lifecycle $args refuses with a usage error naming what is wrong", async ({ args, says }) => {
    const saved = process.env.SCW_ACCESS_KEY;
    delete process.env.SCW_ACCESS_KEY;
    try {
      const { code, stderr } = await run(["lifecycle", "--at", "2028-09-01", ...args]);
      expect(code).toBe(2);
      expect(stderr).toContain(says);
    } finally {
      if (saved !== undefined) process.env.SCW_ACCESS_KEY = saved;
    }
  });

  it.each([
    { args: ["--zone", "mars-1", "--release", "debian-12"], says: "--zone: give a Scaleway Availability Zone" },
    {
      args: ["--zone", "fr-par-1", "--release", "debian-0"],
      says: '--release: give a release id of the catalog (got "debian-0")',
    },
    { args: ["--zone", "fr-par-1", "--release", "debian-12"], says: "SCW_ACCESS_KEY is not set" },
  ])("released $args refuses with a usage error naming what is wrong", async ({ args, says }) => {
    const saved = process.env.SCW_ACCESS_KEY;
    delete process.env.SCW_ACCESS_KEY;
    try {
      const { code, stderr } = await run(["released", ...args]);
      expect(code).toBe(2);
      expect(stderr).toContain(says);
    } finally {
      if (saved !== undefined) process.env.SCW_ACCESS_KEY = saved;
    }
  });

  it("retention refuses to run without the zone's credentials, naming the variable", async () => {
    const saved = process.env.SCW_ACCESS_KEY;
    delete process.env.SCW_ACCESS_KEY;
    try {
      const { code, stderr } = await run(["retention", "--stack", "prod-fr-par-1"]);
      expect(code).toBe(2);
      expect(stderr).toContain("SCW_ACCESS_KEY is not set");
    } finally {
      if (saved !== undefined) process.env.SCW_ACCESS_KEY = saved;
    }
  });

  it("rejects unknown commands and flags", async () => {
    expect((await run(["frobnicate"])).code).toBe(2);
    const bad = await run(["catalog", "--jsn"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      "image-factory catalog: unknown option --jsn for catalog; did you mean --json? (image-factory catalog --help lists them)\n",
    );
    expect((await run(["plna"])).stderr).toMatch(/^image-factory: unknown command "plna"; did you mean plan\?/);
  });
});
