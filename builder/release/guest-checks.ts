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
  /** The address clients reach the Instance at (what an app's client profile must name). */
  publicIp?: string;
}

interface GuestCheck {
  name: string;
  command: string;
  /** How long the command may run (the SSH session's 120 s when unset). */
  timeoutMs?: number;
  /** Null when the output is right, else the reason it is not. */
  verdict(out: { code: number; stdout: string; stderr: string }, expect: GuestExpectations): string | null;
}

const firstLine = (s: string) => s.trim().split("\n")[0] ?? "";

export const GUEST_CHECKS: GuestCheck[] = [
  {
    name: "cloud-init finished without errors",
    command: "cloud-init status --wait --long",
    // It waits for first boot to end: seconds on a real Instance, but over four minutes was seen for an InstantApp
    // under TCG on a busy 2-core machine. The limit only stops a boot that hangs.
    timeoutMs: 600_000,
    verdict: ({ code, stdout }) =>
      code === 0 && /^status: done$/m.test(stdout)
        ? null
        : `cloud-init status exit ${code}: ${stdout.replace(/\s+/g, " ").slice(0, 200)}`,
  },
  {
    name: "scaleway-ecosystem and its helpers present",
    command:
      "dpkg-query -W -f='${Status}\\n' scaleway-ecosystem 2>/dev/null || rpm -q scaleway-ecosystem;" +
      " for t in /usr/bin/scw-userdata /usr/bin/scw-metadata /usr/sbin/scw-generate-ssh-keys; do test -x $t && echo $t; done",
    verdict: ({ stdout }) => {
      if (!/install ok installed|^scaleway-ecosystem-/m.test(stdout))
        return "package scaleway-ecosystem is not installed";
      const found = stdout.split("\n").map((l) => l.trim().split("/").at(-1));
      const missing = ["scw-userdata", "scw-metadata", "scw-generate-ssh-keys"].filter((t) => !found.includes(t));
      return missing.length ? `helpers missing: ${missing.join(", ")}` : null;
    },
  },
  {
    name: "machine-id generated at first boot",
    command: "cat /etc/machine-id",
    verdict: ({ stdout }) =>
      /^[0-9a-f]{32}$/.test(stdout.trim()) ? null : `machine-id is "${stdout.trim()}", not a generated 32-hex id`,
  },
  {
    name: "SSH host keys generated at first boot",
    command:
      "btime=$(awk '/^btime/{print $2}' /proc/stat); for k in /etc/ssh/ssh_host_*_key; do echo \"$k $(stat -c %Y $k) $btime\"; done",
    verdict: ({ stdout }) => {
      const keys = stdout
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(" "));
      if (keys.length === 0) return "no SSH host keys";
      const old = keys.filter(([, mtime, btime]) => Number(mtime) < Number(btime));
      return old.length
        ? `host keys older than this boot (baked into the image): ${old.map((k) => k[0]).join(", ")}`
        : null;
    },
  },
  {
    name: "hostname set from metadata",
    command: "hostname",
    verdict: ({ stdout }, e) =>
      stdout.trim() === e.hostname ? null : `hostname is "${stdout.trim()}", expected "${e.hostname}"`,
  },
  {
    name: "no password login",
    command:
      "sudo sshd -T 2>/dev/null | grep -iE '^(passwordauthentication|kbdinteractiveauthentication) '; sudo passwd -S root",
    verdict: ({ stdout }) => {
      if (!/^passwordauthentication no$/im.test(stdout))
        return `sshd allows passwords: ${stdout.replace(/\s+/g, " ").slice(0, 120)}`;
      const root = /^root (\S+)/m.exec(stdout)?.[1];
      return root === "L" ? null : `root password status is ${root ?? "unknown"}, expected locked (L)`;
    },
  },
  {
    name: "time synchronisation running",
    command: "systemctl is-active systemd-timesyncd chronyd chrony 2>/dev/null",
    verdict: ({ stdout }) =>
      /^active$/m.test(stdout) ? null : `no time sync service active (${stdout.trim().replace(/\n/g, ", ")})`,
  },
  {
    name: "release file present",
    command: "cat /etc/scw-release",
    verdict: ({ stdout }, e) =>
      new RegExp(`^IMAGE_ID=${e.releaseId.replace(/\./g, "\\.")}$`, "m").test(stdout)
        ? null
        : `/etc/scw-release missing or not for ${e.releaseId}: ${firstLine(stdout)}`,
  },
];

/** A secret read into a shell variable and searched for in the logs, never printed itself. */
const notLogged = (variable: string) =>
  `if grep -rqsF -- "$${variable}" /var/log; then echo "LEAKED in /var/log"; fi; ` +
  `if journalctl -b --no-pager -o cat 2>/dev/null | grep -qF -- "$${variable}"; then echo "LEAKED in the journal"; fi`;

/** InstantApps' own checks, after the OS checks: the app works at first boot, with secrets made for this instance. */
export const APP_CHECKS: Record<string, GuestCheck[]> = {
  "app-wordpress": [
    {
      name: "wordpress: installer answers HTTP 200 on port 80",
      command:
        "systemctl is-active apache2 mariadb; curl -sS -m 120 -o /tmp/.wp-install.html -w 'HTTP %{http_code}\n' http://127.0.0.1/wp-admin/install.php;" +
        " grep -o '<title>[^<]*</title>' /tmp/.wp-install.html; rm -f /tmp/.wp-install.html",
      verdict: ({ stdout }) => {
        if (!/^HTTP 200$/m.test(stdout))
          return `install page did not answer 200: ${stdout.replace(/\s+/g, " ").slice(0, 200)}`;
        return /<title>[^<]*Installation[^<]*<\/title>/.test(stdout)
          ? null
          : `port 80 answers, but not with WordPress's installer: ${stdout.replace(/\s+/g, " ").slice(0, 200)}`;
      },
    },
    {
      name: "wordpress: per-instance secrets, private and not logged",
      command: String.raw`stat -c 'config %a %U:%G' /var/www/wordpress/wp-config.php; stat -c 'credentials %a %U' /root/wordpress-credentials.txt;
        pw=$(sed -n "s/^define('DB_PASSWORD', '\(.*\)');$/\1/p" /var/www/wordpress/wp-config.php); [ ${"$"}{#pw} -ge 24 ] && echo 'password set';
        grep -c "^define('[A-Z_]*\(KEY\|SALT\)', '.\{64\}');" /var/www/wordpress/wp-config.php | sed 's/^/salts /'; ${notLogged("pw")}`,
      verdict: ({ stdout }) => {
        const problems = [
          /^config 640 root:www-data$/m.test(stdout) ? "" : "wp-config.php is not 0640 root:www-data",
          /^credentials 600 root$/m.test(stdout) ? "" : "/root/wordpress-credentials.txt is not 0600 root",
          /^password set$/m.test(stdout) ? "" : "no database password in wp-config.php",
          /^salts 8$/m.test(stdout) ? "" : "wp-config.php lacks its 8 keys and salts",
          ...[...stdout.matchAll(/^LEAKED .*/gm)].map((m) => `the database password is ${m[0].slice(7)}`),
        ].filter(Boolean);
        return problems.length ? problems.join("; ") : null;
      },
    },
  ],
  "app-openvpn": [
    {
      name: "openvpn: server listening on 1194/udp",
      command: "systemctl is-active openvpn-server@server; ss -lunH 'sport = :1194'",
      verdict: ({ stdout }) =>
        /^active$/m.test(stdout) && /:1194\b/.test(stdout)
          ? null
          : `openvpn-server@server is not serving 1194/udp: ${stdout.replace(/\s+/g, " ").slice(0, 200)}`,
    },
    {
      name: "openvpn: client profile names this instance and holds a valid certificate",
      command: String.raw`p=/root/client1.ovpn; stat -c 'profile %a %U' $p; grep -E '^(remote|proto|dev) ' $p; d=$(mktemp -d);
        for b in ca cert key tls-crypt; do sed -n "/^<$b>$/,/^<\/$b>$/p" $p | sed '1d;$d' > $d/$b; done;
        openssl verify -CAfile $d/ca $d/cert | sed 's/^.*: /verify /';
        [ "$(openssl x509 -in $d/cert -noout -pubkey)" = "$(openssl pkey -in $d/key -pubout)" ] && echo 'key matches';
        grep -q 'BEGIN OpenVPN Static key' $d/tls-crypt && echo 'tls-crypt present'; rm -rf $d`,
      verdict: ({ stdout }, e) => {
        const remote = /^remote (\S+) 1194$/m.exec(stdout)?.[1];
        const problems = [
          /^profile 600 root$/m.test(stdout) ? "" : "/root/client1.ovpn is not 0600 root",
          !remote
            ? "no `remote <address> 1194` line"
            : e.publicIp && remote !== e.publicIp
              ? `remote is ${remote}, expected the public address ${e.publicIp}`
              : "",
          /^proto udp$/m.test(stdout) ? "" : "proto is not udp",
          /^verify OK$/m.test(stdout) ? "" : "the client certificate does not verify against the profile's CA",
          /^key matches$/m.test(stdout) ? "" : "the private key does not match the certificate",
          /^tls-crypt present$/m.test(stdout) ? "" : "no tls-crypt key",
        ].filter(Boolean);
        return problems.length ? problems.join("; ") : null;
      },
    },
    {
      name: "openvpn: forwarding and NAT for clients",
      command: "sysctl -n net.ipv4.ip_forward; iptables -t nat -S POSTROUTING",
      verdict: ({ stdout }) => {
        if (stdout.trim().split("\n")[0] !== "1") return "IPv4 forwarding is off";
        return /-s 10\.8\.0\.0\/24 .*-j MASQUERADE/.test(stdout) ? null : "no MASQUERADE rule for 10.8.0.0/24";
      },
    },
  ],
};

/** The checks a release gets: every image's, then its app's. */
export function checksFor(releaseId: string): GuestCheck[] {
  return [...GUEST_CHECKS, ...(APP_CHECKS[releaseId] ?? [])];
}

export async function runGuestChecks(ssh: SshSession, expect: GuestExpectations): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checksFor(expect.releaseId)) {
    const started = Date.now();
    const out = await ssh.exec(check.command, check.timeoutMs);
    const reason = check.verdict(out, expect);
    results.push({
      name: check.name,
      status: reason ? "fail" : "pass",
      seconds: (Date.now() - started) / 1000,
      reason: reason ?? "",
    });
  }
  return results;
}
