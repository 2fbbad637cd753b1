import { describe, expect, it } from "vitest";
import { openStorage } from "../storage/index.js";
import type { NewRun, Storage } from "../storage/types.js";
import { tempDir } from "./helpers.js";

/** The schedule repository and the fire uniqueness, run against every dialect like test/storage.test.ts. */
const DIALECTS: Record<string, () => Promise<Storage>> = {
  sqlite: () => openStorage({ dataDir: tempDir() }),
};
const selected = (process.env.DIALECTS ?? Object.keys(DIALECTS).join(",")).split(",").filter((d) => d in DIALECTS);

let n = 0;
function fire(workflow: string, org: string | null, scheduledFor: number, trigger: NewRun["trigger"] = "schedule"): NewRun {
  n += 1;
  return { id: `run-${String(n).padStart(8, "0")}`, workflow, workflowVersion: "v1", org, trigger, params: {}, idempotencyKey: null, scheduledFor, now: 10_000 + n };
}

for (const dialect of selected) {
  const open = DIALECTS[dialect]!;
  const withStorage = (fn: (s: Storage) => Promise<void>) => async () => {
    const storage = await open();
    try {
      await fn(storage);
    } finally {
      await storage.close();
    }
  };

  describe(`${dialect}: schedules`, () => {
    it("inserts missing rows, keeps existing ones, and starts over only when the cron or zone changed", withStorage(async (s) => {
      const seeds = [
        { workflow: "sync", org: "acme", cron: "0 * * * *", timezone: "UTC", nextFireAt: 3_600_000 },
        { workflow: "sync", org: null, cron: "0 * * * *", timezone: "UTC", nextFireAt: 3_600_000 },
      ];
      const first = await s.schedules.sync(seeds, 1_000);
      const byOrg = first.map((r) => [r.org, r.nextFireAt, r.paused]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
      expect(byOrg).toEqual([["acme", 3_600_000, false], [null, 3_600_000, false]]);
      await s.schedules.setPaused("sync", "acme", true, 2_000);
      // The same spec with another next fire changes nothing (another engine synced it first).
      const same = await s.schedules.sync([{ ...seeds[0]!, nextFireAt: 7_200_000 }], 3_000);
      expect(same).toEqual([expect.objectContaining({ org: "acme", nextFireAt: 3_600_000, paused: true, changedAt: 2_000 })]);
      // A new cron takes the given next fire and keeps paused.
      const changed = await s.schedules.sync([{ ...seeds[0]!, cron: "30 * * * *", nextFireAt: 5_400_000 }], 4_000);
      expect(changed).toEqual([expect.objectContaining({ org: "acme", cron: "30 * * * *", nextFireAt: 5_400_000, paused: true, changedAt: 4_000 })]);
      expect(await s.schedules.get("sync", null)).toEqual(expect.objectContaining({ cron: "0 * * * *", nextFireAt: 3_600_000 }));
      expect((await s.schedules.list({ org: "acme" })).map((r) => r.workflow)).toEqual(["sync"]);
      expect(await s.schedules.list({ workflow: "other" })).toEqual([]);
    }));

    it("pauses and resumes once, dropping the pending fire", withStorage(async (s) => {
      await s.schedules.sync([{ workflow: "w", org: null, cron: "* * * * *", timezone: "UTC", nextFireAt: 60_000 }], 1);
      await s.schedules.transact("w", null, (tx) => tx.update({ pendingFor: 60_000 }, 2));
      const paused = await s.schedules.setPaused("w", null, true, 3);
      expect(paused).toEqual(expect.objectContaining({ paused: true, pausedAt: 3, pendingFor: null }));
      expect(await s.schedules.setPaused("w", null, true, 4)).toBeUndefined();
      const resumed = await s.schedules.setPaused("w", null, false, 5, 120_000);
      expect(resumed).toEqual(expect.objectContaining({ paused: false, pausedAt: null, nextFireAt: 120_000 }));
      expect(await s.schedules.setPaused("nothing", null, true, 6)).toBeUndefined();
    }));

    it("stores a fire once per (workflow, org, scheduledFor) among scheduled runs", withStorage(async (s) => {
      await s.schedules.sync([{ workflow: "w", org: null, cron: "* * * * *", timezone: "UTC", nextFireAt: 60_000 }], 1);
      await s.schedules.sync([{ workflow: "w", org: "acme", cron: "* * * * *", timezone: "UTC", nextFireAt: 60_000 }], 1);
      const insert = (run: NewRun) => s.schedules.transact("w", run.org, (tx) => tx.insertRun(run));
      const a = await insert(fire("w", null, 60_000));
      expect(a).toEqual(expect.objectContaining({ trigger: "schedule", status: "queued", scheduledFor: 60_000, org: null }));
      expect(await insert(fire("w", null, 60_000))).toBeUndefined();
      // Another org, another instant: other fires.
      expect(await insert(fire("w", "acme", 60_000))).toBeDefined();
      expect(await insert(fire("w", null, 120_000))).toBeDefined();
      // A run of another trigger with the same scheduledFor (a retry of a fire) is not a fire.
      expect((await s.runs.create(fire("w", null, 60_000, "retry"))).created).toBe(true);
      expect((await s.runs.list({ workflow: "w", trigger: "schedule", limit: 10 })).length).toBe(3);
    }));

    it("tells whether a scheduled run of the schedule and org is unfinished", withStorage(async (s) => {
      await s.schedules.sync([{ workflow: "w", org: "acme", cron: "* * * * *", timezone: "UTC", nextFireAt: 60_000 }], 1);
      const unfinished = () => s.schedules.transact("w", "acme", (tx) => tx.unfinishedRun());
      expect(await unfinished()).toBe(false);
      await s.runs.create(fire("w", "acme", 0, "api"));
      await s.runs.create(fire("w", null, 0, "schedule"));
      expect(await unfinished()).toBe(false);
      const run = await s.schedules.transact("w", "acme", (tx) => tx.insertRun(fire("w", "acme", 60_000)));
      expect(await unfinished()).toBe(true);
      const claimed = await s.runs.claim(run!.id, "me", 20_000, 50_000);
      await s.runs.finish({ runId: run!.id, owner: "me", token: claimed!.leaseToken }, { status: "succeeded", finishedAt: 21_000 });
      expect(await unfinished()).toBe(false);
    }));

    it("rolls the row and the fire back together when the transaction fails", withStorage(async (s) => {
      await s.schedules.sync([{ workflow: "w", org: null, cron: "* * * * *", timezone: "UTC", nextFireAt: 60_000 }], 1);
      await expect(
        s.schedules.transact("w", null, async (tx) => {
          await tx.insertRun(fire("w", null, 60_000));
          await tx.update({ nextFireAt: 120_000 }, 2);
          throw new Error("boom");
        }),
      ).rejects.toThrow("boom");
      expect(await s.schedules.get("w", null)).toEqual(expect.objectContaining({ nextFireAt: 60_000 }));
      expect(await s.runs.list({ workflow: "w", limit: 10 })).toEqual([]);
      expect(await s.schedules.transact("missing", null, async () => "called")).toBeUndefined();
    }));

    it("opens many rows in one transaction, which commits or rolls back as one", withStorage(async (s) => {
      const seed = (org: string) => ({ workflow: "w", org, cron: "* * * * *", timezone: "UTC", nextFireAt: 60_000 });
      await s.schedules.sync([seed("a"), seed("b")], 1);
      const missing = await s.schedules.transactMany(async (open) => [await open("w", "a"), await open("w", "zzz")]);
      expect(missing.map((tx) => tx?.row.org)).toEqual(["a", undefined]);
      await expect(
        s.schedules.transactMany(async (open) => {
          for (const org of ["a", "b"]) await (await open("w", org))!.update({ nextFireAt: 120_000 }, 2);
          throw new Error("boom");
        }),
      ).rejects.toThrow("boom");
      expect((await s.schedules.list({ workflow: "w" })).map((r) => r.nextFireAt)).toEqual([60_000, 60_000]);
      await s.schedules.transactMany(async (open) => {
        for (const org of ["a", "b"]) {
          const tx = (await open("w", org))!;
          const run = await tx.insertRun(fire("w", org, 60_000));
          await tx.update({ nextFireAt: 120_000, lastRunId: run!.id }, 3);
        }
      });
      expect((await s.schedules.list({ workflow: "w" })).map((r) => [r.org, r.nextFireAt, r.lastRunStatus])).toEqual([
        ["a", 120_000, "queued"],
        ["b", 120_000, "queued"],
      ]);
    }));

    it("lists rows with the status of their last run", withStorage(async (s) => {
      await s.schedules.sync([{ workflow: "w", org: null, cron: "* * * * *", timezone: "UTC", nextFireAt: 60_000 }], 1);
      expect((await s.schedules.list({}))[0]).toEqual(expect.objectContaining({ lastRunId: null, lastRunStatus: null }));
      await s.schedules.transact("w", null, async (tx) => {
        const run = await tx.insertRun(fire("w", null, 60_000));
        await tx.update({ lastRunId: run!.id, lastFireAt: 60_000, nextFireAt: 120_000 }, 2);
      });
      expect((await s.schedules.list({ workflow: "w" }))[0]).toEqual(expect.objectContaining({ lastFireAt: 60_000, nextFireAt: 120_000, lastRunStatus: "queued" }));
    }));

    it("lists rows that need another look: changed since, overdue, or with a pending fire", withStorage(async (s) => {
      await s.schedules.sync([{ workflow: "a", org: null, cron: "* * * * *", timezone: "UTC", nextFireAt: 60_000 }], 100);
      await s.schedules.sync([{ workflow: "b", org: null, cron: "* * * * *", timezone: "UTC", nextFireAt: 600_000 }], 100);
      await s.schedules.sync([{ workflow: "c", org: null, cron: "* * * * *", timezone: "UTC", nextFireAt: 600_000 }], 100);
      await s.schedules.transact("c", null, (tx) => tx.update({ pendingFor: 300_000 }, 100));
      await s.schedules.sync([{ workflow: "d", org: null, cron: "* * * * *", timezone: "UTC", nextFireAt: 600_000 }], 500);
      const names = async (since: number, dueBefore: number) => (await s.schedules.attention(since, dueBefore, 10)).map((r) => r.workflow).sort();
      expect(await names(200, 100_000)).toEqual(["a", "c", "d"]);
      expect(await names(1_000, 0)).toEqual(["c"]);
      await s.schedules.setPaused("a", null, true, 150);
      expect(await names(1_000, 100_000)).toEqual(["c"]);
    }));
  });
}
