/**
 * The upstream gate's header judgement over bytes laid out here by hand, field by field as QEMU's qcow2.txt places
 * them; test/integration/untrusted-upstream.test.ts checks the same judgement on images qemu-img itself wrote.
 */
import { describe, expect, it } from "vitest";
import { parseQcow2Header, probeFormat, upstreamHeaderRefusals } from "../../builder/pipeline/qcow2-header";
import { infoRefusals } from "../../builder/pipeline/inspect-upstream";

interface Ext {
  type: number;
  data: Buffer;
}

interface Layout {
  version?: number;
  clusterBits?: number;
  backing?: string;
  /** A backing offset pointing past the bytes given. */
  backingOffset?: bigint;
  crypt?: number;
  incompatible?: bigint;
  headerLength?: number;
  exts?: Ext[];
  /** Leave out the end-of-extensions marker. */
  noEnd?: boolean;
  length?: number;
}

const DATA_FILE = 0x44415441;
const BACKING_FORMAT = 0xe2792aca;
const CRYPTO = 0x0537be77;
const FEATURE_TABLE = 0x6803f857;

/** A v3 (or v2) header with its extensions, as qemu-img lays one out: extensions right after the header. */
function image(l: Layout = {}): Buffer {
  const version = l.version ?? 3;
  const buf = Buffer.alloc(l.length ?? 65536);
  buf.write("QFI\xfb", 0, "latin1");
  buf.writeUInt32BE(version, 4);
  buf.writeUInt32BE(l.clusterBits ?? 16, 20);
  buf.writeBigUInt64BE(10n * 2n ** 30n, 24);
  buf.writeUInt32BE(l.crypt ?? 0, 32);
  const headerLength = version === 3 ? (l.headerLength ?? 112) : 72;
  if (version === 3) {
    buf.writeBigUInt64BE(l.incompatible ?? 0n, 72);
    buf.writeUInt32BE(4, 96);
    buf.writeUInt32BE(headerLength, 100);
  }
  let at = headerLength;
  for (const e of l.exts ?? []) {
    buf.writeUInt32BE(e.type, at);
    buf.writeUInt32BE(e.data.length, at + 4);
    e.data.copy(buf, at + 8);
    at += 8 + Math.ceil(e.data.length / 8) * 8;
  }
  if (l.noEnd) buf.fill(0xff, at, buf.length);
  else at += 8; // type 0, length 0
  if (l.backing !== undefined) {
    buf.writeBigUInt64BE(BigInt(at), 8);
    buf.writeUInt32BE(l.backing.length, 16);
    buf.write(l.backing, at, "latin1");
  }
  if (l.backingOffset !== undefined) {
    buf.writeBigUInt64BE(l.backingOffset, 8);
    buf.writeUInt32BE(16, 16);
  }
  return buf;
}

const ext = (type: number, text: string): Ext => ({ type, data: Buffer.from(text, "latin1") });

describe("upstreamHeaderRefusals", () => {
  const cases: [string, Buffer, string[]][] = [
    ["a standalone v3 image", image(), []],
    ["a standalone v2 image", image({ version: 2 }), []],
    ["the feature name table (qemu-img writes one)", image({ exts: [ext(FEATURE_TABLE, "x".repeat(48))] }), []],
    ["a dirty v3 image (lazy refcounts)", image({ incompatible: 1n }), []],
    ["zstd compression type", image({ incompatible: 8n }), []],
    ["a backing file on the host", image({ backing: "/etc/shadow" }), ['backing file: names "/etc/shadow"']],
    [
      "a json: backing file",
      image({ backing: 'json:{"driver":"nbd","host":"10.0.0.1"}' }),
      ['backing file: names "json:{\\"driver\\":\\"nbd\\",\\"host\\":\\"10.0.0.1\\"}"'],
    ],
    [
      "a backing name beyond the bytes read",
      image({ backingOffset: 1n << 40n }),
      ["backing file: names (16 bytes at offset 1099511627776)"],
    ],
    [
      "a backing format with no name",
      image({ exts: [ext(BACKING_FORMAT, "raw")] }),
      ['backing file: a backing format "raw" without a name'],
    ],
    [
      "an external data file",
      image({ incompatible: 4n, exts: [ext(DATA_FILE, "/root/.ssh/id_ed25519")] }),
      ['external data file: names "/root/.ssh/id_ed25519"'],
    ],
    ["the data file bit alone", image({ incompatible: 4n }), ["external data file: flagged"]],
    ["the data file name alone", image({ exts: [ext(DATA_FILE, "/x")] }), ['external data file: names "/x"']],
    ["AES encryption", image({ crypt: 1 }), ["encryption: AES"]],
    ["LUKS encryption", image({ crypt: 2, exts: [ext(CRYPTO, "\0".repeat(16))] }), ["encryption: LUKS"]],
    ["a LUKS header pointer alone", image({ exts: [ext(CRYPTO, "\0".repeat(16))] }), ["encryption: method 0"]],
    ["marked corrupt", image({ incompatible: 2n }), ["corrupt: the header marks the image corrupt"]],
    [
      "an unknown incompatible bit",
      image({ incompatible: 1n << 40n }),
      ["incompatible features: unknown bits 0x10000000000"],
    ],
    [
      "a backing file and a data file",
      image({ backing: "/a", incompatible: 4n, exts: [ext(DATA_FILE, "/b")] }),
      ['backing file: names "/a"', 'external data file: names "/b"'],
    ],
    [
      "a name with control characters, printed safely",
      image({ backing: "/x\n\x1b[2J" }),
      ['backing file: names "/x??[2J"'],
    ],
    ["version 1", image({ version: 1 }), ["header: version 1 (QEMU reads 2 and 3)"]],
    ["cluster_bits 30", image({ clusterBits: 30 }), ["header: cluster_bits 30 outside 9..21"]],
    [
      "a header_length that is not a multiple of 8",
      image({ headerLength: 105 }),
      ["header: header_length 105 is not a multiple of 8 from 104 to the cluster size"],
    ],
    [
      "extensions without an end inside the first cluster",
      image({ noEnd: true, clusterBits: 9, length: 512 }),
      ["header: header extension 0xffffffff runs past the first cluster"],
    ],
    ["a truncated header", image().subarray(0, 40), ["header: only 40 bytes, shorter than a header"]],
    [
      "a header whose extensions fill the first cluster",
      image({ clusterBits: 9, length: 512, exts: [ext(FEATURE_TABLE, "x".repeat(392))] }),
      ["header: header extensions run past the first cluster (offset 512)"],
    ],
    ["raw bytes", Buffer.alloc(4096), ["format: the file is raw, the catalog declares qcow2"]],
    [
      "a VMDK descriptor (its extents can name host files)",
      Buffer.from('# Disk DescriptorFile\nRW 2048 FLAT "/etc/shadow" 0\n'),
      ["format: the file is vmdk, the catalog declares qcow2"],
    ],
  ];
  it.each(cases)("%s", (_name, bytes, expected) => {
    expect(upstreamHeaderRefusals(bytes, "qcow2").map((r) => `${r.field}: ${r.detail}`)).toEqual(expected);
  });

  it("refuses every declared format but qcow2, whatever the bytes", () => {
    expect(upstreamHeaderRefusals(image(), "raw")).toEqual([
      { field: "format", detail: "the catalog declares raw: only qcow2 is taken" },
    ]);
  });
});

describe("parseQcow2Header", () => {
  it("reads the fields the refusals use", () => {
    const h = parseQcow2Header(image({ backing: "base.qcow2", exts: [ext(BACKING_FORMAT, "qcow2")] }));
    expect(h).toMatchObject({
      version: 3,
      clusterBits: 16,
      virtualSize: 10n * 2n ** 30n,
      backingFile: '"base.qcow2"',
      backingFormat: '"qcow2"',
      cryptMethod: 0,
    });
  });
});

describe("probeFormat", () => {
  const magic = (text: string, at = 0) => {
    const b = Buffer.alloc(512);
    b.write(text, at, "latin1");
    return b;
  };
  const vdi = Buffer.alloc(512);
  vdi.writeUInt32LE(0xbeda107f, 0x40);
  it.each([
    ["qcow2", image()],
    ["qed", magic("QED\0")],
    ["vmdk", magic("KDMV")],
    ["vhdx", magic("vhdxfile")],
    ["luks", magic("LUKS\xba\xbe")],
    ["vpc", magic("conectix")],
    ["vdi", vdi],
    ["raw", magic("hello")],
  ])("%s", (format, bytes) => expect(probeFormat(bytes)).toBe(format));
});

describe("infoRefusals (qemu-img's second opinion)", () => {
  it.each([
    ["standalone", { format: "qcow2" }, []],
    ["another format", { format: "raw" }, ["format"]],
    ["a backing file", { format: "qcow2", "backing-filename": "/etc/shadow" }, ["backing file"]],
    ["a data file", { format: "qcow2", "format-specific": { data: { "data-file": "/x" } } }, ["external data file"]],
    ["encrypted", { format: "qcow2", encrypted: true }, ["encryption"]],
    ["an encrypt block", { format: "qcow2", "format-specific": { data: { encrypt: {} } } }, ["encryption"]],
  ])("%s", (_name, info, fields) => {
    expect(infoRefusals(info, "qcow2").map((r) => r.field)).toEqual(fields);
  });
});
