/**
 * Image lifecycle on a given day: an image is supported while upstream supports it, announced (notice) in the
 * days before it is deprecated, and deprecated once upstream end of life plus the grace period has passed. An
 * InstantApp lives as long as its base. Pure: the day is an argument, never the clock.
 */
import { osBase, type Catalog } from "../../images";
import type { Release } from "../../images/schema";
import { deprecationDay, effectiveEol } from "./end-of-life";

export type LifecycleState = "supported" | "notice" | "deprecated";

export interface LifecycleEntry {
  id: string;
  label: string;
  title: string;
  /** Upstream end of life (an app: the earlier of its own and its base's); null: rolling, never ends. */
  eol: string | null;
  /** The day the image stops being offered for new Instances: eol + grace. */
  deprecates: string | null;
  state: LifecycleState;
  /** Days until deprecation (negative once deprecated); null for rolling releases. */
  daysLeft: number | null;
  /** The newest supported release of the same distribution, to point customers to. */
  successor?: string;
  /** The customer announcement, for images in notice or deprecated. */
  notice?: string;
}

const daysBetween = (from: string, to: string) =>
  Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);

function state(deprecates: string | null, at: string, noticeDays: number): LifecycleState {
  if (deprecates === null) return "supported";
  if (at >= deprecates) return "deprecated";
  return daysBetween(at, deprecates) <= noticeDays ? "notice" : "supported";
}

export function lifecycle(catalog: Catalog, at: string, graceDays: number, noticeDays: number): LifecycleEntry[] {
  const base = catalog.releases.map((r) => {
    const eol = effectiveEol(catalog, r);
    const deprecates = deprecationDay(catalog, r, graceDays);
    return { r, eol, deprecates, state: state(deprecates, at, noticeDays) };
  });
  const family = (r: Release) => (r.kind === "app" ? r.label : osBase(catalog, r).distro);
  const version = (r: Release) => (r.kind === "app" ? r.released : osBase(catalog, r).version);
  return base.map(({ r, eol, deprecates, state: s }) => {
    const successor = base
      .filter(
        (o) =>
          o.r.id !== r.id &&
          o.state === "supported" &&
          family(o.r) === family(r) &&
          (o.deprecates ?? "9999") > (deprecates ?? "9999"),
      )
      .sort((a, b) => version(b.r).localeCompare(version(a.r), undefined, { numeric: true }))[0]?.r;
    const entry: LifecycleEntry = {
      id: r.id,
      label: r.label,
      title: r.title,
      eol,
      deprecates,
      state: s,
      daysLeft: deprecates === null ? null : daysBetween(at, deprecates),
      ...(successor ? { successor: successor.id } : {}),
    };
    if (s !== "supported" && eol && deprecates)
      entry.notice =
        `${r.title} (image label ${r.label}) ${at >= eol ? "reached" : "reaches"} its upstream end of life on ${eol}. ` +
        `From ${deprecates} it ${at >= deprecates ? "is" : "will be"} deprecated on Scaleway: it can no longer be used to create new Instances. ` +
        `Running Instances are not affected and keep working.` +
        (successor ? ` Please move new Instances to ${successor.title} (image label ${successor.label}).` : "");
    return entry;
  });
}
