/** Pieces several catalog files share. Data only. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../builder/system/paths";
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
  return [{ op: "scaleway-ecosystem" }, { op: "upgrade-kernel", package: kernelPackage }, { op: "upgrade-cloud-init" }];
}

/** RHEL-family images also get an SELinux relabel (last, after every file write) and UEFI boot where missing. */
export function rhelRecipe(): Step[] {
  return [...baseRecipe("kernel"), { op: "ensure-uefi" }, { op: "selinux-relabel" }];
}

let pins: Record<string, Partial<Record<Architecture, Pin>>> | undefined;

/**
 * A release's pinned upstream builds, per architecture, from `images/pins.json`: data, so that `image-factory
 * check-upstream --write` records a new upstream build as a small, reviewable diff. Read from the source tree
 * (never a copy compiled into dist/, which would go stale after --write). Validated with the catalog.
 */
export function pinsOf(id: string): Partial<Record<Architecture, Pin>> {
  pins ??= JSON.parse(readFileSync(join(projectRoot(), "images", "pins.json"), "utf8")) as Record<
    string,
    Partial<Record<Architecture, Pin>>
  >;
  return pins[id] ?? {};
}

/** Debian and Ubuntu name x86_64 `amd64`. */
export const DEBIAN_ARCH_NAMES = { x86_64: "amd64", arm64: "arm64" } as const;
