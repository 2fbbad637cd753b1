import { accessSync, constants, mkdirSync, statSync, type Stats } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely } from "kysely";
import { BifrostError } from "../common/errors.js";
import { KyselyStorage } from "./kysely-storage.js";
import type { Database } from "./schema.js";
import { BetterSqliteDriver, betterSqliteDialect, storageFailure } from "./sqlite-driver.js";

export const SQLITE_FILE = "bifrost.db";

export interface SqliteOptions {
  /** How long one statement waits (without blocking the engine) for another process's lock. @default 5000 */
  busyBudgetMs?: number;
}

const unavailable = (message: string, fix: string, cause?: unknown) => new BifrostError("STORAGE_UNAVAILABLE", message, { fix, ...(cause === undefined ? {} : { cause }) });

/** Creates the data directory, saying what is wrong with the path when it cannot be used. */
function ensureDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR" || code === "EEXIST") {
      throw unavailable(`the data directory ${dataDir} is not a directory (a file is in the way)`, "Set BIFROST_DATA_DIR to a directory, or to a path that does not exist yet.", err);
    }
    if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
      throw unavailable(`the data directory ${dataDir} cannot be created: permission denied (${code})`, "Set BIFROST_DATA_DIR to a directory the engine's user may write.", err);
    }
    throw unavailable(`the data directory ${dataDir} cannot be created: ${(err as Error).message}`, "Check BIFROST_DATA_DIR.", err);
  }
  if (!statSync(dataDir).isDirectory()) {
    throw unavailable(`the data directory ${dataDir} is not a directory`, "Set BIFROST_DATA_DIR to a directory, or to a path that does not exist yet.");
  }
  try {
    // SQLite needs to create the -wal and -shm files beside the database.
    accessSync(dataDir, constants.W_OK);
  } catch (err) {
    throw unavailable(`the data directory ${dataDir} is not writable`, "Make BIFROST_DATA_DIR writable by the engine's user (SQLite keeps its -wal and -shm files beside the database).", err);
  }
}

function connect(file: string, primary: boolean): BetterSqlite3.Database {
  const database = new BetterSqlite3(file);
  try {
    // Never wait inside SQLite: the driver retries busy statements without blocking the event loop.
    database.pragma("busy_timeout = 0");
    if (primary) {
      // Persistent in the file: set once, by the connection that writes.
      database.pragma("journal_mode = WAL");
      database.pragma("synchronous = NORMAL");
    }
    database.pragma("foreign_keys = ON");
    // Reading the schema makes SQLite open the file for real: a non-database fails here.
    database.prepare("select count(*) from sqlite_master").get();
  } catch (err) {
    database.close();
    throw err;
  }
  return database;
}

/** Opens (creating if needed) the embedded SQLite database in the data directory. */
export function openSqliteStorage(dataDir: string, options: SqliteOptions = {}): KyselyStorage {
  ensureDataDir(dataDir);
  const file = join(dataDir, SQLITE_FILE);
  let writer: BetterSqlite3.Database | undefined;
  let reader: BetterSqlite3.Database | undefined;
  try {
    writer = connect(file, false);
    reader = connect(file, true);
  } catch (err) {
    writer?.close();
    throw storageFailure(err, file);
  }
  const opened = statSync(file);
  const driver = new BetterSqliteDriver({ file, writer, reader, busyBudgetMs: options.busyBudgetMs ?? 5000, checkFile: () => checkSameFile(file, opened) });
  const db = new Kysely<Database>({ dialect: betterSqliteDialect(driver) });
  return new KyselyStorage(db, "sqlite", { location: file, probe: (budgetMs) => driver.probeWrite(budgetMs) });
}

/**
 * SQLite keeps writing to a database file that was deleted (the inode lives on while it is
 * open): every run recorded after that would vanish at the next start. Refuse instead.
 */
function checkSameFile(file: string, opened: Stats): void {
  let now: Stats;
  try {
    now = statSync(file);
  } catch {
    throw unavailable(`the database file ${file} was deleted while the engine was running; nothing more can be stored`, "Restart the engine: it creates a new database (restore the old one from a backup first if you need its runs).");
  }
  if (now.ino !== opened.ino || now.dev !== opened.dev) {
    throw unavailable(`the database file ${file} was replaced while the engine was running`, "Restart the engine so that it opens the new file.");
  }
}
