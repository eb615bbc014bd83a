/**
 * doctor's upstream checks: what the catalog says about the stack's pins and signing keys (images/trust.ts's
 * pinProblems: unverified pins, unverified key fingerprints, unsigned upstreams without a pinned checksum), and the
 * scaleway-ecosystem repository's transport and pinned key.
 */
import { pinProblems, withOverrides, type Catalog, type PinProblemKind } from "../../images";
import { isLoopback, type Finding } from "./doctor-checks";
import { planStack } from "../core/plan";
import { PROJECT, type StackSettings } from "../core/settings";

const FIX: Record<PinProblemKind, { check: string; fix: (release: string) => string }> = {
  "unverified-pin": {
    check: "pins",
    fix: (id) =>
      `image-factory check-upstream --release ${id} --write, on a machine that reaches the upstream; review the diff of images/pins.json`,
  },
  "no-pinned-checksum": {
    check: "pins",
    fix: (id) =>
      `image-factory check-upstream --release ${id} --write records the checksum; review the diff of images/pins.json`,
  },
  "unverified-signature": {
    check: "keys",
    fix: (id) => `pin ${id}'s signing key in images/: its fingerprint as upstream publishes it, and the key's URL`,
  },
};

/** The catalog's pin and key problems for what the stack builds, one finding each. */
export function pinFindings(catalog: Catalog, settings: StackSettings): Finding[] {
  const stackCatalog = withOverrides(catalog, settings);
  const selection = planStack(catalog, settings).map((p) => ({
    release: stackCatalog.byId.get(p.release.id)!,
    arch: p.arch,
  }));
  return pinProblems(stackCatalog, selection).map((p) => ({
    check: FIX[p.kind].check,
    problem: p.message,
    fix: FIX[p.kind].fix(p.release),
  }));
}

/** The scaleway-ecosystem repository is what every image installs from: https and a pinned key unless it is on this machine. */
export function ecosystemRepositoryFindings(
  settings: Pick<StackSettings, "ecosystemRepository" | "ecosystemKeyFingerprint">,
): Finding[] {
  const url = settings.ecosystemRepository;
  if (isLoopback(url)) return [];
  return [
    ...(url.startsWith("https://")
      ? []
      : [
          {
            check: "ecosystem",
            problem: `${PROJECT}:ecosystemRepository ${url} is not https`,
            fix: `serve the repository over https and set ${PROJECT}:ecosystemRepository to it`,
          },
        ]),
    ...(settings.ecosystemKeyFingerprint
      ? []
      : [
          {
            check: "ecosystem",
            problem: `${PROJECT}:ecosystemKeyFingerprint is not set: builds refuse ${url} without its pinned signing key`,
            fix: `pulumi config set ${PROJECT}:ecosystemKeyFingerprint <the 40-hex fingerprint of the key at ${url}/scaleway-ecosystem.asc>`,
          },
        ]),
  ];
}

/** Every upstream check of a stack. */
export function upstreamFindings(catalog: Catalog, settings: StackSettings): Finding[] {
  return [...pinFindings(catalog, settings), ...ecosystemRepositoryFindings(settings)];
}
