import { mkdirSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, type SqliteDatabase } from "kysely";
import { KyselyStorage } from "./kysely-storage.js";
import type { Database } from "./schema.js";

export const SQLITE_FILE = "bifrost.db";

/** Opens (creating if needed) the embedded SQLite database in the data directory. */
export function openSqliteStorage(dataDir: string): KyselyStorage {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, SQLITE_FILE);
  const database = new BetterSqlite3(file);
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = NORMAL");
  database.pragma("foreign_keys = ON");
  // Several engine processes (server + CLI) may share the file: wait for the writer instead of failing.
  database.pragma("busy_timeout = 5000");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
  return new KyselyStorage(db, "sqlite");
}

const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query anew, and preparing dominated the engine's per-run cost in the
 * benchmark. The SQL of a query shape is stable, so prepared statements are kept (bounded, LRU).
 */
function withStatementCache(database: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        statement = database.prepare(sql);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, statement);
      return statement as unknown as ReturnType<SqliteDatabase["prepare"]>;
    },
  };
}
