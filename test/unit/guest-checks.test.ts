import { describe, expect, it } from "vitest";
import { GUEST_CHECKS } from "../../builder/release/guest-checks";
import { startMetadataServer } from "../../builder/release/metadata-server";
import { fingerprintsIn } from "../../builder/release/ssh";

const expectations = { hostname: "factory-test-abc123", releaseId: "debian-12" };
const check = (name: string) => {
  const c = GUEST_CHECKS.find((x) => x.name.startsWith(name));
  if (!c) throw new Error(`no check ${name}`);
  return (stdout: string, code = 0) => c.verdict({ code, stdout, stderr: "" }, expectations);
};

describe("in-guest check verdicts", () => {
  it.each([
    {
      c: "cloud-init",
      out: "status: done\nboot_status_code: enabled-by-generator\nerrors: []\n",
      code: 0,
      reason: null,
    },
    {
      c: "cloud-init",
      out: "status: error\ndetail: locale failed\n",
      code: 1,
      reason: /cloud-init status exit 1: status: error/,
    },
    {
      c: "scaleway-ecosystem",
      out: "install ok installed\n/usr/bin/scw-userdata\n/usr/bin/scw-metadata\n/usr/sbin/scw-generate-ssh-keys\n",
      code: 0,
      reason: null,
    },
    {
      c: "scaleway-ecosystem",
      out: "install ok installed\n/usr/bin/scw-userdata\n",
      code: 0,
      reason: /helpers missing: scw-metadata, scw-generate-ssh-keys/,
    },
    { c: "scaleway-ecosystem", out: "", code: 1, reason: /not installed/ },
    { c: "machine-id", out: "0123456789abcdef0123456789abcdef\n", code: 0, reason: null },
    { c: "machine-id", out: "\n", code: 0, reason: /not a generated 32-hex id/ },
    { c: "SSH host keys", out: "/etc/ssh/ssh_host_ed25519_key 1000 900\n", code: 0, reason: null },
    { c: "SSH host keys", out: "/etc/ssh/ssh_host_ed25519_key 800 900\n", code: 0, reason: /baked into the image/ },
    { c: "hostname", out: "factory-test-abc123\n", code: 0, reason: null },
    { c: "hostname", out: "localhost\n", code: 0, reason: /hostname is "localhost"/ },
    {
      c: "no password",
      out: "passwordauthentication no\nkbdinteractiveauthentication no\nroot L 2026-11-22 0 99999 7 -1\n",
      code: 0,
      reason: null,
    },
    { c: "no password", out: "passwordauthentication yes\nroot L\n", code: 0, reason: /sshd allows passwords/ },
    {
      c: "no password",
      out: "passwordauthentication no\nroot P 2026-11-22\n",
      code: 0,
      reason: /root password status is P/,
    },
    { c: "time", out: "active\ninactive\n", code: 3, reason: null },
    { c: "time", out: "inactive\ninactive\n", code: 3, reason: /no time sync service active/ },
    { c: "release file", out: "IMAGE_ID=debian-12\nIMAGE_LABEL=debian_bookworm\n", code: 0, reason: null },
    { c: "release file", out: "IMAGE_ID=debian-13\n", code: 0, reason: /not for debian-12/ },
  ])("$c: $out", ({ c, out, code, reason }) => {
    const verdict = check(c)(out, code);
    if (reason === null) expect(verdict).toBeNull();
    else expect(verdict).toMatch(reason);
  });
});

describe("SSH fingerprints", () => {
  it("finds every SHA256 fingerprint in ssh-keygen -l output", () => {
    const text =
      "256 SHA256:3REj8POMlmOm3q2N6frZEKeFQGzhWi8N3kDTUdilwwE root@h (ED25519)\n3072 SHA256:S1BQDbEBe/RHAcp3Oq/8nh1TqX2Da+JKoqvX25mqf7A root@h (RSA)\n";
    expect([...fingerprintsIn(text)]).toEqual([
      "SHA256:3REj8POMlmOm3q2N6frZEKeFQGzhWi8N3kDTUdilwwE",
      "SHA256:S1BQDbEBe/RHAcp3Oq/8nh1TqX2Da+JKoqvX25mqf7A",
    ]);
    expect(fingerprintsIn("no keys here").size).toBe(0);
  });
});

describe("metadata server", () => {
  it("serves conf and user data like the Instance metadata API", async () => {
    const md = await startMetadataServer({ id: "i-1", hostname: "h1" });
    try {
      expect(await (await fetch(`${md.url}/conf?format=json`)).json()).toEqual({ id: "i-1", hostname: "h1" });
      const missing = await fetch(`${md.url}/user_data/ssh-host-fingerprints`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ type: "not_found" });
      const waiting = md.waitFor("ssh-host-fingerprints", 5000);
      const patch = await fetch(`${md.url}/user_data/ssh-host-fingerprints`, {
        method: "PATCH",
        headers: { "content-type": "text/plain" },
        body: "256 SHA256:x",
      });
      expect(patch.status).toBe(204);
      expect(await waiting).toBe("256 SHA256:x");
      expect(await (await fetch(`${md.url}/user_data`)).json()).toEqual({ user_data: ["ssh-host-fingerprints"] });
    } finally {
      await md.close();
    }
  });
});
