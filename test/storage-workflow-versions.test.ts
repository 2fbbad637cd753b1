import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, Migrator, SqliteDialect } from "kysely";
import { describe, expect, it } from "vitest";
import { uuidv7 } from "../engine/ids.js";
import { openStorage } from "../storage/index.js";
import { CodeMigrationProvider } from "../storage/migrations.js";
import { SQLITE_FILE } from "../storage/sqlite.js";
import type { Storage, WorkflowRecord, WorkflowVersionRecord } from "../storage/types.js";
import { forEachDialect } from "./dialects.js";
import { tempDir } from "./helpers.js";

const version = (name: string, v: string, createdAt = 1_000): WorkflowVersionRecord => ({
  name,
  version: v,
  code: `/* ${name} ${v} */`,
  sourceMap: "{}",
  meta: { name },
  createdAt,
  sourceKind: "api",
  file: null,
  source: `// ${v}`,
});

const current = (name: string, v: string): WorkflowRecord => ({
  name,
  version: v,
  sourceKind: "api",
  file: null,
  source: `// ${v}`,
  code: `/* ${name} ${v} */`,
  sourceMap: "{}",
  meta: { name },
  registeredAt: 1_000,
  updatedAt: 1_000,
});

async function runOn(s: Storage, workflow: string, workflowVersion: string) {
  const { run } = await s.runs.create({ id: uuidv7(), workflow, workflowVersion, org: null, trigger: "api", params: {}, idempotencyKey: null, scheduledFor: null, now: 1_000 });
  return run;
}

/** The workflow-versions repository, once per dialect. */
forEachDialect((dialect, withStorage) => {

  describe(`${dialect}: workflow versions`, () => {
    it("stores a version once and reads it back", withStorage(async (s) => {
      await s.workflowVersions.put(version("wf", "v1", 1_000));
      // A version's content never changes: a second put keeps the first row.
      await s.workflowVersions.put({ ...version("wf", "v1", 2_000), code: "other" });
      expect(await s.workflowVersions.get("wf", "v1")).toEqual(version("wf", "v1", 1_000));
      expect(await s.workflowVersions.get("wf", "v2")).toBeUndefined();
      expect(await s.workflowVersions.get("other", "v1")).toBeUndefined();
    }));

    it("sweeps versions that are neither current nor used by a queued or running run", withStorage(async (s) => {
      for (const v of ["v1", "v2", "v3", "v4", "v5"]) await s.workflowVersions.put(version("wf", v));
      await s.workflowVersions.put(version("other", "v1"));
      await s.workflows.upsert(current("wf", "v5"));
      await runOn(s, "wf", "v1"); // queued
      const running = await runOn(s, "wf", "v2");
      const claimed = (await s.runs.claim(running.id, "A", 1_000, 9_000))!;
      const finished = await runOn(s, "wf", "v3");
      const done = (await s.runs.claim(finished.id, "A", 1_000, 9_000))!;
      await s.runs.finish({ runId: done.id, owner: "A", token: done.leaseToken }, { status: "succeeded", finishedAt: 1_100 });

      expect(await s.workflowVersions.sweep({ name: "wf", limit: 100 })).toBe(2);
      expect((await s.workflowVersions.list("wf")).map((v) => v.version)).toEqual(["v1", "v2", "v5"]);
      // Scoped to its workflow: "other" has no current version, but was not asked about.
      expect(await s.workflowVersions.get("other", "v1")).toBeDefined();

      // Once the running run finishes its version goes at the next sweep; the queued one's stays.
      await s.runs.finish({ runId: claimed.id, owner: "A", token: claimed.leaseToken }, { status: "failed", finishedAt: 1_200 });
      expect(await s.workflowVersions.sweep({ name: "wf", limit: 100 })).toBe(1);
      expect((await s.workflowVersions.list("wf")).map((v) => v.version)).toEqual(["v1", "v5"]);

      // A deleted workflow has no current version: only what runs need is left of it.
      await s.workflows.delete("wf");
      expect(await s.workflowVersions.sweep({ limit: 100 })).toBe(2);
      expect((await s.workflowVersions.list("wf")).map((v) => v.version)).toEqual(["v1"]);
      expect(await s.workflowVersions.list("other")).toEqual([]);
    }));

    it("deletes at most `limit` versions per sweep", withStorage(async (s) => {
      for (let i = 0; i < 7; i++) await s.workflowVersions.put(version("wf", `v${i}`));
      expect(await s.workflowVersions.sweep({ limit: 3 })).toBe(3);
      expect(await s.workflowVersions.sweep({ limit: 3 })).toBe(3);
      expect(await s.workflowVersions.sweep({ limit: 3 })).toBe(1);
      expect(await s.workflowVersions.sweep({ limit: 3 })).toBe(0);
    }));
  });
});

describe("sqlite: migration 0004_workflow_versions", () => {
  it("keeps the version of every workflow registered before it", async () => {
    const dataDir = tempDir();
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new BetterSqlite3(join(dataDir, SQLITE_FILE)) }) });
    try {
      const migrator = new Migrator({ db, provider: new CodeMigrationProvider("sqlite") });
      expect((await migrator.migrateTo("0003_api_keys")).error).toBeUndefined();
      const row = { name: "old", version: "abc", source_kind: "file", file: "/w/old.ts", source: "src", code: "code", source_map: "{}", meta: '{"name":"old"}', registered_at: 5, updated_at: 7 };
      await (db as Kysely<{ workflows: typeof row }>).insertInto("workflows").values(row).execute();
    } finally {
      await db.destroy();
    }
    const storage = await openStorage({ dataDir });
    try {
      expect(await storage.workflowVersions.get("old", "abc")).toEqual({
        name: "old",
        version: "abc",
        code: "code",
        sourceMap: "{}",
        meta: { name: "old" },
        createdAt: 7,
        sourceKind: "file",
        file: "/w/old.ts",
        source: "src",
      });
    } finally {
      await storage.close();
    }
  });
});
