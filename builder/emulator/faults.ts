/**
 * Faults on demand, for tests only: the emulator is never started by a production code path, and a fault exists
 * only when a test adds one through `Emulator.faults` (or the `faults` option). Each names an operation as
 * `<METHOD> /<api>/<path template>`, the zone or region prefix left out: `POST /instance/servers/{id}/action`,
 * `POST /block/snapshots/import-from-object-storage`, `GET /instance/images`.
 */
import { z } from "zod";
import { ApiError } from "./errors";

export const Fault = z
  .discriminatedUnion("kind", [
    // Answered before the handler runs: the request changes nothing.
    z.object({ kind: z.literal("throttle"), op: z.string(), retryAfterSeconds: z.number().int().min(0).default(1) }),
    z.object({
      kind: z.literal("server-error"),
      op: z.string(),
      status: z.union([z.literal(500), z.literal(502), z.literal(503), z.literal(504)]).default(503),
    }),
    // The request is carried out, then its answer is lost: a 5xx instead, as from a proxy that lost the backend.
    z.object({
      kind: z.literal("lost-answer"),
      op: z.string(),
      status: z.union([z.literal(500), z.literal(502), z.literal(503), z.literal(504)]).default(502),
    }),
    // Scaleway's TransientStateError: the resource is busy in another transition.
    z.object({ kind: z.literal("conflict"), op: z.string() }),
    // The request is accepted; the transition it starts stays in its transient state (`creating`, `starting`) this long.
    z.object({ kind: z.literal("slow"), op: z.string(), holdMs: z.number().int().min(0) }),
    // The request is accepted; the transition it starts ends in `error` (snapshot, image) or a failed task (action).
    z.object({ kind: z.literal("fail"), op: z.string() }),
  ])
  .and(
    z.object({
      /** Only requests whose JSON body has these values (`{ action: "poweron" }`). */
      when: z.record(z.string(), z.string()).optional(),
      /** How many matching requests it hits; unset: every one. */
      times: z.number().int().min(1).optional(),
    }),
  );
export type Fault = z.input<typeof Fault>;
type Parsed = z.output<typeof Fault>;

/** What a faulted transition does instead of its normal course. */
export interface TransitionFault {
  holdMs: number;
  fail: boolean;
}

export interface FaultBook {
  add(f: Fault): void;
  clear(): void;
  /** Faults that hit, in order, for a test to assert that its fault really happened. */
  readonly hits: { op: string; kind: string }[];
  /** The error a request fault answers with, if one matches. */
  request(op: string, body: Record<string, unknown>): ApiError | undefined;
  /** The error that replaces the answer of a request the handler carried out, if a lost-answer fault matches. */
  answer(op: string, body: Record<string, unknown>): ApiError | undefined;
  /** A transition fault for a request the handler accepted, if one matches. */
  transition(op: string, body: Record<string, unknown>): TransitionFault | undefined;
}

const REQUEST_KINDS = new Set(["throttle", "server-error", "conflict"]);
const TRANSITION_KINDS = new Set(["slow", "fail"]);

/** The operation name of a route pattern: its zone or region prefix replaced by the API's name. */
export const operationOf = (method: string, pattern: string): string =>
  `${method} ${pattern.replace(/^\/(instance|block)\/v1\/zones\/[^/]+/, "/$1").replace(/^\/vpc\/v2\/regions\/[^/]+/, "/vpc")}`;

export function createFaultBook(initial: Fault[] = []): FaultBook {
  let faults: Parsed[] = [];
  const hits: { op: string; kind: string }[] = [];
  const take = (op: string, body: Record<string, unknown>, kinds: (k: string) => boolean): Parsed | undefined => {
    const f = faults.find(
      (x) => x.op === op && kinds(x.kind) && Object.entries(x.when ?? {}).every(([k, v]) => body[k] === v),
    );
    if (!f) return undefined;
    if (f.times !== undefined && --f.times === 0) faults = faults.filter((x) => x !== f);
    hits.push({ op, kind: f.kind });
    return f;
  };
  const book: FaultBook = {
    add: (f) => void faults.push(Fault.parse(f)),
    clear: () => void (faults = []),
    hits,
    request(op, body) {
      const f = take(op, body, (k) => REQUEST_KINDS.has(k));
      if (!f) return undefined;
      if (f.kind === "throttle") {
        // The SDKs' TooManyRequestsError body; Retry-After as HTTP says (RFC 9110, 10.2.3).
        return new ApiError(
          429,
          {
            type: "too_many_requests",
            message: "too many requests",
            help_message: `injected fault on ${op}`,
            reset_seconds: f.retryAfterSeconds,
          },
          { "retry-after": String(f.retryAfterSeconds) },
        );
      }
      if (f.kind === "server-error")
        return new ApiError(f.status, { type: "internal_error", message: `injected ${f.status} on ${op}` });
      return new ApiError(409, {
        type: "transient_state",
        message: `injected conflict on ${op}`,
        resource: "instance_server",
        resource_id: "injected",
        current_state: "busy",
      });
    },
    answer(op, body) {
      const f = take(op, body, (k) => k === "lost-answer");
      if (f?.kind !== "lost-answer") return undefined;
      return new ApiError(f.status, {
        type: "internal_error",
        message: `injected ${f.status}: ${op} was carried out, its answer lost`,
      });
    },
    transition(op, body) {
      const f = take(op, body, (k) => TRANSITION_KINDS.has(k));
      if (!f) return undefined;
      return f.kind === "slow" ? { holdMs: f.holdMs, fail: false } : { holdMs: 0, fail: true };
    },
  };
  for (const f of initial) book.add(f);
  return book;
}

/** Runs a transition fault inside the background work it hits: holds it, then fails it if asked. */
export async function undergo(tf: TransitionFault | undefined, what: string): Promise<void> {
  if (!tf) return;
  if (tf.holdMs) await new Promise((r) => setTimeout(r, tf.holdMs));
  if (tf.fail) throw new Error(`injected failure of ${what}`);
}
