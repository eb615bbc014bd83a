/**
 * Creates made safe to retry. A create whose answer was lost (the API committed, the client saw a 5xx or a dropped
 * connection) would, retried blindly, make a second server with its IP and volume, or a second snapshot, that
 * nothing reports or removes. Before such a retry the client lists the collection and adopts the resource the lost
 * attempt made: same name, every tag the request set, same project, created since the first attempt began. The
 * Scaleway APIs take no idempotency key, so this is how a client can tell.
 */

/** How one create endpoint is looked up: its list, the list's key, and how the create's answer wraps the item. */
export interface CreateRoute {
  /** The list's path (the create's own, or the Block snapshots list for an import). */
  listPath: string;
  /** Where the list's answer holds the items. */
  listKey: string;
  /** The create's answer: `{ [wrap]: item }` (Instance) or the item itself (Block, VPC). */
  wrap?: string;
  /** The item field holding its creation time. */
  createdField: "creation_date" | "created_at";
  /** What must be equal between the item and the request besides the creation time. */
  same: (item: Record<string, unknown>, body: Record<string, unknown>) => boolean;
  /** The Instance API pages with `per_page`, Block and VPC with `page_size`. */
  sizeParam: "per_page" | "page_size";
}

const SINGULAR: Record<string, string> = {
  servers: "server",
  images: "image",
  snapshots: "snapshot",
  volumes: "volume",
  security_groups: "security_group",
};

const tags = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const project = (o: Record<string, unknown>): unknown => o.project ?? o.project_id;

/** A named resource: the name, every tag the request set and the project (when the request names one). */
const sameNamed = (item: Record<string, unknown>, body: Record<string, unknown>): boolean =>
  typeof body.name === "string" &&
  item.name === body.name &&
  tags(body.tags).every((t) => tags(item.tags).includes(t)) &&
  (project(body) === undefined || project(item) === project(body));

/** The lookup for a POST to `pathname`, or undefined when it creates nothing a name can find again. */
export function createRoute(pathname: string): CreateRoute | undefined {
  let m = /^(\/instance\/v1\/zones\/[^/]+)\/(servers|images|snapshots|volumes|security_groups)$/.exec(pathname);
  if (m)
    return {
      listPath: pathname,
      listKey: m[2]!,
      wrap: SINGULAR[m[2]!],
      createdField: "creation_date",
      same: sameNamed,
      sizeParam: "per_page",
    };
  m = /^\/instance\/v1\/zones\/[^/]+\/servers\/[^/]+\/private_nics$/.exec(pathname);
  if (m)
    return {
      listPath: pathname,
      listKey: "private_nics",
      wrap: "private_nic",
      createdField: "creation_date",
      // A server has at most one NIC per Private Network: the network is the NIC's name.
      same: (item, body) =>
        typeof body.private_network_id === "string" && item.private_network_id === body.private_network_id,
      sizeParam: "per_page",
    };
  m = /^(\/block\/v1(?:alpha1)?\/zones\/[^/]+)\/(volumes|snapshots)(\/import-from-object-storage)?$/.exec(pathname);
  if (m && (m[2] === "snapshots" || !m[3]))
    return {
      listPath: `${m[1]}/${m[2]}`,
      listKey: m[2]!,
      createdField: "created_at",
      same: sameNamed,
      sizeParam: "page_size",
    };
  m = /^\/vpc\/v2\/regions\/[^/]+\/private-networks$/.exec(pathname);
  if (m)
    return {
      listPath: pathname,
      listKey: "private_networks",
      createdField: "created_at",
      same: sameNamed,
      sizeParam: "page_size",
    };
  return undefined;
}

/** Server clocks and ours differ a little: an item created up to this long before the first attempt still counts. */
export const CLOCK_SKEW_MS = 60_000;

/** The items the lost attempt may have made: those the route judges the same, created since `startedAt`. */
export function candidates(
  route: CreateRoute,
  items: Record<string, unknown>[],
  body: Record<string, unknown>,
  startedAt: number,
): Record<string, unknown>[] {
  return items.filter((item) => {
    const created = Date.parse(String(item[route.createdField] ?? ""));
    return route.same(item, body) && !Number.isNaN(created) && created >= startedAt - CLOCK_SKEW_MS;
  });
}

export class AmbiguousCreateError extends Error {}

const MAX_PAGES = 20;

/**
 * The answer the lost create would have given, made from the one resource it left, or undefined when it left none
 * (the retry may create). Several candidates are an AmbiguousCreateError naming them: adopting one would leave the
 * others, creating would add one more.
 */
export async function adoptCreated(
  original: Request,
  startedAt: number,
  inner: typeof fetch,
): Promise<{ response: Response; id: string } | undefined> {
  const url = new URL(original.url);
  const route = original.method === "POST" ? createRoute(url.pathname) : undefined;
  if (!route) return undefined;
  const body = (await original.clone().json()) as Record<string, unknown>;
  const items: Record<string, unknown>[] = [];
  for (let page = 1; page <= MAX_PAGES; page++) {
    const list = new URL(route.listPath, url);
    list.searchParams.set("page", String(page));
    list.searchParams.set(route.sizeParam, "100");
    if (typeof body.name === "string") list.searchParams.set("name", body.name);
    const headers = new Headers(original.headers);
    headers.delete("content-type");
    const res = await inner(new Request(list, { method: "GET", headers }));
    if (!res.ok) throw new Error(`GET ${list.pathname}: ${res.status} while looking for a lost create's resource`);
    const found = ((await res.json()) as Record<string, unknown>)[route.listKey];
    const pageItems = Array.isArray(found) ? (found as Record<string, unknown>[]) : [];
    items.push(...pageItems);
    if (pageItems.length < 100) break;
  }
  const matches = candidates(route, items, body, startedAt);
  if (matches.length === 0) return undefined;
  if (matches.length > 1)
    throw new AmbiguousCreateError(
      `POST ${url.pathname}: the answer was lost and ${matches.length} resources match the request (${matches.map((m) => String(m.id)).join(", ")}): not adopting one, not creating another`,
    );
  const item = matches[0]!;
  const response = new Response(JSON.stringify(route.wrap ? { [route.wrap]: item } : item), {
    status: 201,
    headers: { "content-type": "application/json" },
  });
  return { response, id: String(item.id) };
}
