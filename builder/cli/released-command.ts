/** `released`: the image users should boot, looked up as they would: the newest `factory:status=released` one. */
import { loadCatalog } from "../../images";
import { register, UsageError, type Values } from "./registry";
import { API_CREDENTIALS, missingCredential } from "./release-commands";
import { releasedImage } from "../core/release-status";
import { liveFactoryImages, zoneClient } from "../release/retention-api";
import { ZONES } from "../core/zones";

const str = (v: Values, k: string) => (typeof v[k] === "string" ? v[k] : undefined);

register("released", {
  summary:
    "print the id of a release's released image in a zone: the newest factory:status=released, never a candidate",
  usage: "image-factory released --zone ZONE --release ID [--arch x86_64|arm64]",
  options: {
    zone: { type: "string", value: "ZONE", description: "the Availability Zone" },
    release: { type: "string", value: "ID", description: "the release id (debian-12)" },
    arch: { type: "string", value: "ARCH", default: "x86_64", description: "the architecture" },
  },
  environment: API_CREDENTIALS,
  async run(v) {
    const zone = str(v, "zone");
    if (!zone || !(ZONES as readonly string[]).includes(zone))
      throw new UsageError(`--zone: give a Scaleway Availability Zone (${ZONES.join(", ")})`);
    const release = str(v, "release");
    if (!release || !loadCatalog().byId.has(release))
      throw new UsageError(`--release: give a release id of the catalog (got "${release ?? ""}")`);
    const arch = str(v, "arch") ?? "x86_64";
    const image = releasedImage(await liveFactoryImages(zoneClient(zone, missingCredential), zone), release, arch);
    if (!image) {
      process.stderr.write(`released: no released image of ${release}/${arch} in ${zone} (candidates do not count)\n`);
      return 1;
    }
    process.stdout.write(`${image.id}\n`);
    return 0;
  },
});
