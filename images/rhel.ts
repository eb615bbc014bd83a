/** The RHEL family: AlmaLinux, Rocky Linux and CentOS Stream. Their checksum files are BSD style. */
import { pinsOf, rhelRecipe, SCALEWAY_DEFAULTS } from "./common";
import type { Release } from "./schema";

interface RhelArgs {
  distro: "almalinux" | "rocky" | "centos";
  major: string;
  title: string;
  label: string;
  released: string;
  eol: string;
  image: string;
  checksums: string;
  user: string;
  vendor: string;
}

const rhelId = (a: RhelArgs) => `${a.distro === "centos" ? "centos-stream" : a.distro}-${a.major}`;

const rhel = (a: RhelArgs) =>
  ({
    kind: "os",
    id: rhelId(a),
    label: a.label,
    title: a.title,
    distro: a.distro,
    version: a.major,
    family: "rhel",
    released: a.released,
    eol: a.eol,
    architectures: ["x86_64", "arm64"],
    upstream: {
      image: a.image,
      checksums: a.checksums,
      checksumFormat: "bsd",
      archNames: { x86_64: "x86_64", arm64: "aarch64" },
      pins: pinsOf(rhelId(a)),
    },
    scs: {
      ...SCALEWAY_DEFAULTS,
      os_purpose: "generic",
      image_original_user: a.user,
      min_ram: 1024,
      image_description: `${a.title} from ${a.vendor}'s official GenericCloud image, customised for Scaleway.`,
    },
    recipe: rhelRecipe(),
  }) satisfies Release;

const alma = (major: string, released: string, eol: string) =>
  rhel({
    distro: "almalinux",
    major,
    title: `AlmaLinux ${major}`,
    label: `almalinux_${major}`,
    released,
    eol,
    image: `https://repo.almalinux.org/almalinux/${major}/cloud/{arch}/images/AlmaLinux-${major}-GenericCloud-{serial}.{arch}.qcow2`,
    checksums: `https://repo.almalinux.org/almalinux/${major}/cloud/{arch}/images/CHECKSUM`,
    user: "almalinux",
    vendor: "the AlmaLinux OS Foundation",
  });

const rocky = (major: string, released: string, eol: string) =>
  rhel({
    distro: "rocky",
    major,
    title: `Rocky Linux ${major}`,
    label: `rockylinux_${major}`,
    released,
    eol,
    image: `https://dl.rockylinux.org/pub/rocky/${major}/images/{arch}/Rocky-${major}-GenericCloud-Base-{serial}.{arch}.qcow2`,
    checksums: `https://dl.rockylinux.org/pub/rocky/${major}/images/{arch}/Rocky-${major}-GenericCloud-Base-{serial}.{arch}.qcow2.CHECKSUM`,
    user: "rocky",
    vendor: "the Rocky Enterprise Software Foundation",
  });

const centosStream = (major: string, released: string, eol: string) =>
  rhel({
    distro: "centos",
    major,
    title: `CentOS Stream ${major}`,
    label: `centos_stream_${major}`,
    released,
    eol,
    image: `https://cloud.centos.org/centos/${major}-stream/{arch}/images/CentOS-Stream-GenericCloud-${major}-{serial}.{arch}.qcow2`,
    checksums: `https://cloud.centos.org/centos/${major}-stream/{arch}/images/CentOS-Stream-GenericCloud-${major}-{serial}.{arch}.qcow2.SHA256SUM`,
    user: "cloud-user",
    vendor: "the CentOS Project",
  });

export const almalinux = [
  alma("10", "2025-05-27", "2035-05-31"),
  alma("9", "2022-05-26", "2032-05-31"),
] satisfies Release[];

export const rockylinux = [
  rocky("10", "2025-06-11", "2035-05-31"),
  rocky("9", "2022-07-14", "2032-05-31"),
] satisfies Release[];

export const centos = [
  centosStream("10", "2024-12-12", "2030-01-01"),
  centosStream("9", "2021-12-03", "2027-05-31"),
] satisfies Release[];
