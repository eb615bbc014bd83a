/**
 * What `POST /block/v1/zones/{zone}/snapshots/import-from-object-storage` accepts: pure judgement of the bucket's
 * region and of `qemu-img info --output=json` on the object's first bytes (the qcow2 header and its extensions are
 * all it needs). Each refusal names the argument, as the API's `invalid_arguments` errors do.
 */
import { z } from "zod";

/** The fields of `qemu-img info --output=json` the rules read. */
export const QemuImgInfo = z.object({
  format: z.string(),
  "virtual-size": z.number(),
  "backing-filename": z.string().optional(),
  "backing-filename-format": z.string().optional(),
  "format-specific": z
    .object({
      type: z.string(),
      data: z.object({ "compression-type": z.string().optional(), "data-file": z.string().optional() }),
    })
    .optional(),
});
export type QemuImgInfo = z.infer<typeof QemuImgInfo>;

/**
 * The largest image a block snapshot takes. Block volumes and snapshots are sized in decimal units (a 10 GB volume
 * is 10000000000 bytes in the recorded traffic); the 1 TB bound on imports is the product's stated limit, not seen
 * in the recordings (unverified against the live API).
 */
export const MAX_IMPORT_BYTES = 1_000_000_000_000;

export interface Refusal {
  argument_name: "bucket" | "key";
  reason: "constraint" | "format";
  help_message: string;
}

/** Refusal for a bucket outside the zone's region: a snapshot imports from its own region only (see the Block API's description of the import). */
export function bucketRefusal(bucket: string, bucketRegion: string, zoneRegion: string): Refusal | undefined {
  return bucketRegion === zoneRegion
    ? undefined
    : {
        argument_name: "bucket",
        reason: "constraint",
        help_message: `bucket ${bucket} is in region ${bucketRegion}; a snapshot in a ${zoneRegion} zone imports from a bucket in ${zoneRegion}`,
      };
}

/** Refusal for an object that is not a standalone, zlib-or-uncompressed qcow2 of at most MAX_IMPORT_BYTES. */
export function imageRefusal(key: string, info: QemuImgInfo): Refusal | undefined {
  const refuse = (reason: Refusal["reason"], help: string): Refusal => ({
    argument_name: "key",
    reason,
    help_message: `${key}: ${help}`,
  });
  if (info.format !== "qcow2") return refuse("format", `is ${info.format}, not a QCOW2 image`);
  if (info["backing-filename"] !== undefined || info["backing-filename-format"] !== undefined)
    return refuse(
      "constraint",
      `has a backing file (${info["backing-filename"] ?? "unnamed"}): import a standalone image (qemu-img convert)`,
    );
  if (info["format-specific"]?.data["data-file"])
    return refuse("constraint", "keeps its data in an external data file");
  const compression = info["format-specific"]?.data["compression-type"];
  if (compression && compression !== "zlib")
    return refuse("constraint", `uses ${compression} compression: only zlib (the qcow2 default) is read`);
  if (info["virtual-size"] > MAX_IMPORT_BYTES)
    return refuse("constraint", `virtual size ${info["virtual-size"]} bytes is over 1 TB`);
  return undefined;
}
