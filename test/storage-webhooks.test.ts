import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, Migrator, SqliteDialect } from "kysely";
import { describe, expect, it } from "vitest";
import { openStorage } from "../storage/index.js";
import { CodeMigrationProvider } from "../storage/migrations.js";
import { SQLITE_FILE } from "../storage/sqlite.js";
import { tempDir } from "./helpers.js";
import type { Storage } from "../storage/types.js";
import { forEachDialect } from "./dialects.js";

/** The webhook-secret and key-check repositories, run against every dialect like test/storage.test.ts. */
forEachDialect((dialect, withStorage) => {

  describe(`${dialect}: webhook secrets`, () => {
    it("keeps the first secret of a workflow when two are created at once", withStorage(async (s) => {
      expect(await s.webhookSecrets.get("hook", null)).toBeUndefined();
      const [a, b] = await Promise.all([
        s.webhookSecrets.createIfAbsent({ workflow: "hook", org: null, sealed: "sealed-a", createdAt: 1 }),
        s.webhookSecrets.createIfAbsent({ workflow: "hook", org: null, sealed: "sealed-b", createdAt: 2 }),
      ]);
      expect(a).toEqual(b);
      expect(await s.webhookSecrets.get("hook", null)).toEqual(a);
      expect(a).toMatchObject({ workflow: "hook", org: null, rotatedAt: null, previousSealed: null, previousUntil: null });
    }));

    it("keeps one secret per workflow and org, apart from the org-less one", withStorage(async (s) => {
      await s.webhookSecrets.createIfAbsent({ workflow: "hook", org: null, sealed: "none", createdAt: 1 });
      await s.webhookSecrets.createIfAbsent({ workflow: "hook", org: "acme", sealed: "acme", createdAt: 2 });
      expect(await s.webhookSecrets.get("hook", "acme")).toMatchObject({ org: "acme", sealed: "acme" });
      expect(await s.webhookSecrets.get("hook", "beta")).toBeUndefined();
      await s.webhookSecrets.replace("hook", "acme", "acme-2", 5, null);
      expect(await s.webhookSecrets.get("hook", null)).toMatchObject({ sealed: "none", rotatedAt: null });
      expect(await s.webhookSecrets.get("hook", "acme")).toMatchObject({ sealed: "acme-2", rotatedAt: 5 });
    }));

    it("replaces a secret on rotation and only for a workflow that has one", withStorage(async (s) => {
      await s.webhookSecrets.createIfAbsent({ workflow: "hook", org: null, sealed: "old", createdAt: 1 });
      expect(await s.webhookSecrets.replace("hook", null, "new", 5, null)).toEqual({ workflow: "hook", org: null, sealed: "new", createdAt: 1, rotatedAt: 5, previousSealed: null, previousUntil: null });
      // With a grace, the replaced secret becomes the previous one in the same write.
      expect(await s.webhookSecrets.replace("hook", null, "newer", 6, 100)).toEqual({ workflow: "hook", org: null, sealed: "newer", createdAt: 1, rotatedAt: 6, previousSealed: "new", previousUntil: 100 });
      expect(await s.webhookSecrets.replace("other", null, "new", 5, null)).toBeUndefined();
      expect(await s.webhookSecrets.get("other", null)).toBeUndefined();
    }));

    it("records the key fingerprint once", withStorage(async (s) => {
      expect(await s.secretKeyCheck.get()).toBeUndefined();
      expect(await s.secretKeyCheck.remember("aa", 1)).toBe("aa");
      expect(await s.secretKeyCheck.remember("bb", 2)).toBe("aa");
      expect(await s.secretKeyCheck.get()).toBe("aa");
    }));
  });
});

describe("sqlite: migration 0014_webhook_secrets_per_org", () => {
  it("keeps every secret stored before it as its workflow's org-less secret", async () => {
    const dataDir = tempDir();
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new BetterSqlite3(join(dataDir, SQLITE_FILE)) }) });
    try {
      const migrator = new Migrator({ db, provider: new CodeMigrationProvider("sqlite") });
      expect((await migrator.migrateTo("0013_oauth_client_auth")).error).toBeUndefined();
      const row = { workflow: "hook", secret: "sealed-old", created_at: 5, rotated_at: 7, previous_secret: "sealed-older", previous_until: 9 };
      await (db as Kysely<{ webhook_secrets: typeof row }>).insertInto("webhook_secrets").values(row).execute();
    } finally {
      await db.destroy();
    }
    const storage = await openStorage({ dataDir });
    try {
      expect(await storage.webhookSecrets.get("hook", null)).toEqual({ workflow: "hook", org: null, sealed: "sealed-old", createdAt: 5, rotatedAt: 7, previousSealed: "sealed-older", previousUntil: 9 });
      expect(await storage.webhookSecrets.get("hook", "acme")).toBeUndefined();
    } finally {
      await storage.close();
    }
  });
});
