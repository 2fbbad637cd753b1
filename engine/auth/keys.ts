import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The API key format: `bfk_<id>_<secret>`, e.g. `bfk_key_3f9c0a1b2c3d4e5f_<43 characters>`.
 * The id (`key_` + 16 hex digits) is public: it names the key in `bifrost keys list` and lets the
 * server find the one row to compare with, so a lookup never scans hashes. The secret is 256
 * random bits (base64url). Only SHA-256 of the whole key is stored: a fast hash is enough for
 * secrets this long, which no one can guess or brute-force from the hash.
 */

export const KEY_PREFIX = "bfk_";
const ID_HEX = 16;
const SECRET_BYTES = 32;
/** base64url of 32 bytes, without padding. */
const SECRET_CHARS = 43;
export const KEY_LENGTH = KEY_PREFIX.length + "key_".length + ID_HEX + 1 + SECRET_CHARS;

const ID_PATTERN = /^key_[0-9a-f]{16}$/;
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface ParsedKey {
  id: string;
  secret: string;
}

export interface GeneratedKey extends ParsedKey {
  /** The whole key, shown to its owner once. */
  key: string;
  hash: string;
}

export function isKeyId(value: string): boolean {
  return value.length === 4 + ID_HEX && ID_PATTERN.test(value);
}

export function generateKey(): GeneratedKey {
  const id = `key_${randomBytes(ID_HEX / 2).toString("hex")}`;
  const secret = randomBytes(SECRET_BYTES).toString("base64url");
  const key = `${KEY_PREFIX}${id}_${secret}`;
  return { id, secret, key, hash: hashKey(key) };
}

/** Splits a presented key into id and secret; undefined when it is not in the format at all. */
export function parseKey(text: string): ParsedKey | undefined {
  // The id has a fixed length, so the "_" that may appear in the secret never confuses the split.
  if (text.length !== KEY_LENGTH || !text.startsWith(KEY_PREFIX)) return undefined;
  const id = text.slice(KEY_PREFIX.length, KEY_PREFIX.length + 4 + ID_HEX);
  const separator = text[KEY_PREFIX.length + 4 + ID_HEX];
  const secret = text.slice(KEY_PREFIX.length + 4 + ID_HEX + 1);
  if (separator !== "_" || !isKeyId(id) || !SECRET_PATTERN.test(secret)) return undefined;
  return { id, secret };
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** Compares a presented key with a stored hash in constant time (for hashes of the right length). */
export function keyMatches(key: string, storedHash: string): boolean {
  const presented = Buffer.from(hashKey(key), "hex");
  const stored = Buffer.from(storedHash, "hex");
  if (stored.length !== presented.length) return false;
  return timingSafeEqual(presented, stored);
}
