/**
 * The image catalog's types, validated with zod when the catalog loads. Plain data: no Pulumi import, so the
 * build CLI, the planner and the Pulumi program all read the same catalog.
 */
import { z } from "zod";

/** Scaleway's architecture names (the Instance image `arch` field). */
export const ARCHITECTURES = ["x86_64", "arm64"] as const;
export const Architecture = z.enum(ARCHITECTURES);
export type Architecture = z.infer<typeof Architecture>;

/** SCS-0102 names the architectures as OpenStack does. */
export const SCS_ARCHITECTURE: Record<Architecture, string> = { x86_64: "x86_64", arm64: "aarch64" };

/**
 * The formats upstreams publish their checksum files in:
 * - `sha256sums` / `sha512sums`: GNU coreutils, `<hex> *file` (binary) or `<hex>  file` (Ubuntu, Debian);
 * - `bsd`: `SHA256 (file) = <hex>`, with `#` comment lines and optionally PGP clear-signed (RHEL family);
 * - `single`: a `*.SHA256` file next to the image holding one `<hex>  file` line (Arch Linux).
 */
export const ChecksumFormat = z.enum(["sha256sums", "sha512sums", "bsd", "single"]);
export type ChecksumFormat = z.infer<typeof ChecksumFormat>;

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date as YYYY-MM-DD");
const hex = (bits: 256 | 512) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${bits / 4}}$`), `expected ${bits / 4} lowercase hex digits (sha${bits})`);
/** An https URL template; `{serial}` and `{arch}` are filled in from the pin and the upstream arch name. */
const urlTemplate = z
  .string()
  .regex(/^https:\/\/[^\s{}]+(\{(serial|arch)\}[^\s{}]*)*$/, "expected an https:// URL, placeholders {serial} {arch}");

/** An OpenPGP primary key fingerprint: 40 uppercase hex digits, no spaces (as gpg prints it with --with-colons). */
export const Fingerprint = z.string().regex(/^[0-9A-F]{40}$/, "expected a 40-hex-digit uppercase OpenPGP fingerprint");
/** Where upstream publishes a key: https (a mirror serves it at `<mirror>/<host>/<path>`). */
const keyUrl = z.url({ protocol: /^https$/, error: "expected an https:// URL" });

/**
 * Where upstream signs its checksum file, and the key that must have signed it: the primary key's `fingerprint`,
 * pinned here, and the `keyUrl` where upstream publishes the key (fetched on first use, through the stack's
 * mirror, checked against the pin, then cached per fingerprint). `"unverified"`: upstream signs, but no cited
 * source gave the fingerprint; builds of the release fail closed until it is pinned.
 */
export const Signature = z
  .strictObject({
    /** URL of the detached signature, or of the clear-signed checksum file itself. */
    url: urlTemplate,
    /** `detached`: a separate .gpg/.sig file; `clearsigned`: the checksum file is a PGP signed message. */
    kind: z.enum(["detached", "clearsigned"]),
    fingerprint: z.union([Fingerprint, z.literal("unverified")]),
    keyUrl: keyUrl.optional(),
    /** Where the fingerprint (or the lack of one) was read: the citation a reviewer checks. */
    source: z.url(),
  })
  .refine((s) => s.fingerprint === "unverified" || s.keyUrl !== undefined, {
    message: "a pinned fingerprint needs the keyUrl upstream publishes it at",
    path: ["keyUrl"],
  });
export type Signature = z.infer<typeof Signature>;

/**
 * Where a pin came from: recorded by `image-factory check-upstream --write` from upstream's listing (the run's day
 * and the listing's URL), or `"unverified"`: written without reading any upstream listing, to be confirmed.
 */
export const PinProvenance = z.union([
  z.literal("unverified"),
  z.strictObject({
    recordedBy: z.literal("check-upstream --write"),
    date: isoDate,
    listing: z.url({ protocol: /^https$/ }),
  }),
]);
export type PinProvenance = z.infer<typeof PinProvenance>;

/** The pinned upstream build of one architecture: changing it is the reviewable "new upstream build" trigger. */
export const Pin = z.strictObject({
  /** Upstream's build serial (the dated directory or version in the URL). */
  serial: z.string().regex(/^[A-Za-z0-9._-]+$/, "expected upstream's build serial, e.g. 20261110"),
  /**
   * The image's checksum as published in the checksum file (algorithm per `checksumFormat`). When absent, the
   * signed checksum file of the pinned serial is authoritative; `image-factory check-upstream --write` records it.
   */
  checksum: z
    .string()
    .regex(/^([0-9a-f]{64}|[0-9a-f]{128})$/, "expected a sha256 or sha512 hex digest")
    .optional(),
  provenance: PinProvenance,
});
export type Pin = z.infer<typeof Pin>;

/**
 * The format of every upstream image: the distributions' official QCOW2 cloud images. Fetch refuses a file of any
 * other format, or a QCOW2 that names a file outside itself, before any tool opens it.
 */
export const UPSTREAM_FORMAT = "qcow2";

export const Upstream = z.strictObject({
  /** The official QCOW2 cloud image. Also the SCS `image_source` (SCS-0104 checks its form). */
  image: urlTemplate,
  /** The checksum file that lists `image`. */
  checksums: urlTemplate,
  checksumFormat: ChecksumFormat,
  signature: Signature.optional(),
  /** How upstream spells each architecture in its URLs (`amd64`, `x86_64`, `aarch64`, …). */
  archNames: z.partialRecord(Architecture, z.string().min(1)),
  /** The pinned build, per architecture this release ships for. */
  pins: z.partialRecord(Architecture, Pin),
});
export type Upstream = z.infer<typeof Upstream>;

/** Package manager family of the guest: decides how recipe steps are carried out. */
export const Family = z.enum(["debian", "rhel", "arch"]);
export type Family = z.infer<typeof Family>;

const packageName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9.+_:-]*$/, "expected a package name");
const guestPath = z.string().regex(/^\/[^\0]*$/, "expected an absolute path in the guest");

/** One declared customisation step. The build CLI turns each into libguestfs operations. */
export const Step = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("install"), packages: z.array(packageName).min(1) }),
  z.strictObject({ op: z.literal("remove"), packages: z.array(packageName).min(1) }),
  /**
   * Install or upgrade the kernel meta package to the newest the guest's repositories carry. `{arch}` in the
   * name is replaced with upstream's architecture name (Debian's `linux-image-cloud-{arch}`).
   */
  z.strictObject({ op: z.literal("upgrade-kernel"), package: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9.+_{}-]*$/) }),
  z.strictObject({ op: z.literal("upgrade-cloud-init") }),
  /** Add Scaleway's repository and its scaleway-ecosystem package (helpers, metadata, SSH host key publication). */
  z.strictObject({ op: z.literal("scaleway-ecosystem") }),
  z.strictObject({
    op: z.literal("write-file"),
    path: guestPath,
    content: z.string(),
    mode: z
      .string()
      .regex(/^0[0-7]{3}$/)
      .default("0644"),
  }),
  /** A shell command run inside the guest (chroot, never booted). */
  z.strictObject({ op: z.literal("run"), command: z.string().min(1) }),
  z.strictObject({ op: z.literal("enable-service"), name: z.string().regex(/^[a-zA-Z0-9@._-]+$/) }),
  /**
   * Download a file on the build host (through the stack's mirror, like upstream images), verify it against the
   * pinned digest and copy it into the guest. Pin the digest upstream publishes: WordPress publishes sha1.
   */
  z
    .strictObject({
      op: z.literal("fetch-file"),
      url: z.url({ protocol: /^https$/, error: "expected an https:// URL" }),
      sha256: hex(256).optional(),
      sha1: z
        .string()
        .regex(/^[0-9a-f]{40}$/, "expected 40 lowercase hex digits (sha1)")
        .optional(),
      path: guestPath,
    })
    .refine((s) => (s.sha256 === undefined) !== (s.sha1 === undefined), {
      message: "pin exactly one of sha256 or sha1",
      path: ["sha256"],
    }),
  z.strictObject({ op: z.literal("selinux-relabel") }),
  /** Make the image boot with UEFI: add an EFI system partition and a removable-path bootloader when missing. */
  z.strictObject({ op: z.literal("ensure-uefi") }),
]);
export type Step = z.infer<typeof Step>;

export const REPLACE_FREQUENCIES = [
  "yearly",
  "quarterly",
  "monthly",
  "weekly",
  "daily",
  "critical_bug",
  "never",
] as const;
export const OS_PURPOSES = ["generic", "minimal", "k8snode", "gpu", "network", "custom"] as const;

/** The SCS-0102 keys a release declares; the rest (`architecture`, `os_distro`, …) derive from the release. */
export const ScsDeclared = z.strictObject({
  os_purpose: z.enum(OS_PURPOSES),
  image_original_user: z.string().regex(/^[a-z_][a-z0-9_-]*$/),
  image_description: z.string().min(1).optional(),
  replace_frequency: z.enum(REPLACE_FREQUENCIES),
  /** How long an image's UUID stays valid after a newer one replaces it: `last-N`, a date, `none`, `notice`, `forever`. */
  uuid_validity: z.string().regex(/^(none|notice|forever|last-[1-9][0-9]*|\d{4}-\d{2}-\d{2})$/),
  hw_disk_bus: z.enum(["virtio", "scsi", "sata", "ide"]),
  /** GiB. */
  min_disk: z.number().int().positive(),
  /** MiB. */
  min_ram: z.number().int().positive(),
  hash_algo: z.enum(["sha256", "sha512"]),
});
export type ScsDeclared = z.infer<typeof ScsDeclared>;

const releaseCommon = {
  /** Stable id, never renamed once shipped: it names stacks' resources (`ubuntu-24.04`). */
  id: z.string().regex(/^[a-z][a-z0-9]*(-[a-z0-9.]+)+$/, "expected a stable id such as ubuntu-24.04"),
  /** Scaleway-style image label (`ubuntu_noble`), what users pass as `image` when creating an Instance. */
  label: z.string().regex(/^[a-z][a-z0-9_]*$/, "expected a label such as ubuntu_noble"),
  /** Human title, the Instance image's display name prefix. */
  title: z.string().min(1),
  released: isoDate,
  /** Upstream end of life; the image is deprecated after it plus the stack's grace period. `null`: rolling. */
  eol: isoDate.nullable(),
  architectures: z.array(Architecture).min(1),
  scs: ScsDeclared,
  recipe: z.array(Step),
};

/** An operating system release built from an official upstream cloud image. */
export const OsRelease = z.strictObject({
  kind: z.literal("os"),
  ...releaseCommon,
  /** SCS `os_distro` (lowercase, as in OpenStack: ubuntu, debian, almalinux, rocky, centos, arch). */
  distro: z.string().regex(/^[a-z]+$/),
  /** SCS `os_version`. */
  version: z.string().regex(/^[0-9a-z.]+$/),
  codename: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .optional(),
  family: Family,
  upstream: Upstream,
});
export type OsRelease = z.infer<typeof OsRelease>;

/** An InstantApp: an OS release's recipe plus the app's steps; its artifact hash covers both. */
export const AppRelease = z.strictObject({
  kind: z.literal("app"),
  ...releaseCommon,
  /** The id of the OS release this app layers on. */
  base: z.string(),
});
export type AppRelease = z.infer<typeof AppRelease>;

export const Release = z.discriminatedUnion("kind", [OsRelease, AppRelease]);
export type Release = z.infer<typeof Release>;

/** One catalog file: a distribution family or an app, with its releases. */
export const CatalogFile = z.array(Release).min(1);
