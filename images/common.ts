/** Pieces several catalog files share. Data only. */
import PINS from "./pins.json";
import type { Architecture, Pin, ScsDeclared, Step } from "./schema";

/** Scaleway boots Instance images from Block Storage volumes attached over virtio-scsi (`/dev/sda`). */
export const SCALEWAY_DEFAULTS = {
  replace_frequency: "quarterly",
  uuid_validity: "last-3",
  hw_disk_bus: "scsi",
  min_disk: 10,
  hash_algo: "sha256",
} as const satisfies Partial<ScsDeclared>;

/** What every OS image gets on Scaleway, per the blog: ecosystem package, fresh kernel and cloud-init. */
export function baseRecipe(kernelPackage: string): Step[] {
  return [
    { op: "scaleway-ecosystem" },
    { op: "upgrade-kernel", package: kernelPackage },
    { op: "upgrade-cloud-init" },
  ];
}

/** RHEL-family images also get an SELinux relabel (last, after every file write) and UEFI boot where missing. */
export function rhelRecipe(): Step[] {
  return [...baseRecipe("kernel"), { op: "ensure-uefi" }, { op: "selinux-relabel" }];
}

/**
 * A release's pinned upstream builds, per architecture, from `images/pins.json`: data, so that `image-factory
 * check-upstream --write` records a new upstream build as a small, reviewable diff. Validated with the catalog.
 */
export function pinsOf(id: string): Partial<Record<Architecture, Pin>> {
  return ((PINS as Record<string, Partial<Record<Architecture, Pin>>>)[id] ?? {}) as Partial<Record<Architecture, Pin>>;
}

/** Debian and Ubuntu name x86_64 `amd64`. */
export const DEBIAN_ARCH_NAMES = { x86_64: "amd64", arm64: "arm64" } as const;
