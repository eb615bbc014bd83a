/**
 * The gate every fetched upstream image passes before any tool opens it: its header is read as bytes and judged
 * (qcow2-header.ts); only a standalone, unencrypted QCOW2 is then shown to `qemu-img info`, which opens nothing
 * beside it, as a second opinion. A digest says the bytes are upstream's; this says what those bytes may make the
 * build host open.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { z } from "zod";
import { UPSTREAM_FORMAT } from "../../images/schema";
import { run } from "../system/exec";
import { fetchVerified } from "./fetch";
import type { ResolvedSource } from "./resolve";
import { HEADER_READ_BYTES, upstreamHeaderRefusals, type HeaderRefusal } from "./qcow2-header";

export class UntrustedImageError extends Error {
  constructor(what: string, refusals: HeaderRefusal[]) {
    super(`${what}: refused before any tool opened it: ${refusals.map((r) => `${r.field}: ${r.detail}`).join("; ")}`);
    this.name = "UntrustedImageError";
  }
}

function readHead(file: string): Buffer {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(HEADER_READ_BYTES);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The fields of `qemu-img info --output=json` that would show what the header check is there to refuse. */
const InfoSchema = z.object({
  format: z.string(),
  "backing-filename": z.string().optional(),
  "full-backing-filename": z.string().optional(),
  encrypted: z.boolean().optional(),
  "format-specific": z
    .object({ data: z.object({ "data-file": z.string().optional(), encrypt: z.unknown().optional() }).loose() })
    .optional(),
});

/** What qemu-img itself reports against the same refusals, for a file whose header already passed. */
export function infoRefusals(info: z.infer<typeof InfoSchema>, declared: string): HeaderRefusal[] {
  const refusals: HeaderRefusal[] = [];
  if (info.format !== declared)
    refusals.push({ field: "format", detail: `qemu-img reads ${info.format}, the catalog declares ${declared}` });
  const backing = info["backing-filename"] ?? info["full-backing-filename"];
  if (backing !== undefined) refusals.push({ field: "backing file", detail: `qemu-img reads ${backing}` });
  const dataFile = info["format-specific"]?.data["data-file"];
  if (dataFile !== undefined) refusals.push({ field: "external data file", detail: `qemu-img reads ${dataFile}` });
  if (info.encrypted || info["format-specific"]?.data.encrypt !== undefined)
    refusals.push({ field: "encryption", detail: "qemu-img reads an encrypted image" });
  return refusals;
}

/**
 * Throws UntrustedImageError naming `what` (the upstream) and each offending field unless `file` is a standalone,
 * unencrypted image of the `declared` format.
 */
export async function inspectUpstream(file: string, declared: string, what: string): Promise<void> {
  const refusals = upstreamHeaderRefusals(readHead(file), declared);
  if (refusals.length) throw new UntrustedImageError(what, refusals);
  // `-f` so qemu-img probes nothing; without --backing-chain it opens no backing file, and the header has none.
  const { stdout } = await run("qemu-img", ["info", "-f", declared, "--output=json", file]);
  const second = infoRefusals(InfoSchema.parse(JSON.parse(stdout)), declared);
  if (second.length) throw new UntrustedImageError(what, second);
}

/**
 * The verified, inspected local copy of a resolved upstream image (`what` names it in progress lines and errors):
 * what every build step after fetch opens, so none of them ever sees a file the gate refused.
 */
export async function fetchUpstreamImage(
  source: Pick<ResolvedSource, "fetchUrl" | "imageUrl" | "checksum">,
  what: string,
): Promise<string> {
  const named = source.fetchUrl === source.imageUrl ? source.imageUrl : `${source.imageUrl} via ${source.fetchUrl}`;
  return await fetchVerified(source.fetchUrl, source.checksum, what, {}, (file) =>
    inspectUpstream(file, UPSTREAM_FORMAT, `${what} (${named})`),
  );
}
