/**
 * What changed in an image's packages between two builds of a release: added, removed, upgraded (or downgraded)
 * with both versions, the kernel and security-relevant packages first so a reviewer sees them without scrolling.
 * Pure.
 */

export interface PackageVersion {
  name: string;
  version: string;
  arch: string;
}

export type PackageChange =
  | { change: "added"; name: string; arch: string; to: string; class: PackageClass }
  | { change: "removed"; name: string; arch: string; from: string; class: PackageClass }
  | { change: "upgraded" | "downgraded"; name: string; arch: string; from: string; to: string; class: PackageClass };

export type PackageClass = "kernel" | "security" | "other";

/** Kernel packages across the families (Debian/Ubuntu linux-image-*, RHEL kernel-*, Arch linux). */
const KERNEL = /^(linux-image-|linux-modules-|linux-headers-|kernel($|-core|-modules)|linux$|linux-lts$)/;
/**
 * Packages whose updates are security fixes more often than not, or that hold the image's trust: TLS, SSH, the
 * C library, privilege, the package manager and its keys, the init system. A judgement, kept short on purpose.
 */
const SECURITY =
  /^(openssl|libssl\d|libcrypto|gnutls|libgnutls|openssh-|ssh$|libc6$|libc-bin$|glibc|sudo$|polkit|libpolkit|systemd$|libsystemd|ca-certificates|gnupg|gpgv$|apt$|libapt-pkg|dpkg$|rpm$|dnf$|pacman$|curl$|libcurl|libnss3|nss$|zlib1g|zlib$|xz-utils|liblzma|libxml2|pam|libpam|shadow|passwd$|login$|cloud-init$|scaleway-ecosystem$)/;

/** Two builds of a release compared (`image-factory diff --json` writes it; the PR report and release notes read it). */
export interface BuildDiff {
  release: string;
  arch: string;
  /** The previous build's artifact key; none for a first build. */
  from?: string;
  to: string;
  changes: PackageChange[];
}

export function packageClass(name: string): PackageClass {
  return KERNEL.test(name) ? "kernel" : SECURITY.test(name) ? "security" : "other";
}

const order: Record<PackageClass, number> = { kernel: 0, security: 1, other: 2 };

// dpkg's version comparison (deb-version(7)): epoch, then upstream and revision compared in alternating runs of
// non-digits (letters before non-letters, `~` before everything, even the end) and digits (numerically).
function charOrder(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === "~") return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !/\d/.test(a[i]!)) || (j < b.length && !/\d/.test(b[j]!))) {
      const ca = i < a.length && !/\d/.test(a[i]!) ? a[i] : undefined;
      const cb = j < b.length && !/\d/.test(b[j]!) ? b[j] : undefined;
      const d = charOrder(ca) - charOrder(cb);
      if (d) return d;
      if (ca !== undefined) i++;
      if (cb !== undefined) j++;
    }
    let na = "";
    let nb = "";
    while (i < a.length && /\d/.test(a[i]!)) na += a[i++];
    while (j < b.length && /\d/.test(b[j]!)) nb += b[j++];
    const d = Number(BigInt(na || "0") - BigInt(nb || "0"));
    if (d) return Math.sign(d);
  }
  return 0;
}

function splitVersion(v: string): [number, string, string] {
  const colon = v.indexOf(":");
  const epoch = colon > 0 && /^\d+$/.test(v.slice(0, colon)) ? Number(v.slice(0, colon)) : 0;
  const rest = colon > 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf("-");
  return dash < 0 ? [epoch, rest, ""] : [epoch, rest.slice(0, dash), rest.slice(dash + 1)];
}

/** Negative when `a` is older than `b`, as dpkg --compare-versions orders them. */
export function compareVersions(a: string, b: string): number {
  const [ea, ua, ra] = splitVersion(a);
  const [eb, ub, rb] = splitVersion(b);
  return Math.sign(ea - eb || compareFragment(ua, ub) || compareFragment(ra, rb));
}

export function diffPackages(before: PackageVersion[], after: PackageVersion[]): PackageChange[] {
  const key = (p: PackageVersion) => `${p.name}:${p.arch}`;
  const old = new Map(before.map((p) => [key(p), p]));
  const now = new Map(after.map((p) => [key(p), p]));
  const out: PackageChange[] = [];
  for (const [k, p] of now) {
    const prev = old.get(k);
    const cls = packageClass(p.name);
    if (!prev) out.push({ change: "added", name: p.name, arch: p.arch, to: p.version, class: cls });
    else if (prev.version !== p.version)
      out.push({
        change: compareVersions(prev.version, p.version) < 0 ? "upgraded" : "downgraded",
        name: p.name,
        arch: p.arch,
        from: prev.version,
        to: p.version,
        class: cls,
      });
  }
  for (const [k, p] of old)
    if (!now.has(k))
      out.push({ change: "removed", name: p.name, arch: p.arch, from: p.version, class: packageClass(p.name) });
  return out.sort(
    (a, b) =>
      order[a.class] - order[b.class] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) || (a.arch < b.arch ? -1 : 1),
  );
}

export function describeChange(c: PackageChange): string {
  switch (c.change) {
    case "added":
      return `${c.to} (new)`;
    case "removed":
      return `${c.from} (removed)`;
    default:
      return `${c.from} → ${c.to}`;
  }
}

/** The diff as a Markdown table (for the PR report and the release notes); `none` when nothing changed. */
export function packageDiffMarkdown(changes: PackageChange[]): string {
  if (!changes.length) return "No package changed.\n";
  const count = (k: PackageChange["change"]) => changes.filter((c) => c.change === k).length;
  const lines = [
    `${count("upgraded")} upgraded, ${count("added")} added, ${count("removed")} removed${count("downgraded") ? `, ${count("downgraded")} downgraded` : ""}.`,
    "",
    "| package | arch | change | versions | class |",
    "| --- | --- | --- | --- | --- |",
    ...changes.map(
      (c) =>
        `| \`${c.name}\` | ${c.arch} | ${c.change} | ${describeChange(c).replace(/\|/g, "\\|")} | ${c.class === "other" ? "" : `**${c.class}**`} |`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}
