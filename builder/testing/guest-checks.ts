/**
 * In-guest checks of a freshly booted image, run over SSH: what a customer's first boot must get right. Each
 * check says why it failed in words a release manager can act on.
 */
import type { SshSession } from "./ssh";

export type CheckStatus = "pass" | "fail" | "skip";
export interface CheckResult {
  name: string;
  status: CheckStatus;
  seconds: number;
  reason: string;
}

export interface GuestExpectations {
  hostname: string;
  releaseId: string;
}

interface GuestCheck {
  name: string;
  command: string;
  /** Null when the output is right, else the reason it is not. */
  verdict(out: { code: number; stdout: string; stderr: string }, expect: GuestExpectations): string | null;
}

const firstLine = (s: string) => s.trim().split("\n")[0] ?? "";

export const GUEST_CHECKS: GuestCheck[] = [
  {
    name: "cloud-init finished without errors",
    command: "cloud-init status --wait --long",
    verdict: ({ code, stdout }) =>
      code === 0 && /^status: done$/m.test(stdout) ? null : `cloud-init status exit ${code}: ${stdout.replace(/\s+/g, " ").slice(0, 200)}`,
  },
  {
    name: "scaleway-ecosystem and its helpers present",
    command:
      "dpkg-query -W -f='${Status}\\n' scaleway-ecosystem 2>/dev/null || rpm -q scaleway-ecosystem;" +
      " for t in /usr/bin/scw-userdata /usr/bin/scw-metadata /usr/sbin/scw-generate-ssh-keys; do test -x $t && echo $t; done",
    verdict: ({ stdout }) => {
      if (!/install ok installed|^scaleway-ecosystem-/m.test(stdout)) return "package scaleway-ecosystem is not installed";
      const found = stdout.split("\n").map((l) => l.trim().split("/").at(-1));
      const missing = ["scw-userdata", "scw-metadata", "scw-generate-ssh-keys"].filter((t) => !found.includes(t));
      return missing.length ? `helpers missing: ${missing.join(", ")}` : null;
    },
  },
  {
    name: "machine-id generated at first boot",
    command: "cat /etc/machine-id",
    verdict: ({ stdout }) => (/^[0-9a-f]{32}$/.test(stdout.trim()) ? null : `machine-id is "${stdout.trim()}", not a generated 32-hex id`),
  },
  {
    name: "SSH host keys generated at first boot",
    command: "btime=$(awk '/^btime/{print $2}' /proc/stat); for k in /etc/ssh/ssh_host_*_key; do echo \"$k $(stat -c %Y $k) $btime\"; done",
    verdict: ({ stdout }) => {
      const keys = stdout.trim().split("\n").filter(Boolean).map((l) => l.split(" "));
      if (keys.length === 0) return "no SSH host keys";
      const old = keys.filter(([, mtime, btime]) => Number(mtime) < Number(btime));
      return old.length ? `host keys older than this boot (baked into the image): ${old.map((k) => k[0]).join(", ")}` : null;
    },
  },
  {
    name: "hostname set from metadata",
    command: "hostname",
    verdict: ({ stdout }, e) => (stdout.trim() === e.hostname ? null : `hostname is "${stdout.trim()}", expected "${e.hostname}"`),
  },
  {
    name: "no password login",
    command: "sudo sshd -T 2>/dev/null | grep -iE '^(passwordauthentication|kbdinteractiveauthentication) '; sudo passwd -S root",
    verdict: ({ stdout }) => {
      if (!/^passwordauthentication no$/im.test(stdout)) return `sshd allows passwords: ${stdout.replace(/\s+/g, " ").slice(0, 120)}`;
      const root = /^root (\S+)/m.exec(stdout)?.[1];
      return root === "L" ? null : `root password status is ${root ?? "unknown"}, expected locked (L)`;
    },
  },
  {
    name: "time synchronisation running",
    command: "systemctl is-active systemd-timesyncd chronyd chrony 2>/dev/null",
    verdict: ({ stdout }) => (/^active$/m.test(stdout) ? null : `no time sync service active (${stdout.trim().replace(/\n/g, ", ")})`),
  },
  {
    name: "release file present",
    command: "cat /etc/scw-release",
    verdict: ({ stdout }, e) => (new RegExp(`^IMAGE_ID=${e.releaseId.replace(/\./g, "\\.")}$`, "m").test(stdout) ? null : `/etc/scw-release missing or not for ${e.releaseId}: ${firstLine(stdout)}`),
  },
];

export async function runGuestChecks(ssh: SshSession, expect: GuestExpectations): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of GUEST_CHECKS) {
    const started = Date.now();
    const out = await ssh.exec(check.command);
    const reason = check.verdict(out, expect);
    results.push({ name: check.name, status: reason ? "fail" : "pass", seconds: (Date.now() - started) / 1000, reason: reason ?? "" });
  }
  return results;
}
