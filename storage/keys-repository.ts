import type { Kysely, Selectable } from "kysely";
import type { ApiKeysTable, Database } from "./schema.js";
import type { ApiKeyRecord, KeyRepository, KeyRole, NewApiKey } from "./types.js";

function toKey(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role as KeyRole,
    org: row.org,
    hash: row.key_hash,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

function toRow(key: NewApiKey): ApiKeysTable {
  return { id: key.id, name: key.name, role: key.role, org: key.org, key_hash: key.hash, created_at: key.createdAt, last_used_at: null, revoked_at: null };
}

export function keyRepository(db: Kysely<Database>): KeyRepository {
  return {
    async create(key) {
      await db.insertInto("api_keys").values(toRow(key)).execute();
    },
    async createFirst(key) {
      // One transaction (IMMEDIATE on SQLite): two engines starting on an empty database at once
      // must not both create a first admin key.
      return db.transaction().execute(async (trx) => {
        const existing = await trx.selectFrom("api_keys").select("id").limit(1).executeTakeFirst();
        if (existing) return false;
        await trx.insertInto("api_keys").values(toRow(key)).execute();
        return true;
      });
    },
    async get(id) {
      const row = await db.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
      return row && toKey(row);
    },
    async list() {
      return (await db.selectFrom("api_keys").selectAll().orderBy("created_at").orderBy("id").execute()).map(toKey);
    },
    async revoke(id, now) {
      return db.transaction().execute(async (trx) => {
        await trx.updateTable("api_keys").set({ revoked_at: now }).where("id", "=", id).where("revoked_at", "is", null).execute();
        const row = await trx.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
        return row && toKey(row);
      });
    },
    async touch(id, now) {
      await db.updateTable("api_keys").set({ last_used_at: now }).where("id", "=", id).execute();
    },
  };
}
