import { describe, expect, it } from "vitest";
import { evenShares } from "../bench/build-hosts";

// The build-hosts bench's two-host side must use both hosts: candidates are skipped, never forced onto a host.
describe("evenShares", () => {
  const table: { name: string; count: number; hosts: number; from: number; route: number[]; want: number[][] }[] = [
    { name: "alternating routes", count: 2, hosts: 2, from: 3, route: [0, 1], want: [[3], [4]] },
    {
      name: "one host first: skip until the other gets one",
      count: 2,
      hosts: 2,
      from: 3,
      route: [0, 0, 0, 1],
      want: [[3], [6]],
    },
    {
      name: "odd count: the first host to fill takes one more",
      count: 3,
      hosts: 2,
      from: 1,
      route: [1, 1, 1, 0],
      want: [[4], [1, 2]],
    },
    {
      name: "four over two",
      count: 4,
      hosts: 2,
      from: 5,
      route: [1, 0, 1, 1, 0],
      want: [
        [6, 9],
        [5, 7],
      ],
    },
  ];
  it.each(table)("$name", ({ count, hosts, from, route, want }) => {
    const shares = evenShares(count, hosts, from, (c) => route[c - from]!);
    expect(shares).toEqual(want);
    expect(shares.flat()).toHaveLength(count);
  });

  it("refuses a routing that never reaches a host", () => {
    expect(() => evenShares(2, 2, 1, () => 0)).toThrow("no even split of 2 images over 2 hosts");
  });
});
