import { baseRecipe, DEBIAN_ARCH_NAMES, pinsOf, SCALEWAY_DEFAULTS } from "./common";
import type { Release } from "./schema";

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
      // Canonical signs SHA256SUMS with a detached SHA256SUMS.gpg beside it, as for every Ubuntu image
      // (https://documentation.ubuntu.com/security/software-integrity/image-verification/). That page names the
      // CD image key only; no stored upstream source gives the fingerprint of the key that signs
      // cloud-images.ubuntu.com (ubuntu-cloudimage-keyring), so it is unverified: pin it, with the keyUrl Canonical
      // publishes it at, before the first production build of Ubuntu.
      signature: {
        url: `https://cloud-images.ubuntu.com/releases/${codename}/release-{serial}/SHA256SUMS.gpg`,
        kind: "detached",
        fingerprint: "unverified",
        source: "https://documentation.ubuntu.com/security/software-integrity/image-verification/",
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
