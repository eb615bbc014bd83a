/**
 * An upstream image's first cluster judged as bytes, before any tool opens the file: a QCOW2 header can name a
 * backing file or an external data file (any path of the build host, or a `json:`/`nbd:` target), which
 * virt-customize and qemu-img would open and `qemu-img convert` would copy into the artifact. Pure functions over
 * the layout of QEMU's docs/interop/qcow2.txt; reading the file is the caller's.
 */

/** How many bytes of the file the judgement needs: QEMU keeps the header, its extensions and the backing file name
 * within the first cluster, and clusters are at most 2 MiB (cluster_bits 21). */
export const HEADER_READ_BYTES = 2 * 2 ** 20;

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21;
const V2_HEADER_LENGTH = 72;

/** Incompatible feature bits QEMU knows (qcow2.txt); any other bit set makes the image unreadable by spec. */
const INCOMPATIBLE = { dirty: 0, corrupt: 1, externalDataFile: 2, compressionType: 3, extendedL2: 4 } as const;
const KNOWN_INCOMPATIBLE_MASK = 0b11111n;

const EXT_END = 0x00000000;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_CRYPTO_HEADER = 0x0537be77;
const EXT_DATA_FILE = 0x44415441;

/** What the first cluster says, as far as the refusals need it. */
export interface Qcow2Header {
  version: number;
  clusterBits: number;
  virtualSize: bigint;
  /** The backing file named by the header (`backing_file_offset`/`size`), when one is. */
  backingFile?: string;
  backingFormat?: string;
  /** 0 none, 1 AES, 2 LUKS. */
  cryptMethod: number;
  incompatibleFeatures: bigint;
  /** The external data file named by the header extension, when one is. */
  dataFile?: string;
  hasCryptoHeader: boolean;
}

/** What the bytes are when they are not a QCOW2 image, by the magic of the formats qemu-img would probe. */
export function probeFormat(buf: Buffer): string {
  const at = (offset: number, text: string) => buf.subarray(offset, offset + text.length).toString("latin1") === text;
  if (buf.length >= 4 && buf.readUInt32BE(0) === QCOW2_MAGIC) return "qcow2";
  if (at(0, "QED\0")) return "qed";
  if (at(0, "KDMV") || at(0, "# Disk DescriptorFile")) return "vmdk";
  if (at(0, "vhdxfile")) return "vhdx";
  if (at(0, "LUKS\xba\xbe")) return "luks";
  if (at(0, "conectix")) return "vpc";
  if (buf.length >= 0x44 && buf.readUInt32LE(0x40) === 0xbeda107f) return "vdi";
  return "raw";
}

/** A printable, bounded rendering of a name read from the file (it is attacker-controlled). */
function printable(bytes: Buffer): string {
  const text = bytes.toString("latin1").replace(/[^\x20-\x7e]/g, "?");
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

export class Qcow2HeaderError extends Error {}

/** Parses the header and its extensions; throws Qcow2HeaderError for bytes that are not a well-formed header. */
export function parseQcow2Header(buf: Buffer): Qcow2Header {
  if (buf.length < V2_HEADER_LENGTH) throw new Qcow2HeaderError(`only ${buf.length} bytes, shorter than a header`);
  if (buf.readUInt32BE(0) !== QCOW2_MAGIC) throw new Qcow2HeaderError("no QCOW2 magic");
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new Qcow2HeaderError(`version ${version} (QEMU reads 2 and 3)`);
  const clusterBits = buf.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS)
    throw new Qcow2HeaderError(`cluster_bits ${clusterBits} outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`);
  const clusterSize = 2 ** clusterBits;
  const header: Qcow2Header = {
    version,
    clusterBits,
    virtualSize: buf.readBigUInt64BE(24),
    cryptMethod: buf.readUInt32BE(32),
    incompatibleFeatures: version === 3 ? buf.readBigUInt64BE(72) : 0n,
    hasCryptoHeader: false,
  };
  const headerLength = version === 3 ? buf.readUInt32BE(100) : V2_HEADER_LENGTH;
  if (version === 3 && (headerLength < 104 || headerLength % 8 !== 0 || headerLength > clusterSize))
    throw new Qcow2HeaderError(`header_length ${headerLength} is not a multiple of 8 from 104 to the cluster size`);

  const backingOffset = buf.readBigUInt64BE(8);
  const backingSize = buf.readUInt32BE(16);
  if (backingOffset !== 0n || backingSize !== 0) {
    const start = Number(backingOffset);
    const inside = backingOffset < BigInt(buf.length) && start + backingSize <= buf.length;
    header.backingFile = inside
      ? printable(buf.subarray(start, start + backingSize))
      : `(${backingSize} bytes at offset ${backingOffset})`;
  }

  // Extensions follow the header up to the end of the first cluster; each is type, length, data padded to 8.
  const limit = Math.min(buf.length, clusterSize);
  let at = headerLength;
  for (;;) {
    if (at + 8 > limit) throw new Qcow2HeaderError(`header extensions run past the first cluster (offset ${at})`);
    const type = buf.readUInt32BE(at);
    const length = buf.readUInt32BE(at + 4);
    if (type === EXT_END) break;
    const data = at + 8;
    if (data + length > limit)
      throw new Qcow2HeaderError(`header extension 0x${type.toString(16)} runs past the first cluster`);
    const bytes = buf.subarray(data, data + length);
    if (type === EXT_DATA_FILE) header.dataFile = printable(bytes);
    else if (type === EXT_BACKING_FORMAT) header.backingFormat = printable(bytes);
    else if (type === EXT_CRYPTO_HEADER) header.hasCryptoHeader = true;
    at = data + Math.ceil(length / 8) * 8;
  }
  return header;
}

/** One reason to refuse an upstream image: the header field and what it holds. */
export interface HeaderRefusal {
  field: string;
  detail: string;
}

const bit = (features: bigint, n: number) => ((features >> BigInt(n)) & 1n) === 1n;

/**
 * Why `buf` (the file's first HEADER_READ_BYTES) may not be opened as an upstream image of format `declared`:
 * empty when it is a standalone, unencrypted QCOW2 image. Only QCOW2 is judged; any other declared format is
 * refused, since nothing here can vouch for what its tools would open.
 */
export function upstreamHeaderRefusals(buf: Buffer, declared: string): HeaderRefusal[] {
  const found = probeFormat(buf);
  if (declared !== "qcow2")
    return [{ field: "format", detail: `the catalog declares ${declared}: only qcow2 is taken` }];
  if (found !== "qcow2") return [{ field: "format", detail: `the file is ${found}, the catalog declares qcow2` }];
  let header: Qcow2Header;
  try {
    header = parseQcow2Header(buf);
  } catch (err) {
    if (!(err instanceof Qcow2HeaderError)) throw err;
    return [{ field: "header", detail: err.message }];
  }
  const refusals: HeaderRefusal[] = [];
  const f = header.incompatibleFeatures;
  if (header.backingFile !== undefined) refusals.push({ field: "backing file", detail: `names ${header.backingFile}` });
  else if (header.backingFormat !== undefined)
    refusals.push({ field: "backing file", detail: `a backing format ${header.backingFormat} without a name` });
  if (header.dataFile !== undefined || bit(f, INCOMPATIBLE.externalDataFile))
    refusals.push({ field: "external data file", detail: header.dataFile ? `names ${header.dataFile}` : "flagged" });
  if (header.cryptMethod !== 0 || header.hasCryptoHeader)
    refusals.push({
      field: "encryption",
      detail: header.cryptMethod === 1 ? "AES" : header.cryptMethod === 2 ? "LUKS" : `method ${header.cryptMethod}`,
    });
  if (bit(f, INCOMPATIBLE.corrupt)) refusals.push({ field: "corrupt", detail: "the header marks the image corrupt" });
  const unknown = f & ~KNOWN_INCOMPATIBLE_MASK;
  if (unknown !== 0n)
    refusals.push({ field: "incompatible features", detail: `unknown bits 0x${unknown.toString(16)}` });
  return refusals;
}
