/** Retention against a zone through the Scaleway API: read the factory's images, carry out a retention plan. */
import type { Client } from "@scaleway/sdk-client";
import { scalewayClient } from "./scw-client";
import { Blockv1 } from "@scaleway/sdk-block";
import { Instancev1 } from "@scaleway/sdk-instance";
import { hiddenTags, RETIRED_SNAPSHOT_TAG, type LiveImage, type RetentionStep } from "../core/retention";

/** A Scaleway API client for one zone from the usual environment (SCW_ACCESS_KEY, SCW_SECRET_KEY; SCW_API_URL). */
export function zoneClient(zone: string, missing: (name: string) => Error): Client {
  const need = (name: string) => {
    const value = process.env[name];
    if (!value) throw missing(name);
    return value;
  };
  return scalewayClient({
    accessKey: need("SCW_ACCESS_KEY"),
    secretKey: need("SCW_SECRET_KEY"),
    defaultProjectId: process.env.SCW_DEFAULT_PROJECT_ID,
    defaultZone: zone,
    ...(process.env.SCW_API_URL ? { apiURL: process.env.SCW_API_URL } : {}),
  });
}

/** Every Instance image in the zone, all pages. */
export async function allImages(client: Client, zone: string): Promise<Instancev1.Image[]> {
  return new Instancev1.API(client).listImages({ zone: zone as never, perPage: 100 }).all();
}

/** The factory's images in the zone (tagged `factory:release=…`) with the servers booted from each. */
export async function liveFactoryImages(client: Client, zone: string): Promise<LiveImage[]> {
  const instance = new Instancev1.API(client);
  const servers = await instance.listServers({ zone: zone as never, perPage: 100 }).all();
  return (await allImages(client, zone))
    .filter((i) => i.tags.some((t) => t.startsWith("factory:release=")))
    .map((i) => ({
      id: i.id,
      name: i.name,
      arch: i.arch,
      tags: i.tags,
      created: i.creationDate?.toISOString() ?? "",
      snapshotIds: [i.rootVolume?.id, ...Object.values(i.extraVolumes ?? {}).map((v) => v.id)].filter(
        (x): x is string => !!x,
      ),
      usedBy: servers.filter((s) => s.image?.id === i.id).map((s) => `${s.name} (${s.id})`),
    }));
}

/** One thing a retention run did (or failed to do). */
export interface Outcome {
  action: "hide" | "delete" | "delete stranded snapshot";
  subject: string;
  /** What went wrong; the other steps still ran. */
  error?: string;
}

/**
 * Block snapshots a retention run marked retired whose image is gone: what a run cut between deleting an image and
 * deleting its snapshots left. Only the marker makes a snapshot eligible — a snapshot imported for an image not
 * created yet (a `pulumi up` under way) has no image either.
 */
export async function strandedSnapshots(client: Client, zone: string): Promise<{ id: string; name: string }[]> {
  const referenced = new Set(
    (await allImages(client, zone)).flatMap((i) => [
      i.rootVolume?.id,
      ...Object.values(i.extraVolumes ?? {}).map((v) => v.id),
    ]),
  );
  const snapshots = await new Blockv1.API(client)
    .listSnapshots({ zone: zone, pageSize: 100, includeDeleted: false })
    .all();
  return snapshots
    .filter((s) => s.tags.includes(RETIRED_SNAPSHOT_TAG) && !referenced.has(s.id))
    .map((s) => ({ id: s.id, name: s.name }));
}

/**
 * Renames and hides first, so no lookup by name finds an old version while deletions run; then, per expired
 * image, marks its block snapshots retired, deletes the image, deletes the snapshots. Re-running finishes what a
 * failed run left, stranded snapshots included.
 */
export async function applyRetention(
  client: Client,
  zone: string,
  steps: readonly RetentionStep[],
  log: (line: string) => void,
): Promise<Outcome[]> {
  const instance = new Instancev1.API(client);
  const block = new Blockv1.API(client);
  const z = zone as never;
  const out: Outcome[] = [];
  const attempt = async (action: Outcome["action"], subject: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      log(`${action} ${subject}: done`);
      out.push({ action, subject });
    } catch (err) {
      log(`${action} ${subject}: ${(err as Error).message}`);
      out.push({ action, subject, error: (err as Error).message });
    }
  };
  const subject = (s: RetentionStep) => `${s.image.name} (${s.image.id})`;
  for (const step of steps.filter((s) => s.action === "mark"))
    await attempt("hide", `${subject(step)} as "${step.rename}"`, () =>
      instance.updateImage({
        zone: z,
        imageId: step.image.id,
        name: step.rename,
        tags: hiddenTags(step.image.tags),
        public: false,
      }),
    );
  for (const step of steps.filter((s) => s.action === "delete"))
    await attempt("delete", subject(step), async () => {
      for (const snapshotId of step.image.snapshotIds) {
        const { tags } = await block.getSnapshot({ zone: z, snapshotId });
        if (!tags.includes(RETIRED_SNAPSHOT_TAG))
          await block.updateSnapshot({ zone: z, snapshotId, tags: [...tags, RETIRED_SNAPSHOT_TAG] });
      }
      await instance.deleteImage({ zone: z, imageId: step.image.id });
      for (const snapshotId of step.image.snapshotIds) await block.deleteSnapshot({ zone: z, snapshotId });
    });
  for (const s of await strandedSnapshots(client, zone))
    await attempt("delete stranded snapshot", `${s.name} (${s.id})`, () =>
      block.deleteSnapshot({ zone: z, snapshotId: s.id }),
    );
  return out;
}
