/**
 * The emulator's rescue system: what an Instance boots with `boot_type: rescue`. On Scaleway that is a network-booted
 * rescue image with the Instance's volumes attached but not mounted, reached over SSH with the Instance's keys
 * (the behaviour the brief of issue #12 describes; no stored Scaleway page describes Instances' rescue mode, so the
 * details below — keys from the metadata API, host key fingerprints published as user data — are unverified
 * against the real rescue image).
 *
 * Here it is the host's own Debian kernel and a small initramfs made of the host's binaries: nothing of the image
 * under test, so a rescue boot can never be mistaken for a boot of the Instance's volume. Built once per user and
 * kept in the cache, keyed by the kernel, the binaries and this file's recipe.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { run } from "../system/exec";
import { cacheDir } from "../system/paths";

export interface RescueSystem {
  kernel: string;
  initrd: string;
  /** Kernel command line. */
  append: string;
}

/** Bumped when the recipe changes in a way the inputs below do not show. */
const RECIPE = 2;

/** What the rescue shell offers: enough to inspect volumes (blkid, lsblk, hashes, mount) and to serve SSH. */
const BINARIES = [
  "sh",
  "cat",
  "mkdir",
  "mount",
  "umount",
  "ls",
  "ln",
  "sleep",
  "sync",
  "rm",
  "rmdir",
  "chmod",
  "sed",
  "grep",
  "head",
  "dd",
  "sha256sum",
  "blkid",
  "lsblk",
  "findmnt",
  "ip",
  "curl",
  "sshd",
  "ssh-keygen",
  "tr",
  "cut",
  "awk",
];
/** Modules in load order (`modprobe --show-depends`); the rest of what the rescue system needs is built in. */
const MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "ext4"];

const INIT = String.raw`#!/bin/sh
# The rescue system's init: devices, DHCP on the public NIC, the Instance's SSH keys from the metadata API, a fresh
# host key whose fingerprint is published as user data (read from a privileged port, as the API requires), sshd.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# Each step's uptime on the console: a slow rescue boot shows where its time went.
step() { read -r up _ < /proc/uptime; echo "rescue: $1 at $up s" >/dev/console; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /run/sshd /tmp /root/.ssh /var/log
mount -t devpts devpts /dev/pts
step init
while read -r m; do /usr/lib/klibc/bin/insmod "$m" 2>/dev/null; done < /etc/rescue-modules
step modules
ip link set lo up
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
/usr/lib/klibc/bin/ipconfig -t 60 -c dhcp -d eth0 >/dev/console 2>&1
step dhcp
md=http://169.254.42.42
for i in 1 2 3 4 5 6 7 8 9 10; do curl -fsS --local-port 1-1023 -o /tmp/conf "$md/conf" && break; sleep 1; done
sed -n "s/^SSH_PUBLIC_KEYS_[0-9]*_KEY='\(.*\)'$/\1/p" /tmp/conf > /root/.ssh/authorized_keys
chmod 700 /root/.ssh; chmod 600 /root/.ssh/authorized_keys
ssh-keygen -q -t ed25519 -N '' -C rescue -f /etc/ssh/ssh_host_ed25519_key
ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key.pub | curl -fsS --local-port 1-1023 -X PATCH -H 'Content-Type: text/plain' --data-binary @- "$md/user_data/ssh-host-fingerprints"
step "host key published"
/usr/sbin/sshd -e -f /etc/ssh/sshd_config
step "sshd started"
while :; do sleep 3600; done
`;

const SSHD_CONFIG = `HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/sshd.pid
`;

/** A tool's path (not a shell builtin: those are in sh already). */
const which = (tool: string) =>
  run("sh", ["-c", `PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v ${tool}`])
    .then(
      (r) => r.stdout.trim(),
      () => "",
    )
    .then((p) => (p.startsWith("/") ? p : ""));

/** The newest installed kernel that has its modules: /boot/vmlinuz-<version> and /lib/modules/<version>. */
function hostKernel(): { version: string; image: string } {
  const versions = readdirSync("/boot")
    .filter((f) => f.startsWith("vmlinuz-"))
    .map((f) => f.slice("vmlinuz-".length))
    .filter((v) => existsSync(join("/lib/modules", v, "modules.dep")))
    .sort();
  const version = versions.at(-1);
  if (!version)
    throw new Error("rescue system: no kernel in /boot with its modules in /lib/modules (install linux-image-amd64)");
  return { version, image: join("/boot", `vmlinuz-${version}`) };
}

/** Shared libraries a dynamic binary loads, from ldd. */
async function libraries(binary: string): Promise<string[]> {
  const out = await run("ldd", [binary]).then(
    (r) => r.stdout,
    () => "",
  );
  return [...out.matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)].map((m) => m[1]!);
}

/** Copies a file to the same path in the tree, directories resolved (merged /usr) but the name kept (a soname). */
function copyInto(root: string, file: string) {
  const target = join(root, realpathSync(dirname(file)), basename(file));
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(realpathSync(file), target);
  chmodSync(target, statSync(file).mode & 0o7777);
}

/** The rescue system for this host, built on first use. */
export async function rescueSystem(): Promise<RescueSystem> {
  const kernel = hostKernel();
  const binaries = await Promise.all(
    BINARIES.map((b) => which(b).then((p) => p || Promise.reject(new Error(`rescue system: ${b} is not installed`)))),
  );
  // klibc's static tools: DHCP without a daemon, and an insmod that does not load kmod's libraries under TCG.
  const klibcTools = ["/usr/lib/klibc/bin/ipconfig", "/usr/lib/klibc/bin/insmod"];
  for (const t of klibcTools)
    if (!existsSync(t)) throw new Error(`rescue system: ${t} is missing (install klibc-utils)`);
  const modules = [
    ...new Set(
      (await Promise.all(MODULES.map((m) => run("modprobe", ["--show-depends", "-S", kernel.version, m])))).flatMap(
        (r) => [...r.stdout.matchAll(/^insmod (\S+)/gm)].map((x) => x[1]!),
      ),
    ),
  ];
  const key = createHash("sha256")
    .update(
      JSON.stringify({
        RECIPE,
        INIT,
        SSHD_CONFIG,
        kernel,
        modules,
        binaries: [...binaries, ...klibcTools].map((b) => [b, statSync(b).size, statSync(b).mtimeMs]),
      }),
    )
    .digest("hex")
    .slice(0, 16);
  const dir = cacheDir("rescue", `${kernel.version}-${key}`);
  const result = {
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.img"),
    append: "console=ttyS0 panic=-1 quiet",
  };
  if (existsSync(result.initrd)) return result;

  const work = `${dir}.tmp-${process.pid}`;
  const root = join(work, "root");
  rmSync(work, { recursive: true, force: true });
  try {
    // Debian's merged /usr: the binaries' and libraries' real paths live under /usr.
    for (const d of [
      "usr/bin",
      "usr/sbin",
      "usr/lib",
      "usr/lib64",
      "proc",
      "sys",
      "dev",
      "run",
      "tmp",
      "root",
      "etc/ssh",
      "var",
    ])
      mkdirSync(join(root, d), { recursive: true });
    for (const d of ["bin", "sbin", "lib", "lib64"]) symlinkSync(`usr/${d}`, join(root, d));
    const klibc = readdirSync("/usr/lib")
      .filter((f) => /^klibc-.*\.so$/.test(f))
      .map((f) => join("/usr/lib", f));
    const libs = new Set((await Promise.all(binaries.map(libraries))).flat());
    for (const f of [...binaries, ...klibcTools, ...klibc, ...libs, ...modules]) copyInto(root, f);
    writeFileSync(join(root, "etc/rescue-modules"), `${modules.join("\n")}\n`);
    writeFileSync(
      join(root, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\nsshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n",
    );
    writeFileSync(join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
    writeFileSync(join(root, "etc/nsswitch.conf"), "passwd: files\ngroup: files\n");
    writeFileSync(join(root, "etc/ssh/sshd_config"), SSHD_CONFIG);
    writeFileSync(join(root, "init"), INIT, { mode: 0o755 });
    // Uncompressed: QEMU hands it over in one copy, while unpacking gzip in the guest takes seconds under TCG.
    await run("sh", ["-c", `cd "${root}" && find . | cpio -o -H newc -R 0:0 --quiet > ../initrd.img`]);
    copyFileSync(kernel.image, join(work, "vmlinuz"));
    rmSync(root, { recursive: true, force: true });
    mkdirSync(dirname(dir), { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
    // Older builds (another kernel or recipe) are never used again.
    for (const old of readdirSync(dirname(dir)).filter((f) => f !== basename(dir) && !f.includes(".tmp-")))
      rmSync(join(dirname(dir), old), { recursive: true, force: true });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}
