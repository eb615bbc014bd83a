/** Which creates are looked up before a retry, and which listed items count as what a lost attempt made. */
import { describe, expect, it } from "vitest";
import {
  adoptCreated,
  AmbiguousCreateError,
  candidates,
  CLOCK_SKEW_MS,
  createRoute,
} from "../../builder/release/adopt-created";

describe("createRoute", () => {
  it.each([
    ["/instance/v1/zones/fr-par-1/servers", "/instance/v1/zones/fr-par-1/servers", "servers", "server"],
    ["/instance/v1/zones/fr-par-1/images", "/instance/v1/zones/fr-par-1/images", "images", "image"],
    ["/instance/v1/zones/nl-ams-3/snapshots", "/instance/v1/zones/nl-ams-3/snapshots", "snapshots", "snapshot"],
    [
      "/instance/v1/zones/fr-par-1/security_groups",
      "/instance/v1/zones/fr-par-1/security_groups",
      "security_groups",
      "security_group",
    ],
    [
      "/instance/v1/zones/fr-par-1/servers/s1/private_nics",
      "/instance/v1/zones/fr-par-1/servers/s1/private_nics",
      "private_nics",
      "private_nic",
    ],
    [
      "/block/v1/zones/fr-par-1/snapshots/import-from-object-storage",
      "/block/v1/zones/fr-par-1/snapshots",
      "snapshots",
      undefined,
    ],
    ["/block/v1/zones/fr-par-1/snapshots", "/block/v1/zones/fr-par-1/snapshots", "snapshots", undefined],
    ["/block/v1alpha1/zones/fr-par-1/volumes", "/block/v1alpha1/zones/fr-par-1/volumes", "volumes", undefined],
    [
      "/vpc/v2/regions/fr-par/private-networks",
      "/vpc/v2/regions/fr-par/private-networks",
      "private_networks",
      undefined,
    ],
  ])("%s", (path, listPath, listKey, wrap) => {
    const route = createRoute(path);
    expect({ listPath: route?.listPath, listKey: route?.listKey, wrap: route?.wrap }).toEqual({
      listPath,
      listKey,
      wrap,
    });
  });
  it.each([
    "/instance/v1/zones/fr-par-1/servers/s1/action",
    "/instance/v1/zones/fr-par-1/servers/s1/user_data/cloud-init",
    "/block/v1/zones/fr-par-1/volumes/import-from-object-storage",
    "/instance/v1/zones/fr-par-1/ips",
    "/marketplace/v2/local-images",
  ])("not %s", (path) => expect(createRoute(path)).toBeUndefined());
});

describe("candidates", () => {
  const route = createRoute("/instance/v1/zones/fr-par-1/servers")!;
  const start = Date.parse("2026-12-07T02:00:00Z");
  const at = (ms: number) => new Date(start + ms).toISOString();
  const body = { name: "t", tags: ["a", "b"], project: "p" };
  it.each([
    [
      "same name, tags and project, after the start",
      { name: "t", tags: ["a", "b"], project: "p", creation_date: at(1) },
      true,
    ],
    ["more tags than asked", { name: "t", tags: ["a", "b", "c"], project: "p", creation_date: at(1) }, true],
    [
      "within the clock skew before the start",
      { name: "t", tags: ["a", "b"], project: "p", creation_date: at(-CLOCK_SKEW_MS) },
      true,
    ],
    [
      "before the start and the skew",
      { name: "t", tags: ["a", "b"], project: "p", creation_date: at(-CLOCK_SKEW_MS - 1) },
      false,
    ],
    ["a tag missing", { name: "t", tags: ["a"], project: "p", creation_date: at(1) }, false],
    [
      "another name (the API's filter is a substring)",
      { name: "t2", tags: ["a", "b"], project: "p", creation_date: at(1) },
      false,
    ],
    ["another project", { name: "t", tags: ["a", "b"], project: "q", creation_date: at(1) }, false],
    ["no creation date", { name: "t", tags: ["a", "b"], project: "p" }, false],
  ])("%s", (_n, item, expected) => {
    expect(candidates(route, [item], body, start)).toHaveLength(expected ? 1 : 0);
  });
  it("a Block item's project_id and created_at", () => {
    const b = createRoute("/block/v1/zones/fr-par-1/snapshots/import-from-object-storage")!;
    const item = { name: "s", tags: [], project_id: "p", created_at: at(5) };
    expect(candidates(b, [item], { name: "s", project_id: "p" }, start)).toEqual([item]);
    expect(candidates(b, [item], { name: "s", project_id: "q" }, start)).toEqual([]);
  });
  it("a NIC by its Private Network", () => {
    const n = createRoute("/instance/v1/zones/fr-par-1/servers/s/private_nics")!;
    const item = { private_network_id: "pn1", creation_date: at(5) };
    expect(candidates(n, [item], { private_network_id: "pn1" }, start)).toEqual([item]);
    expect(candidates(n, [item], { private_network_id: "pn2" }, start)).toEqual([]);
  });
});

describe("adoptCreated", () => {
  const url = "http://api.invalid/instance/v1/zones/fr-par-1/servers";
  const post = () =>
    new Request(url, {
      method: "POST",
      body: JSON.stringify({ name: "t", project: "p" }),
      headers: { "x-auth-token": "k" },
    });
  const listing = (servers: unknown[]) => {
    const seen: Request[] = [];
    const inner = (async (req: Request) => {
      seen.push(req);
      return Response.json({ servers });
    }) as typeof fetch;
    return { inner, seen };
  };
  const now = Date.now();
  const item = (id: string) => ({ id, name: "t", tags: [], project: "p", creation_date: new Date(now).toISOString() });

  it("answers as the create would have, with the one it finds", async () => {
    const { inner, seen } = listing([item("s1")]);
    const adopted = await adoptCreated(post(), now, inner);
    expect(adopted?.id).toBe("s1");
    expect(await adopted!.response.json()).toEqual({ server: item("s1") });
    expect(seen.map((r) => [r.method, new URL(r.url).search, r.headers.get("x-auth-token")])).toEqual([
      ["GET", "?page=1&per_page=100&name=t", "k"],
    ]);
  });
  it("lets the retry create when nothing matches", async () => {
    expect(await adoptCreated(post(), now, listing([]).inner)).toBeUndefined();
  });
  it("refuses to choose between several", async () => {
    await expect(adoptCreated(post(), now, listing([item("s1"), item("s2")]).inner)).rejects.toThrow(
      AmbiguousCreateError,
    );
    await expect(adoptCreated(post(), now, listing([item("s1"), item("s2")]).inner)).rejects.toThrow(/s1, s2/);
  });
  it("looks nothing up for a request that creates nothing", async () => {
    const { inner, seen } = listing([item("s1")]);
    expect(
      await adoptCreated(new Request(`${url}/s1/action`, { method: "POST", body: "{}" }), now, inner),
    ).toBeUndefined();
    expect(await adoptCreated(new Request(url), now, inner)).toBeUndefined();
    expect(seen).toEqual([]);
  });
});
