import { describe, expect, it } from "vitest";
import { uuidv7 } from "../engine/ids.js";
import type { Lease, NewRun, RunRecord, Storage } from "../storage/types.js";
import { forEachDialect } from "./dialects.js";

/** The ctx.state repository, run against every dialect like test/storage.test.ts. */

function newRun(overrides: Partial<NewRun> = {}): NewRun {
  return { id: uuidv7(), workflow: "sync", workflowVersion: "v1", org: null, trigger: "api", params: {}, idempotencyKey: null, scheduledFor: null, now: 100, ...overrides };
}

const leaseOf = (run: RunRecord): Lease => ({ runId: run.id, owner: run.leaseOwner!, token: run.leaseToken });

/** A run of `workflow` in `org`, claimed by owner "A" (the only queued run, so claimNext takes it). */
async function claimed(s: Storage, overrides: Partial<NewRun> = {}): Promise<RunRecord> {
  const { run } = await s.runs.create(newRun(overrides));
  const claim = await s.runs.claim(run.id, "A", 100, 10_000);
  if (!claim) throw new Error("the run was not claimed");
  return claim;
}

const set = (s: Storage, run: RunRecord, key: string, value: unknown, maxKeys = 100) => s.state.set(leaseOf(run), { key, json: JSON.stringify(value), now: 200, maxKeys });

forEachDialect((dialect, withStorage) => {
  describe(`${dialect}: workflow state`, () => {
    it("keeps values per workflow and org, with no org apart from every org", withStorage(async (s) => {
      const plain = await claimed(s);
      const acme = await claimed(s, { org: "acme" });
      const other = await claimed(s, { workflow: "other", org: "acme" });
      expect(await set(s, plain, "cursor", { page: 1 })).toEqual({ ok: true });
      expect(await set(s, acme, "cursor", "acme-token")).toEqual({ ok: true });
      expect(await set(s, other, "cursor", null)).toEqual({ ok: true });

      expect(await s.state.get("sync", null, "cursor")).toEqual({ workflow: "sync", org: null, key: "cursor", value: { page: 1 }, updatedAt: 200, updatedByRun: plain.id });
      expect((await s.state.get("sync", "acme", "cursor"))?.value).toBe("acme-token");
      expect(await s.state.get("other", "acme", "cursor")).toMatchObject({ value: null, updatedByRun: other.id });
      expect(await s.state.get("other", null, "cursor")).toBeUndefined();
      expect(await s.state.get("sync", "contoso", "cursor")).toBeUndefined();

      // A later write replaces the value and says which run made it.
      const later = await claimed(s, { org: "acme" });
      await s.state.set(leaseOf(later), { key: "cursor", json: '"newer"', now: 300, maxKeys: 100 });
      await set(s, later, "a-first", 1);
      expect((await s.state.list("sync", "acme")).map((r) => [r.key, r.value, r.updatedAt, r.updatedByRun])).toEqual([
        ["a-first", 1, 200, later.id],
        ["cursor", "newer", 300, later.id],
      ]);
      expect((await s.state.list("sync", null)).map((r) => r.key)).toEqual(["cursor"]);
    }));

    it("deletes under the lease and resets without one, saying whether the key existed", withStorage(async (s) => {
      const run = await claimed(s, { org: "acme" });
      await set(s, run, "a", 1);
      await set(s, run, "b", 2);
      expect(await s.state.delete(leaseOf(run), "a")).toBe(true);
      expect(await s.state.delete(leaseOf(run), "a")).toBe(false);
      expect(await s.state.reset("sync", null, "b")).toBe(false);
      expect(await s.state.reset("sync", "acme", "b")).toBe(true);
      expect(await s.state.list("sync", "acme")).toEqual([]);
    }));

    it("refuses a new key past the cap and still replaces existing ones", withStorage(async (s) => {
      const run = await claimed(s);
      expect(await set(s, run, "a", 1, 2)).toEqual({ ok: true });
      expect(await set(s, run, "b", 2, 2)).toEqual({ ok: true });
      expect(await set(s, run, "c", 3, 2)).toEqual({ ok: false, keys: 2 });
      expect(await set(s, run, "b", 20, 2)).toEqual({ ok: true });
      // The cap counts one workflow and org: another org starts from zero.
      const acme = await claimed(s, { org: "acme" });
      expect(await set(s, acme, "c", 3, 2)).toEqual({ ok: true });
      expect((await s.state.list("sync", null)).map((r) => [r.key, r.value])).toEqual([["a", 1], ["b", 20]]);
    }));

    it("refuses every write of an invocation whose run was claimed again, finished or never claimed", withStorage(async (s) => {
      const first = await claimed(s);
      await set(s, first, "cursor", "from-first");
      // The lease lapses and the same owner claims the run again: a new token.
      const second = (await s.runs.claim(first.id, "A", 10_001, 20_000))!;
      expect(second.leaseToken).toBe(first.leaseToken + 1);
      const lost = { code: "LEASE_LOST" };
      await expect(set(s, first, "cursor", "stale")).rejects.toMatchObject(lost);
      await expect(set(s, first, "new-key", "stale")).rejects.toMatchObject(lost);
      await expect(s.state.delete(leaseOf(first), "cursor")).rejects.toMatchObject(lost);
      expect(await s.state.list("sync", null)).toMatchObject([{ key: "cursor", value: "from-first", updatedByRun: first.id }]);

      await set(s, second, "cursor", "from-second");
      expect(await s.runs.finish(leaseOf(second), { status: "succeeded", finishedAt: 10_002 })).toMatchObject({ status: "succeeded" });
      await expect(set(s, second, "cursor", "after-finish")).rejects.toMatchObject(lost);

      const { run: queued } = await s.runs.create(newRun());
      await expect(s.state.set({ runId: queued.id, owner: "A", token: 0 }, { key: "cursor", json: "1", now: 1, maxKeys: 10 })).rejects.toMatchObject(lost);
      expect((await s.state.get("sync", null, "cursor"))?.value).toBe("from-second");
    }));
  });
});
