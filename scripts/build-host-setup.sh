#!/usr/bin/env bash
# The build host's half of scripts/prepare-build-host, which ships it with its payload and runs it there as root.
#   build-host-setup.sh <payload dir>     environment: STAMP, NODE_VERSION, PACKAGES (Debian names for amd64),
#                                         BUILD_USER (who logs in to build)
# Every step checks before it changes anything; the last lines say what changed, so a second run shows it did
# nothing. Reads nothing from stdin: it runs with stdin closed.
set -euo pipefail
payload="$1"
log() { printf '[build-host] %s\n' "$*" >&2; }
changed=()

. /etc/os-release
case "$ID ${ID_LIKE:-}" in *debian*|*ubuntu*) ;; *) log "not Debian or Ubuntu: $PRETTY_NAME"; exit 1 ;; esac
# A fresh cloud host may still be in its first boot, with cloud-init holding the dpkg lock: let it finish.
if command -v cloud-init >/dev/null; then cloud-init status --wait >/dev/null 2>&1 || true; fi

# The packages, for the guest architecture that is the host's own: its QEMU, kernel and firmware.
arch="$(dpkg --print-architecture)"
read -r -a packages <<<"$PACKAGES"
if [ "$arch" = arm64 ]; then
  packages=("${packages[@]/qemu-system-x86/qemu-system-arm}")
  packages=("${packages[@]/linux-image-amd64/linux-image-arm64}")
  packages=("${packages[@]/ovmf/qemu-efi-aarch64}")
fi
if [ "$ID" = ubuntu ]; then
  packages=("${packages[@]/linux-image-arm64/linux-image-generic}")
  packages=("${packages[@]/linux-image-amd64/linux-image-generic}")
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${#missing[@]} Debian packages: ${missing[*]}"
  # Waits for an unattended upgrade rather than failing on its lock.
  apt=(apt-get -q -o DPkg::Lock::Timeout=600)
  "${apt[@]}" update >/dev/null
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
  changed+=("${#missing[@]} Debian packages")
else
  log "Debian packages: all ${#packages[@]} present"
fi

# Node.js at the pinned version, shipped in the payload when missing (the host needs no npm registry).
node_dir=/opt/image-factory/node-$NODE_VERSION
if [ "$("$node_dir/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
  [ -f "$payload/node.tgz" ] || { log "Node.js $NODE_VERSION is missing and the payload has none"; exit 1; }
  rm -rf "$node_dir.tmp" && mkdir -p "$node_dir.tmp"
  tar -xzf "$payload/node.tgz" --strip-components=1 --no-same-owner -C "$node_dir.tmp"
  got="$("$node_dir.tmp/bin/node" --version 2>&1)" || { log "the shipped Node.js does not run on $(uname -m): $got"; exit 1; }
  [ "$got" = "v$NODE_VERSION" ] || { log "the shipped Node.js is $got, not v$NODE_VERSION"; exit 1; }
  rm -rf "$node_dir" && mv "$node_dir.tmp" "$node_dir"
  changed+=("Node.js $NODE_VERSION")
else
  log "Node.js $NODE_VERSION: present"
fi

# The CLI, one directory per build stamp (with its production node_modules); "current" is the one prepared last.
dir=/opt/image-factory/$STAMP
if [ ! -f "$dir/dist/builder/build-stamp.json" ]; then
  [ -f "$payload/cli.tgz" ] || { log "the CLI $STAMP is missing and the payload has none"; exit 1; }
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  tar -xzf "$payload/cli.tgz" --no-same-owner -C "$dir.tmp"
  mv "$dir.tmp" "$dir"
  changed+=("CLI $STAMP")
else
  log "CLI $STAMP: present"
fi
if [ "$(readlink /opt/image-factory/current 2>/dev/null)" != "$dir" ]; then
  ln -sfn "$dir" /opt/image-factory/current
  changed+=("current -> $STAMP")
fi
wrapper="$(printf '#!/bin/sh\nexec %s/bin/node /opt/image-factory/current/dist/builder/cli.js "$@"' "$node_dir")"
if [ "$(cat /usr/local/bin/image-factory 2>/dev/null)" != "$wrapper" ]; then
  printf '%s\n' "$wrapper" >/usr/local/bin/image-factory && chmod 755 /usr/local/bin/image-factory
  changed+=("/usr/local/bin/image-factory")
fi

# Debian's udev gives /dev/kvm to root and the kvm group: the user who builds must be in it.
if [ "$BUILD_USER" != root ] && getent group kvm >/dev/null && ! id -nG "$BUILD_USER" | grep -qw kvm; then
  usermod -aG kvm "$BUILD_USER"
  changed+=("$BUILD_USER in group kvm")
fi

# The remote Command's environment arrives as SSH environment requests: sshd must accept exactly these names.
conf=/etc/ssh/sshd_config.d/image-factory.conf
line="AcceptEnv FACTORY_* AWS_*"
if [ "$(cat "$conf" 2>/dev/null)" != "$line" ]; then
  grep -qiE '^\s*Include\s+/etc/ssh/sshd_config\.d/' /etc/ssh/sshd_config \
    || { log "/etc/ssh/sshd_config does not include sshd_config.d/: add '$line' to it by hand"; exit 1; }
  echo "$line" >"$conf"
  # A config sshd refuses would lock everyone out at the next restart: test it before reloading.
  sshd -t || { rm -f "$conf"; log "sshd refuses its configuration with $conf; removed it"; exit 1; }
  systemctl reload ssh 2>/dev/null || systemctl reload sshd
  changed+=("sshd AcceptEnv")
else
  log "sshd AcceptEnv: present"
fi

if [ ${#changed[@]} -gt 0 ]; then
  log "changed: $(IFS=,; echo "${changed[*]}" | sed 's/,/, /g')"
else
  log "nothing to do: already prepared, nothing installed or changed"
fi
log "ready: $(uname -m), CLI $STAMP, Node.js $NODE_VERSION, KVM $([ -c /dev/kvm ] && echo present || echo ABSENT)"
