/**
 * The stand-ins a build host publishes against, on loopback: the local stack's fixture mirror and ecosystem
 * repository (random ports: their URLs are not in the content hash) and an embedded S3 server with its bucket;
 * and sshd build hosts accepting the remote Command's environment. For the build host tests and the bench.
 */
import { CreateBucketCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SENT_ENV, type SshTarget } from "../../builder/pipeline/build-host-ssh";
import { buildEcosystemRepo, localEcosystemVersion } from "../../builder/local/ecosystem-repo";
import { ensureFixture } from "../../builder/local/fixture";
import { serveDirectory, type StaticServer } from "../../builder/local/http-server";
import { LOCAL_STACK, publishEnvironment } from "../../builder/local/local-job";
import { mirrorAs } from "../../builder/local/mirror";
import { startS3, type S3Server } from "../../builder/local/s3-server";
import { TEST_KEYS } from "../../builder/local/test-keys";
import { projectRoot } from "../../builder/system/paths";
import { planStack, type PlannedImage } from "../../builder/core/plan";
import { readStackSettings } from "../../builder/system/stack-files";
import { ephemeralKey } from "../../builder/release/ssh";
import { s3Client } from "../../builder/pipeline/upload";
import { loadCatalog, osBase, withOverrides } from "../../images";
import { startSshd, type TestSshd } from "./sshd";

/** The CLI as a host runs it; the host's login PATH has another Node, so this one by path. */
export const HOST_CLI = `'${process.execPath}' '${join(projectRoot(), "dist", "builder", "cli.js")}'`;

export interface BuildHostEnv {
  work: string;
  hosts: TestSshd[];
  key: Awaited<ReturnType<typeof ephemeralKey>>;
  s3: S3Server;
  settings: ReturnType<typeof readStackSettings>;
  target(h: TestSshd, over?: Partial<SshTarget>): SshTarget;
  /** debian-12 x86_64 with security rebuild `n`: a distinct artifact per n, same cost to build. */
  plan(n: number): PlannedImage;
  /** The publish environment the remote Command would pass. */
  env(p: PlannedImage): Record<string, string>;
  exists(key: string): Promise<boolean>;
  startHost(acceptEnv?: boolean): Promise<TestSshd>;
  stop(): Promise<void>;
}

export async function buildHostEnv(hostCount: number): Promise<BuildHostEnv> {
  const key = await ephemeralKey();
  const accept = [`AcceptEnv ${SENT_ENV.join(" ")}`];
  const startHost = (acceptEnv = true) => startSshd(key.publicKey, acceptEnv ? accept : []);
  const hosts: TestSshd[] = [];
  for (let i = 0; i < hostCount; i++) hosts.push(await startHost());
  const work = mkdtempSync(join(tmpdir(), "build-hosts-"));
  const www = join(work, "www");
  mkdirSync(www);
  const local = readStackSettings(projectRoot(), LOCAL_STACK, loadCatalog());
  // Signed as the stack's upstreamSignatures say, as the local job mirrors it.
  const stackCatalog = withOverrides(loadCatalog(), local);
  await mirrorAs(
    www,
    osBase(stackCatalog, stackCatalog.byId.get("debian-12")!),
    "x86_64",
    await ensureFixture(),
    TEST_KEYS.upstream,
  );
  const ecosystemVersion = localEcosystemVersion(local.ecosystemVersion);
  await buildEcosystemRepo(join(www, "packages"), ecosystemVersion);
  const mirror: StaticServer = await serveDirectory(www, 0);
  const s3 = await startS3(join(work, "s3"), undefined, "fr-par");
  const settings = {
    ...local,
    images: ["debian-12"],
    ecosystemVersion,
    mirror: `${mirror.url}/upstream`,
    ecosystemRepository: `${mirror.url}/packages`,
    s3Endpoint: s3.endpoint,
  };
  const client = s3Client({ ...s3, bucket: settings.bucket });
  await client.send(new CreateBucketCommand({ Bucket: settings.bucket }));
  return {
    work,
    hosts,
    key,
    s3,
    settings,
    startHost,
    target: (h, over = {}) => ({
      address: "127.0.0.1",
      port: h.port,
      user: "root",
      hostKey: h.hostKey,
      privateKeyFile: key.privateKey,
      ...over,
    }),
    plan: (n) =>
      planStack(loadCatalog(), { ...settings, securityRebuilds: n ? [`debian-12:${n}`] : [] }).find(
        (p) => p.name === "debian-12-x86_64",
      )!,
    env: (p) => publishEnvironment(p, settings, s3, `${LOCAL_STACK}/${p.name}@build-host`),
    exists: (k) =>
      client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: k })).then(
        () => true,
        () => false,
      ),
    async stop() {
      for (const h of hosts) await h.stop();
      await mirror.close();
      await s3.stop();
      rmSync(work, { recursive: true, force: true });
      rmSync(key.dir, { recursive: true, force: true });
    },
  };
}
