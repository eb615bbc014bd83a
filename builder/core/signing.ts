/**
 * The factory's release signatures: DSSE envelopes (the envelope in-toto attestations and Sigstore bundles use)
 * signed with an Ed25519 key through Node's own crypto. Offline, no tool to install, and a standard format that
 * other verifiers read. Keys are PEM: PKCS#8 for the secret part (the stack's `releaseKey`), SPKI for the public
 * part an operator verifies with. The key id is the sha256 of the public key's DER, so it names the key exactly.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { sha256Hex } from "./canonical";

/** The payload type of an in-toto Statement in a DSSE envelope. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

export const Envelope = z.strictObject({
  payloadType: z.string().min(1),
  payload: z.base64(),
  signatures: z.array(z.strictObject({ keyid: z.string(), sig: z.base64() })).min(1),
});
export type Envelope = z.infer<typeof Envelope>;

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

/** DSSE's pre-authentication encoding: what is actually signed (type and body, both length-prefixed). */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** An Ed25519 secret key from its PKCS#8 PEM; anything else is refused, naming `what`. */
export function releasePrivateKey(pem: string, what = "release key"): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new SignatureError(`${what}: not a PEM private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw new SignatureError(`${what}: an ${key.asymmetricKeyType} key, expected ed25519`);
  return key;
}

/** An Ed25519 public key from its SPKI PEM (or derived from a secret key's PEM). */
export function releasePublicKey(pem: string, what = "release public key"): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new SignatureError(`${what}: not a PEM public key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw new SignatureError(`${what}: an ${key.asymmetricKeyType} key, expected ed25519`);
  return key;
}

export function publicKeyPem(key: KeyObject): string {
  return (key.type === "private" ? createPublicKey(key) : key).export({ type: "spki", format: "pem" }).toString();
}

/** `sha256:<hex of the SPKI DER>`. */
export function keyId(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return `sha256:${sha256Hex(pub.export({ type: "spki", format: "der" }))}`;
}

export function signEnvelope(payload: Buffer, payloadType: string, key: KeyObject): Envelope {
  const sig = sign(null, pae(payloadType, payload), key);
  return {
    payloadType,
    payload: payload.toString("base64"),
    signatures: [{ keyid: keyId(key), sig: sig.toString("base64") }],
  };
}

/**
 * The payload of an envelope that `key` signed, or a SignatureError naming `what`: unparseable envelope, another
 * payload type, no signature by this key, or a signature that does not verify.
 */
export function openEnvelope(text: string, key: KeyObject, payloadType: string, what: string): Buffer {
  let envelope: Envelope;
  try {
    envelope = Envelope.parse(JSON.parse(text));
  } catch (err) {
    throw new SignatureError(`${what}: not a DSSE envelope (${(err as Error).message.split("\n")[0]})`);
  }
  if (envelope.payloadType !== payloadType)
    throw new SignatureError(`${what}: payload type ${envelope.payloadType}, expected ${payloadType}`);
  const id = keyId(key);
  const mine = envelope.signatures.filter((s) => s.keyid === id);
  if (!mine.length)
    throw new SignatureError(
      `${what}: not signed by the release key ${id} (signed by ${envelope.signatures.map((s) => s.keyid).join(", ")})`,
    );
  const payload = Buffer.from(envelope.payload, "base64");
  const message = pae(envelope.payloadType, payload);
  if (!mine.some((s) => verify(null, message, key, Buffer.from(s.sig, "base64"))))
    throw new SignatureError(
      `${what}: the signature by ${id} does not verify: the envelope was altered or signed by another key`,
    );
  return payload;
}
