/**
 * When a release leaves the stacks: upstream end of life plus the stack's grace period, taking effect with the
 * quarterly release that follows. Pure; the planner and the stack settings both read it (kept apart from both so
 * neither imports the other).
 */
import { osBase, type Catalog } from "../../images";
import type { Release } from "../../images/schema";

/** The first day of a release epoch: `2026Q4` → `2026-10-01`. */
export function epochStart(epoch: string): string {
  const [year, quarter] = epoch.split("Q") as [string, string];
  return `${year}-${String((Number(quarter) - 1) * 3 + 1).padStart(2, "0")}-01`;
}

/**
 * The day a release is deprecated: upstream end of life (an app: its base's, if earlier) plus the stack's grace
 * period; null for rolling releases.
 */
export function deprecationDay(catalog: Catalog, release: Release, graceDays: number): string | null {
  const eol = effectiveEol(catalog, release);
  return eol === null
    ? null
    : new Date(Date.parse(`${eol}T00:00:00Z`) + graceDays * 86_400_000).toISOString().slice(0, 10);
}

/** Upstream end of life; an app lives no longer than its base. Null: a rolling release. */
export function effectiveEol(catalog: Catalog, release: Release): string | null {
  return [release.eol, osBase(catalog, release).eol].filter((d): d is string => d !== null).sort()[0] ?? null;
}

/**
 * Whether a stack's release epoch has retired a release: deprecations take effect with the quarterly release
 * that follows them (a reviewable stack diff), never in the middle of a rollout.
 */
export function retiredBy(
  catalog: Catalog,
  release: Release,
  settings: { releaseEpoch: string; deprecationGraceDays: number },
): string | null {
  const day = deprecationDay(catalog, release, settings.deprecationGraceDays);
  return day !== null && day <= epochStart(settings.releaseEpoch) ? day : null;
}
