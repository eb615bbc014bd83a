import { describe, expect, it } from "vitest";
import {
  addAnswer,
  decodeAwsChunked,
  generalPath,
  learnIds,
  shapeDiff,
  statesOf,
  substituteIds,
  unexplained,
} from "../../builder/emulator/conformance";

const A = "11111111-1111-4111-8111-111111111111";
const B = "22222222-2222-4222-8222-222222222222";
const C = "33333333-3333-4333-8333-333333333333";

describe("shapeDiff", () => {
  it.each([
    ["same shape, other values", { id: A, size: 1, tags: ["a"] }, { id: B, size: 2, tags: ["b", "c"] }, []],
    ["a missing field", { id: A, zone: "fr-par-1" }, { id: B }, ["$.zone: missing"]],
    ["an added field", { id: A }, { id: B, extra: 1 }, ["$.extra: not in the recording"]],
    ["another type", { size: 1 }, { size: "1" }, ["$.size: number recorded, string emulated"]],
    ["null matches any type", { ipv6: null, at: "x" }, { ipv6: { a: 1 }, at: null }, []],
    [
      "nested field",
      { server: { location: { zone_id: "z" } } },
      { server: { location: { zone: "z" } } },
      ["$.server.location.zone_id: missing", "$.server.location.zone: not in the recording"],
    ],
    [
      "array elements",
      { rules: [{ id: A, port: 1 }] },
      { rules: [{ id: B, port: 2 }, { id: C }] },
      ["$.rules[1].port: missing"],
    ],
    ["empty arrays say nothing", { refs: [] }, { refs: [{ x: 1 }] }, []],
    [
      "volume slots are a map",
      { volumes: { "0": { id: A } } },
      { volumes: { "0": { id: B }, "1": { id: C, boot: true } } },
      ["$.volumes.1.boot: not in the recording"],
    ],
    [
      "products are a map",
      { servers: { "DEV1-S": { ncpus: 2 }, VC1L: { ncpus: 4 } } },
      { servers: { "PRO2-XXS": { ncpus: "2" } } },
      ["$.servers.PRO2-XXS.ncpus: number recorded, string emulated"],
    ],
    ["an empty map against entries", { extra_volumes: {} }, { extra_volumes: { "1": { id: A } } }, []],
  ])("%s", (_, recorded, emulated, want) => {
    expect(shapeDiff(recorded, emulated)).toEqual(want);
  });
});

describe("learnIds and substituteIds", () => {
  it("pairs ids found at the same place, keeps a first pairing, and rewrites requests", () => {
    const ids = new Map<string, string>([[C, "kept"]]);
    learnIds(
      { server: { id: A, volumes: { "0": { id: C } }, tags: [A] } },
      { server: { id: B, volumes: { "0": { id: A } }, tags: ["not-an-id"] } },
      ids,
    );
    expect([...ids]).toEqual([
      [C, "kept"],
      [A, B],
    ]);
    expect(substituteIds(`/servers/${A}/action {"volume":"${C}","other":"${B}"}`, ids)).toBe(
      `/servers/${B}/action {"volume":"kept","other":"${B}"}`,
    );
  });
});

describe("statesOf", () => {
  it("finds every state and status by path", () => {
    expect(
      statesOf({ status: "in_use", references: [{ status: "attached" }], server: { state: "running", name: "state" } }),
    ).toEqual({
      "$.status": "in_use",
      "$.references[0].status": "attached",
      "$.server.state": "running",
    });
  });
});

describe("decodeAwsChunked", () => {
  it.each([
    ["two chunks", "5;chunk-signature=ab\r\nhello\r\n1\r\n!\r\n0\r\n\r\n", "hello!"],
    ["plain sizes", "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n", "abc"],
    ["not chunked", "QFI\xfb plain bytes", "QFI\xfb plain bytes"],
    ["truncated chunk", "ff\r\nabc", "ff\r\nabc"],
  ])("%s", (_, input, want) => {
    expect(Buffer.from(decodeAwsChunked(Buffer.from(input, "latin1"))).toString("latin1")).toBe(want);
  });
});

describe("endpoint fields across recorded answers", () => {
  it("explains a field the API omits at times, or grew since an older recording, and nothing else", () => {
    let fields = addAnswer(undefined, { server: { id: A, volumes: { "0": { id: B } }, admin: null } });
    fields = addAnswer(fields, { server: { id: B, volumes: { "0": { id: C, zone: "z" } } }, kms: [1] });
    expect(generalPath("$.server.volumes.0.zone")).toBe("$.server.volumes.*.zone");
    expect(generalPath("$.rules[3].id")).toBe("$.rules[].id");
    expect(
      unexplained(
        [
          "$.server.admin: missing",
          "$.server.id: missing",
          "$.server.volumes.1.zone: not in the recording",
          "$.other: not in the recording",
          "$.server.id: number recorded, string emulated",
        ],
        fields,
      ),
    ).toEqual([
      "$.server.id: missing",
      "$.other: not in the recording",
      "$.server.id: number recorded, string emulated",
    ]);
  });
});
