/** The RHEL family: AlmaLinux, Rocky Linux and CentOS Stream. Their checksum files are BSD style. */
import { pinsOf, rhelRecipe, SCALEWAY_DEFAULTS } from "./common";
import type { Release, Signature } from "./schema";

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
  /** Absent: upstream does not sign the checksum file, and a build trusts the pinned checksum. */
  signature?: Signature;
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
      ...(a.signature ? { signature: a.signature } : {}),
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

/**
 * AlmaLinux clear-signs CHECKSUM with the release's package key. AlmaLinux OS 9's key (rsa4096 D36CB86CB86B3716)
 * and its fingerprint are quoted by the DISA STIG for AlmaLinux OS 9, which installs it from repo.almalinux.org.
 * No stored source gives AlmaLinux 10's fingerprint: unverified until pinned.
 */
const ALMA_SIGNING: Record<string, Pick<Signature, "fingerprint" | "keyUrl" | "source">> = {
  "9": {
    fingerprint: "BF18AC2876178908D6E71267D36CB86CB86B3716",
    keyUrl: "https://repo.almalinux.org/almalinux/RPM-GPG-KEY-AlmaLinux-9",
    source: "https://stigaview.com/products/alma9/v1r1/ALMA-09-009700",
  },
  "10": { fingerprint: "unverified", source: "https://almalinux.org/security/" },
};

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
    signature: {
      url: `https://repo.almalinux.org/almalinux/${major}/cloud/{arch}/images/CHECKSUM`,
      kind: "clearsigned",
      ...ALMA_SIGNING[major]!,
    },
  });

/**
 * Rocky Linux does not sign its image CHECKSUM files ("Keykeeper … does not sign arbitrary files or artifacts
 * outside the build system", https://github.com/rocky-linux/checksums): the pinned checksum is what a build trusts.
 */
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

/**
 * No stored source says cloud.centos.org signs the cloud images' .SHA256SUM files (the CentOS wiki describes signed
 * sha256sum.txt.asc for ISO directories only, https://wiki.centos.org/Download/Verify): the pinned checksum is
 * what a build trusts.
 */
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
