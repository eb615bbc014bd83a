import { baseRecipe, DEBIAN_ARCH_NAMES, pinsOf, SCALEWAY_DEFAULTS } from "./common";
import type { Release } from "./schema";

/** The primary key fingerprint of the key that signs cloud-images.ubuntu.com's SHA256SUMS (see the signature below). */
const UBUNTU_CLOUD_IMAGE_KEY = "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81";

const ubuntu = (version: string, codename: string, title: string, released: string, eol: string) =>
  ({
    kind: "os",
    id: `ubuntu-${version}`,
    label: `ubuntu_${codename}`,
    title: `Ubuntu ${version} ${title}`,
    distro: "ubuntu",
    version,
    codename,
    family: "debian",
    released,
    eol,
    architectures: ["x86_64", "arm64"],
    upstream: {
      image: `https://cloud-images.ubuntu.com/releases/${codename}/release-{serial}/ubuntu-${version}-server-cloudimg-{arch}.img`,
      checksums: `https://cloud-images.ubuntu.com/releases/${codename}/release-{serial}/SHA256SUMS`,
      checksumFormat: "sha256sums",
      // Canonical signs SHA256SUMS with a detached SHA256SUMS.gpg beside it. The key is the "UEC Image Automatic
      // Signing Key <cdimage@ubuntu.com>" of ubuntu-cloudimage-keyring.gpg, the keyring of the keys that have signed
      // cloud-images.ubuntu.com, built by the ubuntu-keyring source package (2023.11.28.1 in noble). The fingerprint
      // was read with `gpg --show-keys` from that file in Debian's build of it (ubuntu-keyring 2023.11.28.1-0.2,
      // fetched through apt, so checked against Debian's archive signature). The key itself comes from Ubuntu's
      // keyserver and must match the pin.
      signature: {
        url: `https://cloud-images.ubuntu.com/releases/${codename}/release-{serial}/SHA256SUMS.gpg`,
        kind: "detached",
        fingerprint: UBUNTU_CLOUD_IMAGE_KEY,
        keyUrl: `https://keyserver.ubuntu.com/pks/lookup?op=get&search=0x${UBUNTU_CLOUD_IMAGE_KEY}`,
        source: "https://packages.ubuntu.com/source/noble/ubuntu-keyring",
      },
      archNames: DEBIAN_ARCH_NAMES,
      pins: pinsOf(`ubuntu-${version}`),
    },
    scs: {
      ...SCALEWAY_DEFAULTS,
      os_purpose: "generic",
      image_original_user: "ubuntu",
      min_ram: 512,
      image_description: `Ubuntu ${version} LTS (${codename}) from Canonical's official cloud image, customised for Scaleway.`,
    },
    recipe: baseRecipe("linux-virtual"),
  }) satisfies Release;

/** Ubuntu LTS releases; SCS-0104 requires the latest LTS and recommends the previous one. */
export default [
  ubuntu("26.04", "resolute", "Resolute Raccoon", "2026-04-23", "2031-05-31"),
  ubuntu("24.04", "noble", "Noble Numbat", "2024-04-25", "2029-05-31"),
  ubuntu("22.04", "jammy", "Jammy Jellyfish", "2022-04-21", "2027-06-01"),
] satisfies Release[];
