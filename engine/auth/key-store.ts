import { BifrostError } from "../../common/errors.js";
import type { ApiKeyRecord, Storage } from "../../storage/types.js";
import { generateKey, hashKey, isKeyId, keyMatches, parseKey } from "./keys.js";
import { isOrg } from "./org.js";
import { isRole, type Role } from "./roles.js";

/** Creating, checking and revoking API keys over storage. The key itself leaves only in `CreatedKey`. */

export interface NewKeyInput {
  role: Role;
  org?: string | null;
  name?: string | null;
}

export interface CreatedKey {
  /** The whole key: shown to its owner once, never stored or logged. */
  key: string;
  record: ApiKeyRecord;
}

export type Authentication = { ok: true; key: ApiKeyRecord } | { ok: false; reason: "malformed" | "unknown" | "revoked"; keyId?: string };

export const MAX_NAME_LENGTH = 100;
/** How often a key's `lastUsedAt` is written: not on every request. */
export const TOUCH_INTERVAL_MS = 60_000;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Compared against when no key has the presented id, so a miss costs what a mismatch does. */
const ABSENT_HASH = hashKey("bfk_absent");

function defaultName(role: Role, org: string | null): string {
  return org === null ? `${role} key` : `${role} key for ${org}`;
}

export function validateKeyInput(input: NewKeyInput): { role: Role; org: string | null; name: string } {
  if (!isRole(input.role)) throw new BifrostError("VALIDATION_FAILED", `role ${JSON.stringify(String(input.role)).slice(0, 40)} is not one of admin, operator, viewer`, { fix: "Give the key the role admin, operator or viewer." });
  const org = input.org ?? null;
  if (org !== null && !isOrg(org)) {
    throw new BifrostError("VALIDATION_FAILED", `org ${JSON.stringify(org.slice(0, 140))} is invalid: use letters, digits, "_", ".", ":" or "-" (at most 128)`, { fix: "Name the org as runs name it: letters, digits, \"_\", \".\", \":\" or \"-\", at most 128." });
  }
  if (org !== null && input.role === "admin") {
    throw new BifrostError("VALIDATION_FAILED", "An admin key cannot be limited to an org: admin keys manage workflows and secrets that every org shares", {
      fix: "Create the admin key without an org, and operator or viewer keys for the org.",
    });
  }
  const name = input.name ?? defaultName(input.role, org);
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || CONTROL.test(name)) {
    throw new BifrostError("VALIDATION_FAILED", `A key's name must be 1 to ${MAX_NAME_LENGTH} characters without control characters`, { fix: `Give the key a shorter name (at most ${MAX_NAME_LENGTH} characters, one line).` });
  }
  return { role: input.role, org, name };
}

export async function createKey(storage: Storage, input: NewKeyInput, now: number): Promise<CreatedKey> {
  const { role, org, name } = validateKeyInput(input);
  const generated = generateKey();
  const record: ApiKeyRecord = { id: generated.id, name, role, org, hash: generated.hash, createdAt: now, lastUsedAt: null, revokedAt: null };
  await storage.keys.create(record);
  return { key: generated.key, record };
}

/** The admin key of a fresh engine: created only when the database holds no key at all. */
export async function createFirstAdminKey(storage: Storage, now: number): Promise<CreatedKey | undefined> {
  const generated = generateKey();
  const record: ApiKeyRecord = { id: generated.id, name: "first admin key (created at first start)", role: "admin", org: null, hash: generated.hash, createdAt: now, lastUsedAt: null, revokedAt: null };
  return (await storage.keys.createFirst(record)) ? { key: generated.key, record } : undefined;
}

/** Checks a presented key: found by its id, its hash compared in constant time, not revoked. */
export async function authenticate(storage: Storage, presented: string): Promise<Authentication> {
  const parsed = parseKey(presented);
  if (!parsed) return { ok: false, reason: "malformed" };
  const record = await storage.keys.get(parsed.id);
  if (!keyMatches(presented, record?.hash ?? ABSENT_HASH) || !record) return { ok: false, reason: "unknown" };
  if (record.revokedAt !== null) return { ok: false, reason: "revoked", keyId: record.id };
  return { ok: true, key: record };
}

/** Whether a successful use should be written as `lastUsedAt` now. */
export function dueForTouch(record: ApiKeyRecord, now: number): boolean {
  return record.lastUsedAt === null || now - record.lastUsedAt >= TOUCH_INTERVAL_MS;
}

export async function revokeKey(storage: Storage, id: string, now: number): Promise<ApiKeyRecord> {
  const record = isKeyId(id) ? await storage.keys.revoke(id, now) : undefined;
  if (!record) throw new BifrostError("KEY_NOT_FOUND", `No API key with id ${JSON.stringify(id.slice(0, 100))}`, { details: { id: id.slice(0, 100) } });
  return record;
}

/** A key as it is listed: never the hash, never the key. */
export interface KeyView {
  id: string;
  name: string;
  role: Role;
  org: string | null;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function keyView(record: ApiKeyRecord): KeyView {
  return { id: record.id, name: record.name, role: record.role, org: record.org, createdAt: new Date(record.createdAt).toISOString(), lastUsedAt: iso(record.lastUsedAt), revokedAt: iso(record.revokedAt) };
}
