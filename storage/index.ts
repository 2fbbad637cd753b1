import { BifrostError } from "../common/errors.js";
import { openSqliteStorage } from "./sqlite.js";
import type { Storage } from "./types.js";

export interface StorageOptions {
  dataDir: string;
  databaseUrl?: string;
  /** How long one statement waits for another process's lock before STORAGE_UNAVAILABLE. */
  busyBudgetMs?: number;
}

/** Picks the dialect from configuration, opens it and runs migrations. */
export async function openStorage(options: StorageOptions): Promise<Storage> {
  if (options.databaseUrl) {
    throw new BifrostError("STORAGE_UNAVAILABLE", "DATABASE_URL is set, but PostgreSQL support has not landed yet", {
      fix: "Unset DATABASE_URL to use the embedded SQLite database in BIFROST_DATA_DIR.",
    });
  }
  const storage = openSqliteStorage(options.dataDir, options.busyBudgetMs === undefined ? {} : { busyBudgetMs: options.busyBudgetMs });
  try {
    await storage.migrate();
  } catch (err) {
    await storage.close().catch(() => {});
    throw err instanceof BifrostError
      ? err
      : new BifrostError("STORAGE_UNAVAILABLE", `Could not open the database in ${options.dataDir}: ${(err as Error).message}`, { cause: err });
  }
  return storage;
}
