/**
 * Pure helpers for replaying recorded Scaleway API traffic against the emulator: JSON shape comparison (field names
 * and JSON types, recursively, values free to differ), learning which emulated id stands for which recorded id, and
 * rewriting recorded requests with those ids. No I/O here: the conformance test drives them.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const WHOLE_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const kind = (v: unknown): string => (v === null || v === undefined ? "null" : Array.isArray(v) ? "array" : typeof v);

/** A key that names an entry rather than a field: volume slots ("0"), ids, commercial types ("DEV1-S", "VC1L"). */
const entryKey = (k: string) => /^\d+$/.test(k) || WHOLE_UUID.test(k) || /^[A-Z0-9][A-Z0-9_-]*$/.test(k);
const isMap = (o: Record<string, unknown>) => Object.keys(o).length > 0 && Object.keys(o).every(entryKey);

/**
 * Where the emulated body's shape differs from the recorded one: a field missing or added, or another JSON type.
 * `null` on either side matches any type (a nullable field whose value differs, like `last_detached_at`). Arrays
 * compare each emulated element with the recorded element at the same index (or the last one); maps keyed by entry
 * (`volumes: {"0": …}`, products by commercial type) compare each emulated entry with the recorded entry of the
 * same key, or the first one.
 */
export function shapeDiff(recorded: unknown, emulated: unknown, path = "$"): string[] {
  const kr = kind(recorded);
  const ke = kind(emulated);
  if (kr === "null" || ke === "null") return [];
  if (kr !== ke) return [`${path}: ${kr} recorded, ${ke} emulated`];
  if (kr === "array") {
    const r = recorded as unknown[];
    const e = emulated as unknown[];
    if (!r.length || !e.length) return [];
    return e.flatMap((item, i) => shapeDiff(r[Math.min(i, r.length - 1)], item, `${path}[${i}]`));
  }
  if (kr !== "object") return [];
  const r = recorded as Record<string, unknown>;
  const e = emulated as Record<string, unknown>;
  const rMap = isMap(r);
  const eMap = isMap(e);
  if ((rMap || !Object.keys(r).length) && (eMap || !Object.keys(e).length)) {
    const first = Object.values(r)[0];
    if (first === undefined) return [];
    return Object.entries(e).flatMap(([k, v]) => shapeDiff(k in r ? r[k] : first, v, `${path}.${k}`));
  }
  const out: string[] = [];
  for (const k of Object.keys(r)) if (!(k in e)) out.push(`${path}.${k}: missing`);
  for (const k of Object.keys(e)) if (!(k in r)) out.push(`${path}.${k}: not in the recording`);
  for (const k of Object.keys(r)) if (k in e) out.push(...shapeDiff(r[k], e[k], `${path}.${k}`));
  return out;
}

/**
 * Records, in `ids`, which emulated id answers for which recorded id: wherever both bodies hold a UUID at the same
 * place. A recorded id already known keeps its first pairing.
 */
export function learnIds(recorded: unknown, emulated: unknown, ids: Map<string, string>): void {
  if (typeof recorded === "string" && typeof emulated === "string") {
    if (WHOLE_UUID.test(recorded) && WHOLE_UUID.test(emulated) && !ids.has(recorded)) ids.set(recorded, emulated);
    return;
  }
  if (Array.isArray(recorded) && Array.isArray(emulated)) {
    recorded.forEach((r, i) => i < emulated.length && learnIds(r, emulated[i], ids));
    return;
  }
  if (kind(recorded) === "object" && kind(emulated) === "object") {
    const e = emulated as Record<string, unknown>;
    for (const [k, v] of Object.entries(recorded as Record<string, unknown>)) if (k in e) learnIds(v, e[k], ids);
  }
}

/** A shapeDiff path with entries generalised: `$.server.volumes.0.id` → `$.server.volumes.*.id`, `[3]` → `[]`. */
export function generalPath(path: string): string {
  return path
    .replace(/\[\d+\]/g, "[]")
    .split(".")
    .map((seg, i) => (i > 0 && entryKey(seg) ? "*" : seg))
    .join(".");
}

/** Every field path of a JSON value, generalised as `generalPath` does. */
export function fieldPaths(value: unknown, path = "$", out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => fieldPaths(v, `${path}[]`, out));
  else if (kind(value) === "object")
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const p = `${path}.${entryKey(k) ? "*" : k}`;
      out.add(p);
      fieldPaths(v, p, out);
    }
  return out;
}

/**
 * What all the recorded answers of one endpoint say about its fields: `seen` in at least one, `always` in every
 * one. The API grew fields between recordings (`kms_key_id` is in the newer ones only) and omits some at times
 * (`admin_password_encryption_ssh_key_id`): a field some answer lacks may be missing, one some answer has may be
 * present.
 */
export interface EndpointFields {
  seen: Set<string>;
  always: Set<string>;
}

export function addAnswer(fields: EndpointFields | undefined, body: unknown): EndpointFields {
  const paths = fieldPaths(body);
  if (!fields) return { seen: new Set(paths), always: new Set(paths) };
  for (const p of paths) fields.seen.add(p);
  for (const p of [...fields.always]) if (!paths.has(p)) fields.always.delete(p);
  return fields;
}

/** The differences `fields` does not explain: a field missing that every answer has, or one added that none has. */
export function unexplained(diffs: string[], fields: EndpointFields | undefined): string[] {
  if (!fields) return diffs;
  return diffs.filter((d) => {
    const m = /^(.*): (missing|not in the recording)$/.exec(d);
    if (!m) return true;
    const p = generalPath(m[1]!);
    return m[2] === "missing" ? fields.always.has(p) : !fields.seen.has(p);
  });
}

/** The text with every recorded id the emulator has answered for replaced by the emulated one. */
export function substituteIds(text: string, ids: Map<string, string>): string {
  return text.replace(UUID, (id) => ids.get(id) ?? id);
}

/** The ids a text mentions. */
export function idsIn(text: string): string[] {
  return text.match(UUID) ?? [];
}

/** Every `state`/`status` in a body, by path: what polling waits on. */
export function statesOf(body: unknown, path = "$", out: Record<string, string> = {}): Record<string, string> {
  if (Array.isArray(body)) body.forEach((v, i) => statesOf(v, `${path}[${i}]`, out));
  else if (kind(body) === "object")
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      if ((k === "state" || k === "status") && typeof v === "string") out[`${path}.${k}`] = v;
      else statesOf(v, `${path}.${k}`, out);
    }
  return out;
}

/** States a resource passes through on its way somewhere: a recording may catch one that the emulator has left. */
export const TRANSIENT_STATES = new Set([
  "creating",
  "starting",
  "stopping",
  "exporting",
  "pending",
  "syncing",
  "snapshotting",
  "updating",
  "resizing",
  "deleting",
  "attaching",
  "detaching",
]);

/**
 * The payload of an `aws-chunked` upload body (`<hex size>[;chunk-signature=…]\r\n<data>\r\n … 0\r\n\r\n`), as the
 * AWS SDKs send a PutObject with a streamed checksum; a body that is not chunked comes back as it is.
 */
export function decodeAwsChunked(body: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    const eol = indexOfCrlf(body, at);
    if (eol < 0) return body;
    const header = Buffer.from(body.subarray(at, eol)).toString("latin1");
    const m = /^([0-9a-fA-F]+)(;.*)?$/.exec(header);
    if (!m) return body;
    const size = parseInt(m[1]!, 16);
    if (size === 0) break;
    const start = eol + 2;
    if (start + size > body.length) return body;
    parts.push(body.subarray(start, start + size));
    at = start + size + 2;
  }
  return Buffer.concat(parts);
}

function indexOfCrlf(b: Uint8Array, from: number): number {
  for (let i = from; i + 1 < b.length && i < from + 200; i++) if (b[i] === 13 && b[i + 1] === 10) return i;
  return -1;
}
