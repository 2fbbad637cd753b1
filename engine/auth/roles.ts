import { KEY_ROLES, type KeyRole } from "../../storage/types.js";
import type { Access } from "../api/access.js";

/**
 * Roles nest: admin ⊇ operator ⊇ viewer. A viewer reads, an operator also triggers runs (and calls
 * webhooks with a key), an admin does everything (registration, webhook secrets).
 */
export type Role = KeyRole;
export const ROLES = KEY_ROLES;

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** The least role each access level needs; "public" needs no key at all. */
const NEEDS: Record<Exclude<Access, "public">, Role> = { read: "viewer", trigger: "operator", webhook: "operator", admin: "admin" };

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function leastRoleFor(access: Exclude<Access, "public">): Role {
  return NEEDS[access];
}

export function roleAllows(role: Role, access: Access): boolean {
  return access === "public" || RANK[role] >= RANK[NEEDS[access]];
}

/** Who made a request: the key, its role and the org it is limited to (null: every org). */
export interface Principal {
  /** null for a call authenticated otherwise than by a key (a signed webhook). */
  keyId: string | null;
  role: Role;
  org: string | null;
}
