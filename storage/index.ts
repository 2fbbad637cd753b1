export type * from "./types.js";
export { FINISHED_STATUSES, LOG_LEVELS } from "./types.js";
export { openSqliteStorage } from "./sqlite.js";
import { BifrostError } from "../common/errors.js";
import { openSqliteStorage } from "./sqlite.js";
import type { Storage } from "./types.js";

export interface StorageOptions {
  dataDir: string;
  databaseUrl?: string;
}

/** Picks the dialect from configuration, opens it and runs migrations. */
export async function openStorage(options: StorageOptions): Promise<Storage> {
  if (options.databaseUrl) {
    throw new BifrostError("STORAGE_UNAVAILABLE", "DATABASE_URL is set, but PostgreSQL support has not landed yet; unset it to use the embedded SQLite database.");
  }
  const storage = openSqliteStorage(options.dataDir);
  try {
    await storage.migrate();
  } catch (err) {
    await storage.close().catch(() => {});
    throw new BifrostError("STORAGE_UNAVAILABLE", `Could not open the database in ${options.dataDir}: ${(err as Error).message}`, { cause: err });
  }
  return storage;
}
