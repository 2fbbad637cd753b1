import { mkdirSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
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
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return new KyselyStorage(db, "sqlite");
}
