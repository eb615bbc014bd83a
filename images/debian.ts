import { baseRecipe, DEBIAN_ARCH_NAMES, pinsOf, SCALEWAY_DEFAULTS } from "./common";
import type { Release } from "./schema";

const debian = (version: string, codename: string, released: string, eol: string) =>
  ({
    kind: "os",
    id: `debian-${version}`,
    label: `debian_${codename}`,
    title: `Debian ${version} ${codename[0]!.toUpperCase()}${codename.slice(1)}`,
    distro: "debian",
    version,
    codename,
    family: "debian",
    released,
    eol,
    architectures: ["x86_64", "arm64"],
    upstream: {
      image: `https://cloud.debian.org/images/cloud/${codename}/{serial}/debian-${version}-genericcloud-{arch}-{serial}.qcow2`,
      checksums: `https://cloud.debian.org/images/cloud/${codename}/{serial}/SHA512SUMS`,
      checksumFormat: "sha512sums",
      // No signature: Debian's signed SHA512SUMS.sign files are documented for installation and live images
      // (https://www.debian.org/CD/verify), not for cloud.debian.org's cloud images. So the pinned checksum
      // (images/pins.json) is what a build trusts.
      archNames: DEBIAN_ARCH_NAMES,
      pins: pinsOf(`debian-${version}`),
    },
    scs: {
      ...SCALEWAY_DEFAULTS,
      os_purpose: "generic",
      image_original_user: "debian",
      min_ram: 512,
      image_description: `Debian ${version} (${codename}) from the Debian cloud team's generic cloud image, customised for Scaleway.`,
    },
    recipe: baseRecipe("linux-image-cloud-{arch}"),
  }) satisfies Release;

/** Debian stable releases; end of life is the end of Debian LTS. */
export default [
  debian("13", "trixie", "2025-08-09", "2030-06-30"),
  debian("12", "bookworm", "2023-06-10", "2028-06-30"),
] satisfies Release[];
