/**
 * The local stack's services on loopback for one main job: the fixture as upstream behind the mirror, the stand-in
 * downloads, the factory's scaleway-ecosystem repository and the embedded S3 server. The independent parts start
 * at the same time, so a second run that builds nothing does not wait for them one after another.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Catalog } from "../../images";
import { osBase } from "../../images";
import type { PlannedImage } from "../core/plan";
import { ensurePortFree, portTaken } from "../system/free-port";
import { cacheDir } from "../system/paths";
import { buildEcosystemRepo } from "./ecosystem-repo";
import { ECOSYSTEM_KEY_PATH } from "../pipeline/build";
import { upstreamLocation } from "../core/upstream-url";
import { codeDigest, fileSha256, layoutStamp } from "./layout-stamp";
import { ensureFixtureDigests } from "./fixture";
import { serveDirectory, type StaticServer } from "./http-server";
import { checksumAlgo, mirrorAs, mirrorPath, placeFile } from "./mirror";
import { startS3, type S3Server } from "./s3-server";
import { TEST_KEYS } from "./test-keys";
import type { StandIn } from "./wordpress-standin";

export interface LocalServices {
  /** Where the mirror tree and the buckets live between runs. */
  state: string;
  mirror: StaticServer;
  s3: S3Server;
  close(): Promise<void>;
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** The upstreams to mirror: one per OS release and architecture, however many images layer on it. */
export function upstreamsToMirror<T extends { id: string }, A extends string>(
  bases: { os: T; arch: A }[],
): { os: T; arch: A }[] {
  const seen = new Set<string>();
  return bases.filter(({ os, arch }) => {
    const k = `${os.id}/${arch}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export async function startLocalServices(o: {
  settings: { mirror?: string; s3Endpoint?: string; ecosystemVersion: string };
  plans: PlannedImage[];
  catalog: Catalog;
  standIns: Record<string, StandIn>;
}): Promise<LocalServices> {
  if (!o.settings.mirror || !o.settings.s3Endpoint)
    throw new Error("the local stack needs image-factory:mirror and image-factory:s3Endpoint");
  const upstreams = upstreamsToMirror(o.plans.map((p) => ({ os: osBase(o.catalog, p.release), arch: p.arch })));
  // The fixture is checked against its recorded sha256 and hashed for the mirror's checksum files in one read.
  const { file: fixture, digests } = await ensureFixtureDigests([...new Set(upstreams.map((u) => checksumAlgo(u.os)))]);
  // Where the local stack keeps its mirror tree and its S3 buckets between runs: per fixture, because a rebuilt
  // fixture is a different upstream under the same serial, which publish rightly refuses to paper over.
  const state =
    process.env.FACTORY_LOCAL_STATE ??
    cacheDir(
      "local",
      `${basename(fixture, ".qcow2")}-${readFileSync(`${fixture}.sha256`, "utf8").trim().slice(0, 12)}`,
    );
  const www = join(state, "www");
  // The stack file fixes the local services' ports: a second local job on this machine finds them taken, and says
  // so before it touches the running one's mirror tree or buckets.
  const [mirrorPort, s3Port] = [portOf(o.settings.mirror), portOf(o.settings.s3Endpoint)];
  const mirror = await serveDirectory(www, mirrorPort).catch((err: unknown) => {
    throw portTaken(err, "image-factory:mirror", mirrorPort);
  });
  await ensurePortFree(s3Port, "image-factory:s3Endpoint").catch(async (err: unknown) => {
    await mirror.close();
    throw err;
  });
  // The tree is laid out again only when what it is made from changed (builder/local/layout-stamp.ts); the stamp is
  // removed first and written last, so a run interrupted halfway lays it out again.
  const stampFile = `${www}.stamp`;
  const stamp = layoutStamp({
    upstreams: upstreams.map((u) => ({
      release: u.os.id,
      arch: u.arch,
      location: upstreamLocation(u.os, u.arch),
      format: u.os.upstream.checksumFormat,
      signature: u.os.upstream.signature ?? null,
      hex: digests[checksumAlgo(u.os)],
    })),
    standIns: Object.fromEntries(Object.entries(o.standIns).map(([url, s]) => [url, s.sha256])),
    ecosystem: { version: o.settings.ecosystemVersion, keyPath: ECOSYSTEM_KEY_PATH },
    keys: [TEST_KEYS.upstream, TEST_KEYS.ecosystem].map((k) => ({
      fingerprint: k.fingerprint,
      sha256: fileSha256(k.file),
    })),
    code: codeDigest(__dirname),
  });
  // And every file the mirror and the repository serve is still there (a stamp does not bring back a deleted file).
  const served = [
    ...upstreams.flatMap((u) => {
      const where = upstreamLocation(u.os, u.arch);
      return [where.image, where.checksums, where.signature, u.os.upstream.signature?.keyUrl];
    }),
    ...Object.keys(o.standIns),
  ].flatMap((url) => (url ? [mirrorPath(www, url)] : []));
  const laidOut =
    existsSync(stampFile) &&
    readFileSync(stampFile, "utf8").trim() === stamp &&
    [...served, join(www, "packages", "debian", "InRelease")].every((f) => existsSync(f));
  const layout = laidOut
    ? Promise.resolve()
    : (async () => {
        rmSync(stampFile, { force: true });
        rmSync(www, { recursive: true, force: true });
        mkdirSync(www, { recursive: true });
        for (const [url, standIn] of Object.entries(o.standIns)) placeFile(standIn.file, mirrorPath(www, url));
        // Signed as the stack's upstreamSignatures say, with the committed test key the stack pins: the prod road.
        const mirrored = (async () => {
          for (const u of upstreams) await mirrorAs(www, u.os, u.arch, fixture, TEST_KEYS.upstream, digests);
        })();
        await Promise.all([mirrored, buildEcosystemRepo(join(www, "packages"), o.settings.ecosystemVersion)]);
        writeFileSync(stampFile, `${stamp}\n`);
      })();
  const [laid, s3] = await Promise.allSettled([
    layout,
    startS3(join(state, "s3"), s3Port, o.plans[0]?.region ?? "fr-par"),
  ]);
  const failed = [laid, s3].find((r) => r.status === "rejected");
  if (failed || s3.status === "rejected") {
    if (s3.status === "fulfilled") await s3.value.stop();
    await mirror.close();
    throw (failed as PromiseRejectedResult).reason;
  }
  return {
    state,
    mirror,
    s3: s3.value,
    close: async () => {
      await Promise.all([mirror.close(), s3.value.stop()]);
    },
  };
}
