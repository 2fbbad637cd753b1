import { openStorage } from "../storage/index.js";
import type { Storage } from "../storage/types.js";
import { tempDir } from "./helpers.js";

/**
 * The storage suites run once per dialect (DIALECTS=sqlite,postgres filters), each test on a fresh
 * database, the way kysely runs one suite against every dialect.
 */
const DIALECTS: Record<string, () => Promise<Storage>> = {
  sqlite: () => openStorage({ dataDir: tempDir() }),
};

export type WithStorage = (fn: (s: Storage) => Promise<void>) => () => Promise<void>;

/** Calls `suite` for every selected dialect with a wrapper that opens and closes a fresh database. */
export function forEachDialect(suite: (dialect: string, withStorage: WithStorage) => void): void {
  const selected = (process.env.DIALECTS ?? Object.keys(DIALECTS).join(",")).split(",").filter((d) => d in DIALECTS);
  for (const dialect of selected) {
    const open = DIALECTS[dialect]!;
    suite(dialect, (fn) => async () => {
      const storage = await open();
      try {
        await fn(storage);
      } finally {
        await storage.close();
      }
    });
  }
}
