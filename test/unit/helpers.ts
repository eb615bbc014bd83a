import { loadCatalog, type Catalog, type OsRelease } from "../../images";
import { parseStackSettings, PROJECT, type StackSettings } from "../../builder/core/settings";

/** Settings as a stack file would give them, with overrides; values in Pulumi's string form. */
export function settingsFor(overrides: Record<string, unknown> = {}, stack = "test-fr-par-2"): StackSettings {
  const base: Record<string, unknown> = {
    environment: "test",
    zone: "fr-par-2",
    images: ["ubuntu-24.04", "debian-12"],
    bucket: "scw-image-factory-fr-par",
    releaseEpoch: "2026Q4",
    ecosystemVersion: "1.0.0",
    ecosystemRepository: "https://packages.example.org/scaleway",
    ...overrides,
  };
  const config = Object.fromEntries(
    Object.entries(base).map(([k, v]) => [`${PROJECT}:${k}`, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  return parseStackSettings(stack, config, loadCatalog());
}

/** The catalog with one OS release changed (a new pin, a recipe step): what a pull request would edit. */
export function editedCatalog(id: string, change: (r: OsRelease) => void): Catalog {
  const base = loadCatalog();
  const copy = structuredClone(base.byId.get(id)) as OsRelease;
  change(copy);
  const releases = base.releases.map((r) => (r.id === id ? copy : r));
  return { releases, byId: new Map(releases.map((r) => [r.id, r])) };
}

/** The artifact Command's own Object Storage key, as a stack file holds it (the secret encrypted), for a remote host. */
export const OBJECT_STORAGE_KEY = {
  objectStorageAccessKey: "SCWOBJECTSTORAGEONLY",
  objectStorageSecretKey: { secure: "v1:placeholder" },
};

/**
 * An arm64 SSH build host for programs run under mocks, never dialled: a documentation address (RFC 5737), and a
 * host key and private key that are placeholders (the key's bytes spell "placeholder, not a host key").
 */
export const ARM64_BUILD_HOST = {
  buildHosts: [
    "x86_64 local",
    "arm64 builder@192.0.2.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBsYWNlaG9sZGVyLCBub3QgYSBob3N0IGtleS4uLi4u",
  ],
  buildHostPrivateKey:
    "-----BEGIN OPENSSH PRIVATE KEY-----\nplaceholder for programs under mocks, not a key\n-----END OPENSSH PRIVATE KEY-----\n",
  // A remote host never gets the Scaleway API key.
  ...OBJECT_STORAGE_KEY,
};
