/**
 * `image-factory check-upstream`: each release's newest upstream build, read from upstream's directory listings
 * (through the stack's mirror when given) and resolved like a build would (its checksum file, signature verified),
 * then reported; with `write`, recorded in `images/pins.json` as a reviewable diff. Also flags releases past or
 * near end of life and new upstream majors the catalog lacks.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Catalog, OsRelease } from "../../images";
import type { Architecture, Pin } from "../../images/schema";
import { fetchBytes } from "./fetch";
import { lifecycle } from "../core/lifecycle";
import { resolveSource } from "./resolve";
import { throughMirror } from "../core/upstream-url";
import { compareSerials, listingLocation, majorsLocation, newestSerial } from "../core/upstream-watch";

export interface UpstreamRow {
  release: string;
  arch: Architecture;
  pinned: string;
  newest?: string;
  /** `confirmed`: the pinned build is still the newest and was unverified; its checksum is now read and recorded. */
  status: "up to date" | "new build" | "confirmed" | "unreadable";
  /** The new build's checksum from its (verified) checksum file. */
  checksum?: string;
  /** The official listing the new build was found in (recorded as the pin's provenance). */
  listing?: string;
  reason?: string;
}

export interface UpstreamReport {
  rows: UpstreamRow[];
  /** End of life passed or near, new majors: things a release manager acts on by hand. */
  flags: string[];
  /** The pins file rewritten, when `write` was asked and something changed. */
  wrote?: string;
}

export interface CheckUpstreamOptions {
  catalog: Catalog;
  mirror?: string;
  releases?: string[];
  /** Write new pins (serial and checksum) into this pins file. */
  writePins?: string;
  /** The day end of life is judged on. */
  at: string;
  /** The day recorded in written pins' provenance: today by default. */
  recordedOn?: string;
  graceDays?: number;
  noticeDays?: number;
}

async function text(url: string): Promise<string> {
  return (await fetchBytes(url)).toString("utf8");
}

export async function checkUpstream(o: CheckUpstreamOptions): Promise<UpstreamReport> {
  const releases = o.catalog.releases.filter(
    (r): r is OsRelease => r.kind === "os" && (!o.releases?.length || o.releases.includes(r.id)),
  );
  const rows: UpstreamRow[] = [];
  for (const r of releases) {
    for (const arch of r.architectures) {
      const pin = r.upstream.pins[arch]!;
      const pinned = pin.serial;
      const where = listingLocation(r, arch);
      let newest: string | undefined;
      try {
        newest = newestSerial(await text(throughMirror(where.listing, o.mirror)), where, pinned);
      } catch (err) {
        rows.push({ release: r.id, arch, pinned, status: "unreadable", reason: (err as Error).message });
        continue;
      }
      const confirm = newest === pinned && pin.provenance === "unverified";
      if (!confirm && (!newest || compareSerials(newest, pinned) <= 0)) {
        rows.push({ release: r.id, arch, pinned, newest, status: "up to date" });
        continue;
      }
      try {
        // Resolved as a build would: the serial's checksum file, its signature verified where upstream signs.
        const candidate: OsRelease = {
          ...r,
          upstream: { ...r.upstream, pins: { [arch]: { serial: newest!, provenance: "unverified" } } },
        };
        const source = await resolveSource(candidate, arch, o.mirror, { discover: true });
        if (confirm && pin.checksum && pin.checksum !== source.checksum.hex)
          throw new Error(`the checksum file lists ${source.checksum.hex}, not the pinned ${pin.checksum}`);
        rows.push({
          release: r.id,
          arch,
          pinned,
          newest,
          status: confirm ? "confirmed" : "new build",
          checksum: source.checksum.hex,
          listing: where.listing,
        });
      } catch (err) {
        rows.push({
          release: r.id,
          arch,
          pinned,
          newest,
          status: "unreadable",
          reason: `build ${newest} listed but not resolvable: ${(err as Error).message}`,
        });
      }
    }
  }

  const flags: string[] = [];
  for (const e of lifecycle(o.catalog, o.at, o.graceDays ?? 90, o.noticeDays ?? 60))
    if (e.state !== "supported" && (!o.releases?.length || o.releases.includes(e.id)))
      flags.push(
        `${e.id}: ${e.state === "deprecated" ? "deprecated" : "deprecation due"} on ${e.deprecates} (end of life ${e.eol})`,
      );
  const seen = new Set<string>();
  for (const r of releases) {
    const where = majorsLocation(r);
    if (!where || seen.has(where.listing)) continue;
    seen.add(where.listing);
    const known = o.catalog.releases
      .filter((x): x is OsRelease => x.kind === "os" && x.distro === r.distro)
      .map((x) => x.version);
    const newestKnown = [...known].sort(compareSerials).at(-1)!;
    try {
      const html = await text(throughMirror(where.listing, o.mirror));
      const majors = [...html.matchAll(/href\s*=\s*"([^"]*)"/gi)]
        .map((m) => where.link.exec(m[1]!.replace(/^.*\/(?=[^/]+\/?$)/, ""))?.[1])
        .filter((v): v is string => !!v);
      for (const major of [...new Set(majors)].sort(compareSerials))
        if (compareSerials(major, newestKnown) > 0)
          flags.push(`${r.distro} ${major}: a new upstream major, not in the catalog`);
    } catch (err) {
      flags.push(`${r.distro}: could not list ${where.listing} for new majors (${(err as Error).message})`);
    }
  }

  const changed = rows.filter((x) => x.status === "new build" || x.status === "confirmed");
  let wrote: string | undefined;
  if (o.writePins && changed.length) {
    const pins = JSON.parse(readFileSync(o.writePins, "utf8")) as Record<string, Partial<Record<Architecture, Pin>>>;
    const date = o.recordedOn ?? new Date().toISOString().slice(0, 10);
    for (const row of changed)
      (pins[row.release] ??= {})[row.arch] = {
        serial: row.newest!,
        checksum: row.checksum!,
        provenance: { recordedBy: "check-upstream --write", date, listing: row.listing! },
      };
    const tmp = `${o.writePins}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(pins, null, 2)}\n`);
    renameSync(tmp, o.writePins);
    wrote = o.writePins;
  }
  return { rows, flags, ...(wrote ? { wrote } : {}) };
}
