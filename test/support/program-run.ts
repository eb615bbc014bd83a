/**
 * Runs a zone stack's program (index.ts's composition: zonalImages, then retention) under Pulumi mocks and
 * records every registration as the engine receives it: URN, parent, dependencies, options and the inputs in
 * their wire form (unknowns as Pulumi's unknown sentinel, secrets as secret envelopes). The mock monitor is
 * wrapped rather than the program instrumented, so what is recorded is what the language host would send.
 */
import * as pulumi from "@pulumi/pulumi";
import type { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { planStack } from "../../builder/core/plan";
import type { StackSettings } from "../../builder/core/settings";
import { retention, zonalImages } from "../../components/factory-stack";
import type { FactoryCredentials } from "../../components/zonal-image";
import { loadCatalog, type Catalog } from "../../images";

// Internal runtime functions (stripped from the typings): the monitor the mocks installed, and the drain of
// pending RPCs that `pulumi.runtime.disconnect` itself waits on — at preview no apply fires on unknown outputs,
// so waiting on an output would never end.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- internals outside the package's exports map
const runtimeSettings = require("@pulumi/pulumi/runtime/settings") as {
  getMonitor(): unknown;
  waitForRPCs(): Promise<void>;
};

/** Pulumi's wire sentinel for an unknown value (what a preview sends for a value not yet computed). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** Pulumi's wire signature key and the secret envelope's signature. */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface Registration {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  /** The parent's URN ("" for the stack's own children). */
  parent: string;
  /** URNs this resource depends on: dependsOn (components expanded to their children) and property dependencies. */
  dependencies: string[];
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  /** The URNs its `aliases` stand for: an old resource at one of them is this one, moved (not replaced). */
  aliases: string[];
  /** Inputs in wire form, as plain JSON. */
  inputs: Record<string, unknown>;
  /** The same inputs as the protobuf Struct, as the engine forwards them to an analyzer. */
  struct: Struct;
}

/** What a mocked provider answers for one registration. */
export type Answer = (r: Registration) => { id?: string; state: Record<string, unknown> };

/** The build date the mocked `publish` reports. */
export const BUILD_DATE = "2026-11-20";

/** An `up`: every resource exists afterwards, with a known id; `publish` prints its JSON result. */
export const upAnswer: Answer = (r) => ({
  id: r.custom ? `${String(r.inputs.zone ?? "fr-par-2")}/${r.name}-id` : undefined,
  state: {
    ...r.inputs,
    ...(r.name.endsWith("-artifact") ? { stdout: JSON.stringify({ imageBuildDate: BUILD_DATE }) } : {}),
  },
});

/** A preview of resources to create: inputs echo back, anything a provider computes (ids, stdout) is unknown. */
export const createAnswer: Answer = (r) => ({ state: r.inputs });

export const CREDENTIALS = {
  accessKey: "SCWXXXXXXXXXXXXXXXXX",
  secretKey: pulumi.secret("00000000-0000-0000-0000-000000000000"),
};

export interface RunOptions {
  preview: boolean;
  answer?: Answer;
  catalog?: Catalog;
  /** Applied to every resource the ZonalImages declare (to craft a violation). */
  transformations?: pulumi.ResourceTransformation[];
  /** Content hashes whose battery passed in an earlier `up` (the stack's `testedContentHashes` output). */
  passed?: Set<string>;
  /** The Commands' credentials (CREDENTIALS by default). */
  credentials?: FactoryCredentials;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getCustom(): boolean;
  getParent(): string;
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { forEach(f: (v: { getUrnsList(): string[] }, k: string) => void): void };
  getRetainondelete(): boolean | undefined;
  getDeletebeforereplace(): boolean;
  getAliasesList(): AliasRequest[];
  getObject(): Struct | undefined;
}
/** An alias as the SDK sends it to a monitor that takes alias specs (the mock monitor does). */
interface AliasRequest {
  getUrn(): string;
  getSpec():
    | {
        getName(): string;
        getType(): string;
        getStack(): string;
        getProject(): string;
        getParenturn(): string;
        getNoparent(): boolean;
      }
    | undefined;
}
interface Monitor {
  newUrn(parent: string, type: string, name: string): string;
  registerResource(req: RegisterRequest, callback: unknown): Promise<void>;
}

/** Runs the stack's program once and returns its registrations in the order the engine would see them. */
export async function runStack(stack: string, settings: StackSettings, opts: RunOptions): Promise<Registration[]> {
  const registered: Registration[] = [];
  const byUrn = new Map<string, Registration>();
  const answer = opts.answer ?? (opts.preview ? createAnswer : upAnswer);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const r = registered.find((x) => x.name === args.name && x.type === args.type && !("answered" in x));
        if (!r) throw new Error(`registration of ${args.type} ${args.name} was not recorded`);
        Object.defineProperty(r, "answered", { value: true });
        const { id, state } = answer(r);
        return { id: id ?? "", state };
      },
      call: (args) => {
        throw new Error(`unmocked provider call ${args.token}`);
      },
    },
    "image-factory",
    stack,
    opts.preview,
  );
  const monitor = runtimeSettings.getMonitor() as Monitor;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    const struct = req.getObject()!;
    const dependencies = new Set(req.getDependenciesList());
    req.getPropertydependenciesMap().forEach((v) => v.getUrnsList().forEach((u) => dependencies.add(u)));
    const aliasUrn = (a: AliasRequest): string => {
      const spec = a.getSpec();
      if (!spec) return a.getUrn();
      if (spec.getStack() || spec.getProject())
        throw new Error(`${req.getName()}: aliases to another stack or project are not simulated`);
      const parent = spec.getNoparent() ? "" : spec.getParenturn() || req.getParent();
      return monitor.newUrn(parent, spec.getType() || req.getType(), spec.getName() || req.getName());
    };
    const r: Registration = {
      urn: monitor.newUrn(req.getParent(), req.getType(), req.getName()),
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      parent: req.getParent(),
      dependencies: [...dependencies],
      retainOnDelete: req.getRetainondelete() === true,
      deleteBeforeReplace: req.getDeletebeforereplace(),
      aliases: req.getAliasesList().map(aliasUrn),
      inputs: struct.toJavaScript() as Record<string, unknown>,
      struct,
    };
    if (byUrn.has(r.urn)) throw new Error(`${r.urn} registered twice`);
    byUrn.set(r.urn, r);
    registered.push(r);
    return register(req, callback);
  };

  const plans = planStack(opts.catalog ?? loadCatalog(), settings);
  const images = zonalImages(
    plans,
    settings,
    opts.credentials ?? CREDENTIALS,
    opts.transformations ? { transformations: opts.transformations } : undefined,
    opts.passed,
  );
  retention(plans, settings, opts.credentials ?? CREDENTIALS, images);
  await runtimeSettings.waitForRPCs();
  return registered;
}

/** A wire value with secrets unwrapped: what a rule or a diff reads. */
export function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SIG_KEY] === SECRET_SIG) return plain(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}
