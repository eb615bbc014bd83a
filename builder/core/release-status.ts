/**
 * What the factory's images of a zone offer, by `factory:status`: per `<release>/<arch>`, the release's current image
 * is the newest released one that is not hidden, never a candidate (an image whose battery has not passed, or
 * failed). Pure: scs-check --live, lifecycle --zone and any lookup by release read the zone through these.
 */
import type { Catalog } from "../../images";
import { byAge, isCandidate, isHidden, type LiveImage } from "./retention";
import { scsFromTags, SCS_TAG_PREFIX } from "./scs";
import { checkImageMetadata, checkImageSet, type CatalogImage, type Finding } from "./scs-check";

export interface ReleaseView {
  /** `<release>/<arch>` */
  key: string;
  /** What a lookup of the release finds: the newest released, visible image; none while nothing has passed. */
  released?: LiveImage;
  /** Images still under test or whose battery failed, newest first: never what the release's name refers to. */
  candidates: LiveImage[];
}

const tagValue = (tags: readonly string[], key: string) =>
  tags.find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1);

/** `<release>/<arch>` of one of the factory's images; undefined for an image without `factory:release`. */
export const releaseKey = (image: LiveImage) => {
  const release = tagValue(image.tags, "factory:release");
  return release ? `${release}/${image.arch}` : undefined;
};

/** Per `<release>/<arch>` (sorted): its released image and its candidates. */
export function releaseViews(images: readonly LiveImage[]): ReleaseView[] {
  const groups = new Map<string, LiveImage[]>();
  for (const image of images) {
    const key = releaseKey(image);
    if (key) groups.set(key, [...(groups.get(key) ?? []), image]);
  }
  return [...groups]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, group]) => {
      const sorted = [...group].sort(byAge);
      const released = sorted.find((i) => !isCandidate(i) && !isHidden(i));
      return { key, ...(released ? { released } : {}), candidates: sorted.filter(isCandidate) };
    });
}

/** The image a lookup of `release` on `arch` must return: the newest released one, whatever candidates are newer. */
export function releasedImage(images: readonly LiveImage[], release: string, arch: string): LiveImage | undefined {
  return releaseViews(images).find((v) => v.key === `${release}/${arch}`)?.released;
}

const subject = (i: LiveImage) => `${i.name} (${i.id})`;

/** A live image as SCS sees it: its tags read back; a candidate is flagged, hidden or not. */
export function scsImage(image: LiveImage, catalog: Catalog): CatalogImage {
  const release = catalog.byId.get(tagValue(image.tags, "factory:release") ?? "");
  const built = tagValue(image.tags, `${SCS_TAG_PREFIX}image_build_date`);
  return {
    subject: subject(image),
    meta: { ...scsFromTags(image.tags), ...(built ? { image_build_date: built } : {}) },
    codename: release?.kind === "os" ? release.codename : undefined,
    hidden: isHidden(image),
    candidate: isCandidate(image),
  };
}

/**
 * `scs-check --live`: each image's metadata, the zone's set (candidates left out: they are not what a name refers
 * to), and one warning per candidate naming the release's current image, so a failed battery is seen, not counted.
 */
export function checkLiveImages(images: readonly LiveImage[], catalog: Catalog, at: string): Finding[] {
  const seen = images.filter((i) => releaseKey(i)).map((i) => scsImage(i, catalog));
  const candidates = releaseViews(images).flatMap((v) =>
    v.candidates.map((c): Finding => ({
      severity: "warning",
      subject: subject(c),
      rule: "factory:status candidate",
      message: `a candidate of ${v.key}: its battery has not passed, so it is not the release's image; ${
        v.released ? `the current one is ${subject(v.released)}` : "no image of it is released in this zone yet"
      }`,
    })),
  );
  return [
    ...seen.flatMap((i) => checkImageMetadata(i.subject, i.meta, { at, built: true, hidden: i.hidden || i.candidate })),
    ...checkImageSet(seen, at),
    ...candidates,
  ];
}

/** What a lifecycle state applies to in a zone, per architecture: the released image, never a candidate. */
export interface ZoneImages {
  arch: string;
  /** The image a lookup finds and that a deprecation notice is about; none while nothing is released. */
  released?: { id: string; name: string };
  /** Newer images under test or failed: not offered, so neither deprecated nor announced. */
  candidates: string[];
}

/**
 * `lifecycle --zone`: each release's images in the zone. The state comes from the catalog's dates alone, so a
 * newer candidate never moves it; it is the released image the state and the notice speak of.
 */
export function lifecycleImages(release: string, views: readonly ReleaseView[]): ZoneImages[] {
  return views
    .filter((v) => v.key.startsWith(`${release}/`))
    .map((v) => ({
      arch: v.key.slice(release.length + 1),
      ...(v.released ? { released: { id: v.released.id, name: v.released.name } } : {}),
      candidates: v.candidates.map((c) => c.id),
    }));
}
