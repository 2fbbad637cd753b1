import { describe, expect, it } from "vitest";
import { uuidv7 } from "../engine/ids.js";
import type { Lease, NewRun, RunRecord, Storage } from "../storage/types.js";
import { forEachDialect } from "./dialects.js";

function newRun(overrides: Partial<NewRun> = {}): NewRun {
  const now = overrides.now ?? 1_000;
  return { id: uuidv7(), workflow: "wf", workflowVersion: "v1", org: null, trigger: "api", params: { a: 1 }, idempotencyKey: null, scheduledFor: null, now, ...overrides };
}

const leaseOf = (run: RunRecord): Lease => ({ runId: run.id, owner: run.leaseOwner!, token: run.leaseToken });

forEachDialect((dialect, withStorage) => {

  describe(`${dialect}: storage`, () => {
    it("migrates idempotently and answers ping", withStorage(async (s) => {
      await s.migrate();
      await s.ping();
      expect(s.dialect).toBe(dialect);
    }));

    it("creates runs, dedupes idempotency keys per workflow, and round-trips JSON", withStorage(async (s) => {
      const a = await s.runs.create(newRun({ idempotencyKey: "k", params: { nested: { list: [1, "two", null] } } }));
      const again = await s.runs.create(newRun({ idempotencyKey: "k" }));
      const otherWorkflow = await s.runs.create(newRun({ idempotencyKey: "k", workflow: "other" }));
      expect(a.created).toBe(true);
      expect(again).toMatchObject({ created: false, run: { id: a.run.id } });
      expect(otherWorkflow.created).toBe(true);
      expect(await s.runs.get(a.run.id)).toMatchObject({ status: "queued", attempt: 1, params: { nested: { list: [1, "two", null] } }, result: null, error: null });
    }));

    it("claims due runs once, in order, and reclaims a run whose lease expired", withStorage(async (s) => {
      const first = (await s.runs.create(newRun({ now: 100 }))).run;
      const second = (await s.runs.create(newRun({ now: 200 }))).run;
      await s.runs.create(newRun({ now: 10_000 }));
      const a = (await s.runs.claimNext("A", 1_000, 2_000))!;
      expect(a.id).toBe(first.id);
      expect((await s.runs.claimNext("B", 1_000, 2_000))?.id).toBe(second.id);
      expect(await s.runs.claimNext("B", 1_000, 2_000)).toBeUndefined(); // the third is not due yet
      // A's lease runs out at 2000; B takes the run over after that.
      expect(await s.runs.claimNext("B", 1_999, 3_000)).toBeUndefined();
      const b = (await s.runs.claimNext("B", 2_001, 5_000))!;
      expect(b).toMatchObject({ id: first.id, leaseOwner: "B", leaseToken: a.leaseToken + 1 });
      // A lost it: renewing and finishing as A change nothing.
      expect(await s.runs.renewLeases("A", [first.id], 9_000)).toEqual([]);
      expect(await s.runs.finish(leaseOf(a), { status: "succeeded", result: 1, finishedAt: 2_500 })).toBeUndefined();
      expect(await s.runs.finish(leaseOf(b), { status: "succeeded", result: { ok: true }, finishedAt: 2_500 })).toMatchObject({ id: first.id, status: "succeeded" });
      expect(await s.runs.get(first.id)).toMatchObject({ status: "succeeded", result: { ok: true }, leaseOwner: null, finishedAt: 2_500 });
    }));

    it("a requeue ends the steps it cut off when the invocation ended, not when the run is due again", withStorage(async (s) => {
      const run = (await s.runs.create(newRun({ now: 100 }))).run;
      const claimed = (await s.runs.claim(run.id, "A", 150, 1_000))!;
      await s.steps.begin(leaseOf(claimed), "long", 160);
      expect(await s.runs.requeue(leaseOf(claimed), { runAt: 90_000, attempt: 1, error: null, at: 400 })).toBe(true);
      expect(await s.steps.listForRun(run.id)).toMatchObject([{ name: "long", status: "failed", finishedAt: 400, error: { code: "STEP_INTERRUPTED" } }]);
    }));

    it("claims a specific run, requeues with a delay, and releases leases", withStorage(async (s) => {
      const run = (await s.runs.create(newRun({ now: 100 }))).run;
      const claimed = await s.runs.claim(run.id, "A", 150, 1_000);
      expect(claimed).toMatchObject({ status: "running", leaseOwner: "A", startedAt: 150 });
      expect(await s.runs.claim(run.id, "B", 200, 1_000)).toBeUndefined();
      expect(await s.runs.requeue(leaseOf(claimed!), { runAt: 5_000, attempt: 2, error: { code: "WORKFLOW_ERROR", message: "boom" } })).toBe(true);
      expect(await s.runs.get(run.id)).toMatchObject({ status: "queued", attempt: 2, runAt: 5_000, startedAt: 150, error: { message: "boom" } });
      expect(await s.runs.claimNext("A", 4_999, 6_000)).toBeUndefined();
      // A later claim keeps the first start time.
      expect(await s.runs.claimNext("A", 5_000, 6_000)).toMatchObject({ id: run.id, startedAt: 150 });
      await s.runs.releaseLeases("A", [run.id]);
      expect(await s.runs.get(run.id)).toMatchObject({ status: "queued", leaseOwner: null });
    }));

    it("cancels only queued runs", withStorage(async (s) => {
      const queued = (await s.runs.create(newRun())).run;
      const running = (await s.runs.create(newRun({ claim: { owner: "A", leaseUntil: 9_000 } }))).run;
      const error = { code: "RUN_CANCELLED", message: "the run was cancelled" };
      expect(await s.runs.cancelQueued(queued.id, error, 50)).toMatchObject({ status: "cancelled", finishedAt: 50, error });
      expect(await s.runs.cancelQueued(running.id, error, 50)).toBeUndefined();
      expect(await s.runs.claimNext("B", 60, 100)).toBeUndefined();
    }));

    it("adopts a run at creation for its creator", withStorage(async (s) => {
      const { run } = await s.runs.create(newRun({ claim: { owner: "cli", leaseUntil: 9_000 } }));
      expect(run).toMatchObject({ status: "running", leaseOwner: "cli", leaseUntil: 9_000, startedAt: 1_000 });
      expect(await s.runs.claimNext("server", 5_000, 6_000)).toBeUndefined();
    }));

    it("lists runs newest first with filters and an id cursor", withStorage(async (s) => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await s.runs.create(newRun({ now: 1_000 + i, org: i % 2 ? "odd" : "even", trigger: i === 4 ? "cli" : "api" }))).run.id);
      expect((await s.runs.list({ limit: 10 })).map((r) => r.id)).toEqual([...ids].reverse());
      expect((await s.runs.list({ limit: 10, org: "odd" })).map((r) => r.id)).toEqual([ids[3], ids[1]]);
      expect((await s.runs.list({ limit: 2, beforeId: ids[3] })).map((r) => r.id)).toEqual([ids[2], ids[1]]);
      expect((await s.runs.list({ limit: 10, trigger: "cli" })).map((r) => r.id)).toEqual([ids[4]]);
      expect((await s.runs.list({ limit: 10, since: 1_002, until: 1_004 })).map((r) => r.id)).toEqual([ids[3], ids[2]]);
      expect(await s.runs.list({ limit: 10, status: "failed" })).toEqual([]);
    }));

    it("records step attempts and keeps a succeeded step's result", withStorage(async (s) => {
      const { run } = await s.runs.create(newRun({ claim: { owner: "A", leaseUntil: 9_000 } }));
      const lease = leaseOf(run);
      expect(await s.steps.begin(lease, "fetch", 10)).toMatchObject({ status: "running", attempts: 1 });
      await s.steps.finish(lease, "fetch", { status: "failed", error: { code: "WORKFLOW_ERROR", message: "nope" }, finishedAt: 11 });
      expect(await s.steps.begin(lease, "fetch", 12)).toMatchObject({ status: "running", attempts: 2, error: null });
      await s.steps.finish(lease, "fetch", { status: "succeeded", result: [{ id: 1 }], finishedAt: 13 });
      expect(await s.steps.begin(lease, "fetch", 14)).toMatchObject({ status: "succeeded", attempts: 2, result: [{ id: 1 }], finishedAt: 13 });
      expect((await s.steps.listForRun(run.id)).map((st) => st.name)).toEqual(["fetch"]);
    }));

    it("appends and pages log lines by sequence and level", withStorage(async (s) => {
      const { run } = await s.runs.create(newRun({ claim: { owner: "A", leaseUntil: 9_000 } }));
      const levels = ["debug", "info", "warn", "error"] as const;
      await s.logs.append(leaseOf(run), Array.from({ length: 8 }, (_, i) => ({ runId: run.id, seq: i + 1, ts: i, level: levels[i % 4]!, msg: `m${i + 1}`, ...(i === 2 ? { data: { x: [1] }, step: "s" } : {}) })));
      expect(await s.logs.maxSeq(run.id)).toBe(8);
      expect(await s.logs.maxSeq("missing")).toBe(0);
      expect((await s.logs.list(run.id, { limit: 3, afterSeq: 2 })).map((l) => l.seq)).toEqual([3, 4, 5]);
      expect((await s.logs.list(run.id, { limit: 10, minLevel: "warn" })).map((l) => l.msg)).toEqual(["m3", "m4", "m7", "m8"]);
      expect((await s.logs.list(run.id, { limit: 10 }))[2]).toEqual({ runId: run.id, seq: 3, ts: 2, level: "warn", msg: "m3", data: { x: [1] }, step: "s" });
      await expect(s.logs.append(leaseOf(run), [{ runId: run.id, seq: 3, ts: 0, level: "info", msg: "dup" }])).rejects.toThrow();
    }));

    it("refuses every write of an owner whose run was claimed again (fencing), even by the same owner", withStorage(async (s) => {
      const { run } = await s.runs.create(newRun({ now: 100 }));
      const first = (await s.runs.claimNext("A", 100, 1_000))!;
      await s.steps.begin(leaseOf(first), "done", 110);
      await s.steps.finish(leaseOf(first), "done", { status: "succeeded", result: 1, finishedAt: 120 });
      await s.steps.begin(leaseOf(first), "in-flight", 130);
      // The lease lapses and the same process claims the run again: a new token.
      const second = (await s.runs.claimNext("A", 1_001, 2_000))!;
      expect(second).toMatchObject({ id: run.id, leaseOwner: "A", leaseToken: first.leaseToken + 1 });
      const stale = leaseOf(first);
      const lost = { code: "LEASE_LOST" };
      await expect(s.steps.begin(stale, "next", 1_002)).rejects.toMatchObject(lost);
      await expect(s.steps.finish(stale, "in-flight", { status: "succeeded", result: 2, finishedAt: 1_002 })).rejects.toMatchObject(lost);
      await expect(s.logs.append(stale, [{ runId: run.id, seq: 1, ts: 1, level: "info", msg: "late" }])).rejects.toMatchObject(lost);
      expect(await s.runs.requeue(stale, { runAt: 1_003, attempt: 2, error: null })).toBe(false);
      expect(await s.runs.finish(stale, { status: "failed", finishedAt: 1_003 })).toBeUndefined();
      // The step the stale invocation left running was marked interrupted by the new claim.
      const steps = await s.steps.listForRun(run.id);
      expect(steps.find((st) => st.name === "in-flight")).toMatchObject({ status: "failed", error: { code: "STEP_INTERRUPTED" } });
      expect(steps.find((st) => st.name === "done")).toMatchObject({ status: "succeeded", result: 1 });
      expect(await s.logs.maxSeq(run.id)).toBe(0);
      // The current lease writes normally.
      await s.logs.append(leaseOf(second), [{ runId: run.id, seq: 1, ts: 1, level: "info", msg: "current" }]);
      expect(await s.runs.finish(leaseOf(second), { status: "succeeded", result: 3, finishedAt: 1_010 })).toMatchObject({ status: "succeeded" });
    }));

    it("never claims a run the caller says it is still executing", withStorage(async (s) => {
      const { run } = await s.runs.create(newRun({ now: 100 }));
      await s.runs.claimNext("A", 100, 1_000);
      expect(await s.runs.claimNext("A", 5_000, 6_000, [run.id])).toBeUndefined();
      expect(await s.runs.claimNext("B", 5_000, 6_000, [])).toMatchObject({ id: run.id, leaseOwner: "B" });
    }));

    it("marks steps left running as interrupted when a run finishes, is requeued or is released", withStorage(async (s) => {
      for (const end of ["finish", "requeue", "release"] as const) {
        const { run } = await s.runs.create(newRun({ claim: { owner: "A", leaseUntil: 9_000 } }));
        await s.steps.begin(leaseOf(run), "s", 10);
        if (end === "finish") await s.runs.finish(leaseOf(run), { status: "cancelled", finishedAt: 20 });
        if (end === "requeue") await s.runs.requeue(leaseOf(run), { runAt: 20, attempt: 1, error: null });
        if (end === "release") await s.runs.releaseLeases("A", [run.id]);
        expect((await s.steps.listForRun(run.id))[0], end).toMatchObject({ status: "failed", error: { code: "STEP_INTERRUPTED" } });
      }
    }));

    it("upserts, lists and deletes workflows", withStorage(async (s) => {
      const record = { name: "wf", version: "v1", sourceKind: "file" as const, file: "/w/wf.ts", source: "src", code: "code", sourceMap: "{}", meta: { name: "wf" }, registeredAt: 1, updatedAt: 1 };
      await s.workflows.upsert(record);
      await s.workflows.upsert({ ...record, version: "v2", registeredAt: 99, updatedAt: 2 });
      expect(await s.workflows.get("wf")).toMatchObject({ version: "v2", registeredAt: 1, updatedAt: 2, meta: { name: "wf" } });
      expect((await s.workflows.list()).map((w) => w.name)).toEqual(["wf"]);
      expect(await s.workflows.delete("wf")).toBe(true);
      expect(await s.workflows.delete("wf")).toBe(false);
    }));
  });
});
