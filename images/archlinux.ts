import { baseRecipe, pinsOf, SCALEWAY_DEFAULTS } from "./common";
import type { Release } from "./schema";

/** Arch Linux is rolling: no upstream end of life, rebuilt monthly. Upstream publishes x86_64 cloud images only. */
export default [
  {
    kind: "os",
    id: "archlinux-rolling",
    label: "arch_linux",
    title: "Arch Linux",
    distro: "arch",
    version: "rolling",
    family: "arch",
    released: "2002-03-11",
    eol: null,
    architectures: ["x86_64"],
    upstream: {
      image: "https://geo.mirror.pkgbuild.com/images/v{serial}/Arch-Linux-{arch}-cloudimg-{serial}.qcow2",
      checksums: "https://geo.mirror.pkgbuild.com/images/v{serial}/Arch-Linux-{arch}-cloudimg-{serial}.qcow2.SHA256",
      checksumFormat: "single",
      // The .SHA256 file is not signed (upstream's detached .sig signs the image itself, by a key whose
      // fingerprint no stored source gives): the pinned checksum (images/pins.json) is what a build trusts.
      archNames: { x86_64: "x86_64" },
      pins: pinsOf("archlinux-rolling"),
    },
    scs: {
      ...SCALEWAY_DEFAULTS,
      replace_frequency: "monthly",
      os_purpose: "generic",
      image_original_user: "arch",
      min_ram: 512,
      image_description: "Arch Linux from the official cloud image, customised for Scaleway.",
    },
    recipe: baseRecipe("linux"),
  },
] satisfies Release[];
