import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";

/**
 * Encryption at rest for secrets the engine must read back (webhook secrets, OAuth client
 * secrets and tokens): AES-256-GCM with a fresh random 12-byte IV per value and its 16-byte
 * authentication tag checked on every open. Pure: the key comes from the caller (key.ts).
 *
 * A sealed value is text: `v1.<iv>.<tag>.<ciphertext>`, each part base64url. `context` is bound
 * as additional authenticated data, so a value copied into another row (another workflow's
 * secret) does not open there.
 */

export const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = "v1";

/** A sealed value that does not open: damaged, tampered with, moved to another context, or sealed under another key. */
export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SealError";
  }
}

function checkKey(key: Buffer): void {
  if (key.length !== KEY_BYTES) throw new RangeError(`a secret key has ${KEY_BYTES} bytes, not ${key.length}`);
}

export function seal(key: Buffer, plaintext: string, context: string): string {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return [VERSION, iv, cipher.getAuthTag(), ciphertext].map((part) => (typeof part === "string" ? part : part.toString("base64url"))).join(".");
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function part(text: string, bytes: number | undefined, what: string): Buffer {
  if (!BASE64URL.test(text)) throw new SealError(`the sealed value's ${what} is not base64url`);
  const buffer = Buffer.from(text, "base64url");
  if (bytes !== undefined && buffer.length !== bytes) throw new SealError(`the sealed value's ${what} has ${buffer.length} bytes, not ${bytes}`);
  return buffer;
}

export function open(key: Buffer, sealed: string, context: string): string {
  checkKey(key);
  const parts = sealed.split(".");
  if (parts.length !== 4 || parts[0] !== VERSION) throw new SealError(`not a sealed value of format ${VERSION}`);
  const iv = part(parts[1]!, IV_BYTES, "IV");
  const tag = part(parts[2]!, TAG_BYTES, "tag");
  const ciphertext = part(parts[3]!, undefined, "ciphertext");
  const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(context, "utf8"));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("utf8");
  } catch {
    throw new SealError("the sealed value failed its authentication check: it was changed, belongs to another record, or was sealed under another key");
  }
}

/**
 * A one-way fingerprint of a key, stored beside the data so that starting with the wrong key is
 * a clear error at once rather than secrets that fail to open later. It reveals nothing of the key.
 */
export function keyFingerprint(key: Buffer): string {
  checkKey(key);
  return createHmac("sha256", key).update("bifrost secret key fingerprint v1").digest("hex");
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;

/** Reads a key written as 64 hex digits or as base64/base64url of 32 bytes; undefined when it is neither. */
export function parseKeyText(text: string): Buffer | undefined {
  const value = text.trim();
  if (HEX_KEY.test(value)) return Buffer.from(value, "hex");
  if (!BASE64_KEY.test(value)) return undefined;
  const key = Buffer.from(value.replaceAll("+", "-").replaceAll("/", "_").replace(/=$/, ""), "base64url");
  return key.length === KEY_BYTES ? key : undefined;
}

export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}
