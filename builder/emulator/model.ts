/** The emulator's records of Scaleway resources, the options it starts with, and the products it offers. */
import type { Accelerator } from "../system/accel";
import type { Fault } from "./faults";
import type { MetadataServer } from "../release/metadata-server";
import type { Machine } from "./machine";

export interface EmulatorOptions {
  stateDir: string;
  /** The secret key callers must send as X-Auth-Token. */
  secretKey: string;
  projectId: string;
  zone: string;
  /** Where `import-from-object-storage` reads buckets. */
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  accel: Accelerator;
  firmware?: "bios" | "uefi";
  /** Third octet of the loopback network public IPv4s come from (127.0.N.x). */
  publicNet?: number;
  port?: number;
  /** Faults to inject from the start (tests only; see faults.ts). */
  faults?: Fault[];
}

export interface Exchange {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

export const instanceDate = () => new Date().toISOString().replace("Z", "+00:00");
export const blockDate = () => new Date().toISOString();

export interface Volume {
  id: string;
  name: string;
  size: number;
  status: string;
  file: string;
  perfIops: number;
  parentSnapshotId: string | null;
  tags: string[];
  serverId: string | null;
  refId: string;
  created: string;
  updated: string;
  lastDetached: string | null;
}
export interface Snapshot {
  id: string;
  name: string;
  size: number;
  status: string;
  file: string;
  tags: string[];
  parentVolume: { id: string; name: string; status: string; type: string } | null;
  created: string;
  updated: string;
}
export interface Image {
  id: string;
  name: string;
  rootSnapshotId: string;
  extraSnapshotIds: string[];
  arch: string;
  state: string;
  tags: string[];
  fromServer: string;
  created: string;
  modified: string;
  public: boolean;
  /** The block reference each of its snapshots carries while the image exists, by snapshot id. */
  refs: Record<string, { id: string; created: string }>;
}
export interface Rule {
  id: string;
  protocol: string;
  direction: string;
  action: string;
  ip_range: string;
  dest_port_from: number | null;
  dest_port_to: number | null;
  position: number;
  editable: boolean;
}
export interface SecurityGroup {
  id: string;
  name: string;
  description: string;
  inbound: string;
  outbound: string;
  stateful: boolean;
  rules: Rule[];
  projectDefault: boolean;
  tags: string[];
  created: string;
  modified: string;
}
export interface PrivateNetwork {
  id: string;
  name: string;
  subnet: string;
  subnetId: string;
  tags: string[];
  created: string;
  updated: string;
  region: string;
}
export interface PrivateNic {
  id: string;
  serverId: string;
  privateNetworkId: string;
  mac: string;
  state: string;
  tags: string[];
  created: string;
}
export interface Task {
  id: string;
  description: string;
  status: string;
  hrefFrom: string;
  hrefResult: string;
  started: string;
  terminated: string | null;
  progress: number;
}
export interface Server {
  id: string;
  name: string;
  commercialType: string;
  imageId: string;
  volumeIds: string[];
  state: string;
  stateDetail: string;
  bootType: string;
  bootedType: string;
  tags: string[];
  securityGroupId: string;
  publicIp: string | null;
  ipId: string;
  mac: string;
  userData: Map<string, string>;
  dir: string;
  created: string;
  modified: string;
  busy: boolean;
  machine?: Machine;
  metadata?: MetadataServer;
}

/** Commercial types the emulator offers, with the recorded products' cpus and memory (machines boot smaller). */
export const PRODUCTS: Record<string, { ncpus: number; ram: number; arch: string }> = {
  "DEV1-S": { ncpus: 2, ram: 2 * 1024 ** 3, arch: "x86_64" },
  "DEV1-M": { ncpus: 3, ram: 4 * 1024 ** 3, arch: "x86_64" },
  "PLAY2-PICO": { ncpus: 1, ram: 2 * 1024 ** 3, arch: "x86_64" },
  "PLAY2-NANO": { ncpus: 2, ram: 4 * 1024 ** 3, arch: "x86_64" },
  "PRO2-XXS": { ncpus: 2, ram: 8 * 1024 ** 3, arch: "x86_64" },
};
/** Ports a security group can open on an emulated public IP, besides those its rules name. */
export const WATCHED_PORTS = [22, 80, 443];
