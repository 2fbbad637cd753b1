import { describe, expect, it } from "vitest";
import { uuidv7 } from "../engine/ids.js";
import type { Lease, NewRun, RunRecord, Storage } from "../storage/types.js";
import { forEachDialect } from "./dialects.js";

function newRun(overrides: Partial<NewRun> = {}): NewRun {
  const now = overrides.now ?? 1_000;
  return { id: uuidv7(), workflow: "wf", workflowVersion: "v1", org: null, trigger: "api", params: { a: 1 }, idempotencyKey: null, scheduledFor: null, now, ...overrides };
}

const leaseOf = (run: RunRecord): Lease => ({ runId: run.id, owner: run.leaseOwner!, token: run.leaseToken });

/** Cancel requests and retries in storage, run against every dialect like test/storage.test.ts. */
forEachDialect((dialect, withStorage) => {

  describe(`${dialect}: run control`, () => {
    it("cancels a queued run at once, so that no engine claims it", withStorage(async (s) => {
      const run = (await s.runs.create(newRun())).run;
      expect(await s.runs.cancel(run.id, 1_500)).toMatchObject({ state: "cancelled", run: { status: "cancelled", finishedAt: 1_500, cancelRequestedAt: 1_500, error: { code: "RUN_CANCELLED" } } });
      expect(await s.runs.claimNext("A", 2_000, 3_000)).toBeUndefined();
      expect(await s.runs.cancel(run.id, 1_600)).toMatchObject({ state: "finished", run: { status: "cancelled", finishedAt: 1_500 } });
      expect(await s.runs.cancel("no-such-run", 1_600)).toBeUndefined();
    }));

    it("records a request for a run an engine holds, and the engine finds it", withStorage(async (s) => {
      const run = (await s.runs.create(newRun())).run;
      const other = (await s.runs.create(newRun())).run;
      const claimed = (await s.runs.claim(run.id, "A", 1_000, 5_000))!;
      await s.runs.claim(other.id, "A", 1_000, 5_000);
      expect(await s.runs.cancelRequested([run.id, other.id])).toEqual([]);
      expect(await s.runs.cancel(run.id, 2_000)).toMatchObject({ state: "requested", run: { status: "running", cancelRequestedAt: 2_000, leaseOwner: "A" } });
      // A second request keeps the first time.
      expect(await s.runs.cancel(run.id, 2_500)).toMatchObject({ state: "requested", run: { cancelRequestedAt: 2_000 } });
      expect(await s.runs.cancelRequested([run.id, other.id])).toEqual([run.id]);
      // The engine stops the invocation, which records its decision as any other.
      await s.runs.finish(leaseOf(claimed), { status: "cancelled", error: { code: "RUN_CANCELLED", message: "the run was cancelled" }, finishedAt: 2_600 });
      expect(await s.runs.cancelRequested([run.id])).toEqual([]);
      expect(await s.runs.cancel(run.id, 3_000)).toMatchObject({ state: "finished", run: { status: "cancelled" } });
    }));

    it("cancels at once a running run whose lease ran out: no engine executes it any more", withStorage(async (s) => {
      const run = (await s.runs.create(newRun())).run;
      const claimed = (await s.runs.claim(run.id, "A", 1_000, 2_000))!;
      await s.steps.begin(leaseOf(claimed), "half done", 1_100);
      expect(await s.runs.cancel(run.id, 2_001)).toMatchObject({ state: "cancelled", run: { status: "cancelled", leaseOwner: null } });
      expect(await s.steps.listForRun(run.id)).toMatchObject([{ name: "half done", status: "failed", error: { code: "STEP_INTERRUPTED" } }]);
      // The old invocation can write nothing more.
      await expect(s.steps.finish(leaseOf(claimed), "half done", { status: "succeeded", finishedAt: 2_100 })).rejects.toMatchObject({ code: "LEASE_LOST" });
    }));

    it("never puts a run with a cancel request back in the queue: requeue and release end it cancelled", withStorage(async (s) => {
      const retried = (await s.runs.create(newRun())).run;
      const released = (await s.runs.create(newRun())).run;
      const a = (await s.runs.claim(retried.id, "A", 1_000, 5_000))!;
      await s.runs.claim(released.id, "A", 1_000, 5_000);
      await s.runs.cancel(retried.id, 1_500);
      await s.runs.cancel(released.id, 1_500);
      expect(await s.runs.requeue(leaseOf(a), { runAt: 99_000, attempt: 2, error: { code: "WORKFLOW_ERROR", message: "boom" } })).toBe(false);
      await s.runs.releaseLeases("A", [released.id]);
      for (const id of [retried.id, released.id]) {
        expect(await s.runs.get(id)).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" }, leaseOwner: null });
      }
      // A run without a request is requeued as before.
      const plain = (await s.runs.create(newRun())).run;
      const p = (await s.runs.claim(plain.id, "A", 1_000, 5_000))!;
      expect(await s.runs.requeue(leaseOf(p), { runAt: 1_200, attempt: 2, error: null })).toBe(true);
      expect(await s.runs.get(plain.id)).toMatchObject({ status: "queued", cancelRequestedAt: null });
    }));

    it("creates a retry with the succeeded steps of its original, and only those", withStorage(async (s) => {
      const original = (await s.runs.create(newRun())).run;
      const claimed = (await s.runs.claim(original.id, "A", 1_000, 5_000))!;
      const lease = leaseOf(claimed);
      await s.steps.begin(lease, "fetch", 1_100);
      await s.steps.finish(lease, "fetch", { status: "succeeded", result: { rows: [1, 2] }, finishedAt: 1_200 });
      await s.steps.begin(lease, "upsert", 1_300);
      await s.steps.finish(lease, "upsert", { status: "failed", error: { code: "WORKFLOW_ERROR", message: "boom" }, finishedAt: 1_400 });
      await s.runs.finish(lease, { status: "failed", error: { code: "WORKFLOW_ERROR", message: "boom" }, finishedAt: 1_500 });

      const { run: retry } = await s.runs.create(newRun({ trigger: "retry", retryOf: original.id, now: 2_000 }));
      expect(retry).toMatchObject({ trigger: "retry", retryOf: original.id, status: "queued", attempt: 1 });
      expect(await s.steps.listForRun(retry.id)).toEqual([{ runId: retry.id, name: "fetch", status: "succeeded", result: { rows: [1, 2] }, error: null, attempts: 1, startedAt: 1_100, finishedAt: 1_200 }]);
      // The original keeps its own steps.
      expect((await s.steps.listForRun(original.id)).map((st) => st.name)).toEqual(["fetch", "upsert"]);
      expect((await s.runs.get(original.id))?.retryOf).toBeNull();
    }));
  });
});
