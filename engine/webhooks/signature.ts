import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Webhook signatures: `X-Bifrost-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with
 * the workflow's webhook secret (its UTF-8 text, as `openssl dgst -hmac` uses it). Pure.
 */

export const SIGNATURE_HEADER = "X-Bifrost-Signature";
const PREFIX = "sha256=";
const HEX_LENGTH = 64;
const SIGNATURE = /^sha256=[0-9a-fA-F]{64}$/;

export type SignatureCheck = { ok: true } | { ok: false; reason: "missing" | "garbled" | "mismatch" };

export function sign(secret: string, body: Buffer): string {
  return PREFIX + createHmac("sha256", secret).update(body).digest("hex");
}

/** Compares in constant time; a header that is not exactly `sha256=<64 hex digits>` is garbled. */
export function verifySignature(secret: string, body: Buffer, header: string | undefined): SignatureCheck {
  if (header === undefined || header === "") return { ok: false, reason: "missing" };
  // Length first: the pattern never sees a long header.
  if (header.length !== PREFIX.length + HEX_LENGTH || !SIGNATURE.test(header)) return { ok: false, reason: "garbled" };
  const given = Buffer.from(header.slice(PREFIX.length), "hex");
  const expected = createHmac("sha256", secret).update(body).digest();
  return timingSafeEqual(given, expected) ? { ok: true } : { ok: false, reason: "mismatch" };
}

/** A new webhook secret: 256 random bits; the prefix lets secret scanners recognise a leaked one. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64url")}`;
}
