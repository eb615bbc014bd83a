/**
 * The image factory's Pulumi program: one stack per environment and Availability Zone. Composition only — the
 * catalog, the planner and the components do the work.
 */
import * as pulumi from "@pulumi/pulumi";
import { assertBuilt } from "./builder/build-stamp";
import { projectRoot } from "./builder/system/paths";
import { planStack } from "./builder/core/plan";
import { parseStackSettings } from "./builder/core/settings";
import { passedEarlier, retention, testedContentHashes, zonalImages } from "./components/factory-stack";
import { loadCatalog } from "./images";

/** The stack's outputs. An async entry point: it reads its own previous outputs before declaring anything. */
export = async () => {
  // The Commands run the compiled CLI: refuse to start with a missing or stale one rather than run old code.
  assertBuilt(projectRoot());

  const catalog = loadCatalog();
  const settings = parseStackSettings(pulumi.getStack(), pulumi.runtime.allConfig(), catalog);
  const plans = planStack(catalog, settings);

  // Object Storage uses the Scaleway API key pair, as the provider does: config first, then the environment.
  const scw = new pulumi.Config("scaleway");
  const accessKey = scw.get("accessKey") ?? process.env.SCW_ACCESS_KEY;
  const secretKey =
    scw.getSecret("secretKey") ?? (process.env.SCW_SECRET_KEY && pulumi.secret(process.env.SCW_SECRET_KEY));
  if (!accessKey || !secretKey) {
    throw new Error("set scaleway:accessKey and scaleway:secretKey (or SCW_ACCESS_KEY and SCW_SECRET_KEY)");
  }

  // What passed its battery in an earlier `up`: its test Instance is not declared again, so it leaves the zone.
  const self = new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`);
  const passed = passedEarlier((await self.getOutputDetails("testedContentHashes")).value);

  // The release key stays a secret Output from the stack file to the artifact Command's environment; so does the
  // artifact Command's own Object Storage key, when the stack gives it one.
  const factory = new pulumi.Config();
  const releaseKey = factory.getSecret("releaseKey");
  const objectStorageSecret = factory.getSecret("objectStorageSecretKey");
  const objectStorage =
    settings.objectStorageAccessKey && objectStorageSecret
      ? { accessKey: settings.objectStorageAccessKey, secretKey: objectStorageSecret }
      : undefined;
  const images = zonalImages(plans, settings, { accessKey, secretKey, releaseKey, objectStorage }, undefined, passed);
  retention(plans, settings, { accessKey, secretKey }, images);

  return {
    zone: settings.zone,
    releaseEpoch: settings.releaseEpoch,
    releasedImages: Object.fromEntries(images.map((img, i) => [plans[i]!.name, img.releasedImageId])),
    contentHashes: Object.fromEntries(plans.map((p) => [p.name, p.contentHash])),
    testedContentHashes: testedContentHashes(images),
  };
};
