/**
 * What a real `pulumi preview --policy-pack` of a zone stack shows, without the engine: the program runs under
 * Pulumi mocks in preview mode (ids and the artifact Command's stdout unknown, as for resources being created),
 * and each resource's inputs, in the wire form the engine forwards, go through @pulumi/policy's own analyzer RPC
 * function (the one its analyzer server serves), with the pack's policies. A MANDATORY diagnostic fails the preview.
 */
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import * as analyzerproto from "@pulumi/pulumi/proto/analyzer_pb";
import type * as pulumi from "@pulumi/pulumi";
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../images";
import { IMAGE, SERVER, SNAPSHOT } from "../../policy/rules";
import { PACK_NAME, policies } from "../../policy/pack";
import { buildDateTag } from "../../components/tags";
import { runStack, UNKNOWN, type Registration } from "../support/program-run";
import { editedCatalog, settingsFor } from "./helpers";

// The analyzer's RPC handler, as its server registers it; internal to @pulumi/policy, hence the require.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- internals outside the package's exports map
const { makeAnalyzeRpcFun } = require("@pulumi/policy/server") as {
  makeAnalyzeRpcFun(
    name: string,
    version: string,
    level: string,
    policies: ResourceValidationPolicy[],
  ): (
    call: { request: analyzerproto.AnalyzeRequest },
    cb: (err: unknown, res?: analyzerproto.AnalyzeResponse) => void,
  ) => Promise<void>;
};
const STACK = "test-fr-par-2";
const analyze = makeAnalyzeRpcFun(PACK_NAME, "0.1.0", "advisory", policies);

interface Diagnostic {
  policy: string;
  level: "mandatory" | "advisory";
  message: string;
}

/** One Analyze call, as the engine makes it for a resource at preview. */
async function analyzeResource(r: Registration): Promise<Diagnostic[]> {
  const req = new analyzerproto.AnalyzeRequest();
  req.setType(r.type);
  req.setUrn(r.urn);
  req.setName(r.name);
  req.setProperties(r.struct);
  const options = new analyzerproto.AnalyzerResourceOptions();
  if (r.parent) options.setParent(r.parent);
  req.setOptions(options);
  const res = await new Promise<analyzerproto.AnalyzeResponse>((resolve, reject) => {
    void analyze({ request: req }, (err, out) => (err ? reject(err) : resolve(out!)));
  });
  return res.getDiagnosticsList().map((d) => ({
    policy: d.getPolicyname(),
    level: d.getEnforcementlevel() === analyzerproto.EnforcementLevel.MANDATORY ? "mandatory" : "advisory",
    // The analyzer puts the policy's description first, on its own line.
    message: d.getMessage().slice(d.getMessage().indexOf("\n") + 1),
  }));
}

/** The whole preview through the pack: every diagnostic, by resource name. */
async function previewWithPolicies(registered: Registration[]) {
  const out: Record<string, Diagnostic[]> = {};
  for (const r of registered.filter((x) => [IMAGE, SNAPSHOT, SERVER].includes(x.type)))
    out[r.name] = await analyzeResource(r);
  return out;
}
const mandatory = (d: Record<string, Diagnostic[]>) =>
  Object.entries(d).flatMap(([name, ds]) =>
    ds.filter((x) => x.level === "mandatory").map((x) => `${name}: ${x.policy}: ${x.message}`),
  );

const edited = editedCatalog;

describe("a preview of a zone stack", () => {
  it("knows every tag but the build date while the artifact is being built", async () => {
    const registered = await runStack(STACK, settingsFor({ images: ["debian-12"] }), { preview: true });
    const artifact = registered.find((r) => r.name === "debian-12-x86_64-artifact")!;
    expect(artifact.inputs.triggers).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
    for (const name of ["debian-12-x86_64-snapshot", "debian-12-x86_64-image"]) {
      const tags = registered.find((r) => r.name === name)!.inputs.tags as string[];
      expect(Array.isArray(tags), name).toBe(true);
      expect(
        tags.filter((t) => t === UNKNOWN),
        name,
      ).toHaveLength(1);
      expect(tags.indexOf(UNKNOWN), name).toBe(tags.length - 1); // last: the release's tags (the user's included) come from the plan
      expect(
        tags.filter((t) => t !== UNKNOWN).every((t) => /^(factory|scs):[a-z_-]+=./.test(t)),
        name,
      ).toBe(true);
    }
    // The image's root volume is the snapshot being created: unknown too, as in a real preview.
    expect(registered.find((r) => r.name === "debian-12-x86_64-image")!.inputs.rootVolumeId).toBe(UNKNOWN);
  });

  it("passes the policy pack for the whole catalog, with only the build date left to the update", async () => {
    const registered = await runStack(STACK, settingsFor({ images: ["*"] }), { preview: true });
    const diagnostics = await previewWithPolicies(registered);
    expect(Object.keys(diagnostics)).toHaveLength(3 * loadCatalog().releases.length);
    expect(mandatory(diagnostics)).toEqual([]);
    for (const [name, ds] of Object.entries(diagnostics)) {
      const expected = name.endsWith("-test-server") ? [] : [{ policy: "scs-image-build-date", level: "advisory" }];
      expect(
        ds.map(({ policy, level }) => ({ policy, level })),
        name,
      ).toEqual(expected);
    }
    const one = diagnostics["debian-12-x86_64-image"]![0]!.message;
    expect(one).toContain("can't run policy 'scs-image-build-date'");
    expect(one).toContain("during preview");
  });

  const dropTag =
    (prefix: string): pulumi.ResourceTransformation =>
    (args) =>
      [SNAPSHOT, IMAGE].includes(args.type)
        ? {
            props: {
              ...args.props,
              tags: (args.props.tags as unknown[]).filter((t) => typeof t !== "string" || !t.startsWith(prefix)),
            },
            opts: args.opts,
          }
        : undefined;

  it.each([
    {
      what: "a release with a made-up replace_frequency",
      catalog: edited("debian-12", (r) => ((r.scs as { replace_frequency: string }).replace_frequency = "sometimes")),
      expected: ["debian-12-x86_64-snapshot", "debian-12-x86_64-image"].map(
        (n) =>
          `${n}: scs-metadata-tags: replace_frequency "sometimes" is not one of yearly, quarterly, monthly, weekly, daily, critical_bug, never`,
      ),
    },
    {
      what: "images without their content-hash tag",
      transformations: [dropTag("factory:content-hash=")],
      expected: ["debian-12-x86_64-snapshot", "debian-12-x86_64-image"].map(
        (n) => `${n}: factory-provenance-tags: no factory:content-hash=<sha256> tag`,
      ),
    },
    {
      what: "images without their os_version tag",
      transformations: [dropTag("scs:os_version=")],
      expected: ["debian-12-x86_64-snapshot", "debian-12-x86_64-image"].map(
        (n) => `${n}: scs-metadata-tags: os_version is missing`,
      ),
    },
  ])("blocks $what although the artifact's outputs are unknown", async ({ catalog, transformations, expected }) => {
    const registered = await runStack(STACK, settingsFor({ images: ["debian-12"] }), {
      preview: true,
      catalog,
      transformations,
    });
    expect(registered.find((r) => r.name === "debian-12-x86_64-image")!.inputs.tags).toContain(UNKNOWN);
    expect(mandatory(await previewWithPolicies(registered))).toEqual(expected);
  });

  it("would only have warned while the tag list was one unknown value (why the tags are separate elements)", async () => {
    const registered = await runStack(STACK, settingsFor({ images: ["debian-12"] }), {
      preview: true,
      transformations: [dropTag("factory:content-hash=")],
    });
    const image = registered.find((r) => r.name === "debian-12-x86_64-image")!;
    const whole = {
      ...image,
      struct: Struct.fromJavaScript({ ...(image.inputs as Record<string, never>), tags: UNKNOWN }),
    };
    const ds = await analyzeResource(whole);
    expect(ds.filter((d) => d.level === "mandatory")).toEqual([]);
    expect(ds.map((d) => d.policy).sort()).toEqual([
      "factory-provenance-tags",
      "scs-image-build-date",
      "scs-metadata-tags",
    ]);
    expect(ds.every((d) => d.message.includes("can't be known during preview"))).toBe(true);
  });
});

describe("the build date tag", () => {
  it.each([
    { date: "2026-11-20", tag: "scs:image_build_date=2026-11-20" },
    {
      date: "",
      error:
        "debian-12-x86_64: image-factory publish reported no imageBuildDate, so scs:image_build_date cannot be set",
    },
  ])("from publish's date $date", ({ date, tag, error }) => {
    if (error) expect(() => buildDateTag(date, "debian-12-x86_64")).toThrow(error);
    else expect(buildDateTag(date, "debian-12-x86_64")).toBe(tag);
  });
});
