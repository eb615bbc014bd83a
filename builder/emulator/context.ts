/** The emulator's state in one zone: its resources by id, the S3 client imports read with, and shared helpers. */
import { S3Client } from "@aws-sdk/client-s3";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { run } from "../system/exec";
import { notFound } from "./errors";
import { createFaultBook } from "./faults";
import {
  instanceDate,
  type EmulatorOptions,
  type Image,
  type PrivateNetwork,
  type PrivateNic,
  type SecurityGroup,
  type Server,
  type Snapshot,
  type Task,
  type Volume,
} from "./model";

export type State = ReturnType<typeof createState>;

export function createState(o: EmulatorOptions) {
  mkdirSync(o.stateDir, { recursive: true });
  const volumes = new Map<string, Volume>();
  const snapshots = new Map<string, Snapshot>();
  const images = new Map<string, Image>();
  const servers = new Map<string, Server>();
  const groups = new Map<string, SecurityGroup>();
  const networks = new Map<string, PrivateNetwork>();
  const nics = new Map<string, PrivateNic>();
  const tasks = new Map<string, Task>();
  const s3 = new S3Client({
    endpoint: o.s3.endpoint,
    region: o.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: o.s3.accessKeyId, secretAccessKey: o.s3.secretAccessKey },
    // The import reads whole artifacts: no response CRC computed in JavaScript (qemu-img checks what it reads).
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const faults = createFaultBook(o.faults);
  const counters = { nextIp: 2, nextSubnet: 0 };
  const zone = o.zone;
  const region = zone.replace(/-\d+$/, "");
  const file = (kind: string, id: string) => join(o.stateDir, kind, `${id}.qcow2`);
  mkdirSync(join(o.stateDir, "volumes"), { recursive: true });
  mkdirSync(join(o.stateDir, "snapshots"), { recursive: true });
  const later = (fn: () => Promise<void>) =>
    void fn().catch((err: Error) => process.stderr.write(`emulator: ${err.message}\n`));

  const get = <T>(m: Map<string, T>, id: string, resource: string): T => {
    const v = m.get(id);
    if (!v) throw notFound(resource, id);
    return v;
  };
  const defaultGroup = (): SecurityGroup => {
    const found = [...groups.values()].find((g) => g.projectDefault);
    if (found) return found;
    const g: SecurityGroup = {
      id: randomUUID(),
      name: "Default security group",
      description: "Auto generated security group.",
      inbound: "accept",
      outbound: "accept",
      stateful: true,
      rules: [],
      projectDefault: true,
      tags: [],
      created: instanceDate(),
      modified: instanceDate(),
    };
    groups.set(g.id, g);
    return g;
  };
  const newMac = () => `de:00:00:${[0, 0, 0].map(() => randomBytes(1).toString("hex")).join(":")}`;
  const task = (description: string, s: Server): Task => {
    const t: Task = {
      id: randomUUID(),
      description,
      status: "pending",
      hrefFrom: `/servers/${s.id}/action`,
      hrefResult: `/servers/${s.id}`,
      started: instanceDate(),
      terminated: null,
      progress: 0,
    };
    tasks.set(t.id, t);
    return t;
  };
  const finish = (t: Task, ok: boolean) =>
    Object.assign(t, { status: ok ? "success" : "failure", terminated: instanceDate(), progress: 100 });
  const copyQcow2 = (from: string, to: string, sizeBytes?: number) =>
    run("qemu-img", ["convert", "-q", "-O", "qcow2", from, to]).then(async () => {
      if (sizeBytes) {
        const info = JSON.parse((await run("qemu-img", ["info", "--output=json", to])).stdout) as {
          "virtual-size": number;
        };
        if (info["virtual-size"] < sizeBytes) await run("qemu-img", ["resize", "-q", to, String(sizeBytes)]);
      }
    });

  return {
    o,
    zone,
    region,
    faults,
    volumes,
    snapshots,
    images,
    servers,
    groups,
    networks,
    nics,
    tasks,
    s3,
    counters,
    file,
    later,
    get,
    defaultGroup,
    newMac,
    task,
    finish,
    copyQcow2,
  };
}
