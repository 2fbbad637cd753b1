import { describe, expect, it } from "vitest";
import { RunState } from "../engine/runner/run-state.js";
import { DEFAULT_STATE_LIMITS } from "../engine/state/keys.js";
import { uuidv7 } from "../engine/ids.js";
import { openStorage } from "../storage/index.js";
import type { Lease } from "../storage/types.js";
import { engineTracker, tempDir, workflowSource } from "./helpers.js";

/** ctx.state in real runs: across runs and orgs, its limits, durable on return, and on resume. */

const { open } = engineTracker();

async function started(workflows: Record<string, string>, deps: Parameters<typeof open>[0] = {}) {
  const t = await open({ workflows, ...deps });
  t.engine.start({ watch: false });
  return t;
}

const COUNTER = workflowSource(
  "counter",
  `const n = ((await ctx.state.get("count")) ?? 0) + 1;
    await ctx.state.set("count", n);
    return { n, missing: (await ctx.state.get("never-set")) === undefined, deletedMissing: await ctx.state.delete("never-set") };`,
);

describe("ctx.state", () => {
  it("keeps values across runs, per org, with no org apart from every org", async () => {
    const { engine } = await started({ "counter.ts": COUNTER });
    const run = async (org: string | null) => {
      const { run } = await engine.triggerRun("counter", { org });
      const done = await engine.waitForRun(run.id, 30_000);
      expect(done.status).toBe("succeeded");
      return (done.result as { n: number }).n;
    };
    expect([await run(null), await run("acme"), await run(null), await run("contoso"), await run("acme"), await run("acme")]).toEqual([1, 1, 2, 1, 2, 3]);
    const { run: last } = await engine.triggerRun("counter", { org: "contoso" });
    expect((await engine.waitForRun(last.id, 30_000)).result).toEqual({ n: 2, missing: true, deletedMissing: false });
    expect(await engine.storage.state.get("counter", null, "count")).toMatchObject({ value: 2 });
    expect(await engine.storage.state.get("counter", "acme", "count")).toMatchObject({ value: 3 });
    expect(await engine.storage.state.get("counter", "contoso", "count")).toMatchObject({ value: 2, updatedByRun: last.id });
  });

  it("gets back what was set as JSON, and deletes saying whether the key existed", async () => {
    const { engine } = await started({
      "roundtrip.ts": workflowSource(
        "roundtrip",
        `await ctx.state.set("v", { when: new Date(0), list: [1, "two", null, true], nested: { deep: 1.5 } });
        await ctx.state.set("nothing", null);
        const got = await ctx.state.get("v");
        const nothing = await ctx.state.get("nothing");
        return { got, nothing, first: await ctx.state.delete("v"), second: await ctx.state.delete("v"), after: (await ctx.state.get("v")) === undefined };`,
      ),
    });
    const { run } = await engine.triggerRun("roundtrip");
    expect(await engine.waitForRun(run.id, 30_000)).toMatchObject({
      status: "succeeded",
      result: { got: { when: "1970-01-01T00:00:00.000Z", list: [1, "two", null, true], nested: { deep: 1.5 } }, nothing: null, first: true, second: false, after: true },
    });
  });

  it("fails the run with STATE_TOO_LARGE above the size limit (in bytes) and the key cap, and STATE_INVALID for bad keys and values", async () => {
    const cases: Record<string, string> = {
      big: `await ctx.state.set("big", "x".repeat(2_000));`,
      // 602 characters, 1,202 bytes: the limit counts bytes.
      wide: `await ctx.state.set("wide", "é".repeat(600));`,
      many: `await ctx.state.set("a", 1); await ctx.state.set("b", 2); await ctx.state.set("b", 3); await ctx.state.set("c", 4);`,
      spaced: `await ctx.state.set("has space", 1);`,
      numeric: `await ctx.state.get(42);`,
      long: `await ctx.state.delete("k".repeat(129));`,
      undef: `await ctx.state.set("k", undefined);`,
      bigint: `await ctx.state.set("k", 10n);`,
      cyclic: `const o = {}; o.self = o; await ctx.state.set("k", o);`,
      deep: `let v = 1; for (let i = 0; i < 70; i++) v = [v]; await ctx.state.set("k", v);`,
      caught: `try { await ctx.state.set("big", "x".repeat(2_000)); } catch (e) { return { code: e.code, message: e.message }; }`,
    };
    const workflows = Object.fromEntries(Object.entries(cases).map(([name, code]) => [`${name}.ts`, workflowSource(name, code)]));
    const { engine } = await started(workflows, { deps: { hostLimits: { maxStateValueBytes: 1_000, maxStateKeys: 2 } } });
    const outcome = async (name: string) => {
      const { run } = await engine.triggerRun(name);
      const done = await engine.waitForRun(run.id, 30_000);
      return { status: done.status, code: done.error?.code ?? null, message: done.error?.message ?? "", result: done.result };
    };
    expect(await outcome("big")).toMatchObject({ status: "failed", code: "STATE_TOO_LARGE", message: 'ctx.state.set("big", value): the value is 2002 characters of JSON; the limit is 1000 bytes' });
    expect(await outcome("wide")).toMatchObject({ status: "failed", code: "STATE_TOO_LARGE", message: expect.stringContaining("1202 bytes") });
    expect(await outcome("many")).toMatchObject({ status: "failed", code: "STATE_TOO_LARGE", message: 'ctx.state.set("c", value): the workflow keeps 2 state keys for this org already; the limit is 2' });
    expect((await engine.storage.state.list("many", null)).map((r) => [r.key, r.value])).toEqual([["a", 1], ["b", 3]]);
    expect(await outcome("spaced")).toMatchObject({ status: "failed", code: "STATE_INVALID", message: expect.stringContaining('the key "has space" is not a state key') });
    expect(await outcome("numeric")).toMatchObject({ status: "failed", code: "STATE_INVALID", message: "ctx.state.get(key): the key must be a string" });
    expect(await outcome("long")).toMatchObject({ status: "failed", code: "STATE_INVALID" });
    expect(await outcome("undef")).toMatchObject({ status: "failed", code: "STATE_INVALID", message: 'ctx.state.set("k", value): undefined cannot be stored; remove a key with ctx.state.delete(key)' });
    expect(await outcome("bigint")).toMatchObject({ status: "failed", code: "STATE_INVALID", message: expect.stringContaining("BigInt") });
    expect(await outcome("cyclic")).toMatchObject({ status: "failed", code: "STATE_INVALID", message: expect.stringContaining("the value is not JSON") });
    expect(await outcome("deep")).toMatchObject({ status: "failed", code: "STATE_INVALID", message: expect.stringContaining("nested deeper than 64 levels") });
    // The workflow may catch it: the error carries the code.
    expect(await outcome("caught")).toMatchObject({ status: "succeeded", result: { code: "STATE_TOO_LARGE" } });
    for (const name of ["big", "wide", "spaced", "undef", "bigint", "cyclic", "deep"]) expect(await engine.storage.state.list(name, null)).toEqual([]);
  });

  it("is committed when set returns: readable while the run is still going", async () => {
    const { engine } = await started({
      "holder.ts": workflowSource("holder", `await ctx.state.set("cursor", { page: 7 }); ctx.log.info("stored"); await new Promise(() => {});`),
    });
    const stored = engine.events.next("run:log", (e) => e.line.msg === "stored");
    const { run } = await engine.triggerRun("holder", { org: "acme" });
    await stored;
    expect((await engine.storage.runs.get(run.id))?.status).toBe("running");
    // Another connection to the same file sees it: it is in the database, not in a buffer.
    const other = await openStorage({ dataDir: engine.config.dataDir });
    try {
      expect(await other.state.get("holder", "acme", "cursor")).toMatchObject({ value: { page: 7 }, updatedByRun: run.id });
    } finally {
      await other.close();
    }
    expect(await engine.cancelRun(run.id)).toBe(true);
    expect((await engine.waitForRun(run.id, 30_000)).status).toBe("cancelled");
  });

  it("on resume repeats writes outside steps and inside uncommitted steps, never those of committed steps", async () => {
    // The first invocation commits "inside", then hangs in "uncommitted" until its chunkTimeout
    // ends it; the run resumes from the top in a fresh invocation.
    const resumable = workflowSource(
      "resumable",
      `const outside = ((await ctx.state.get("outside")) ?? 0) + 1;
    await ctx.state.set("outside", outside);
    await ctx.step("inside", async () => {
      const n = ((await ctx.state.get("inside")) ?? 0) + 1;
      await ctx.state.set("inside", n);
      return n;
    });
    const tries = await ctx.step("uncommitted", async () => {
      const t = ((await ctx.state.get("tries")) ?? 0) + 1;
      await ctx.state.set("tries", t);
      if (t === 1) await new Promise(() => {});
      return t;
    });
    return { outside, inside: await ctx.state.get("inside"), tries };`,
      `\n  chunkTimeout: "300ms",`,
    );
    const { engine } = await started({ "resumable.ts": resumable });
    const { run } = await engine.triggerRun("resumable");
    const done = await engine.waitForRun(run.id, 30_000);
    expect(done).toMatchObject({ status: "succeeded", result: { outside: 2, inside: 1, tries: 2 } });
    const { steps } = await engine.getRun(run.id);
    expect(steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ["inside", "succeeded", 1],
      ["uncommitted", "succeeded", 2],
    ]);
  });

  it("keeps a write made inside a step that then fails", async () => {
    const { engine } = await started({
      "partial.ts": workflowSource("partial", `await ctx.step("s", async () => { await ctx.state.set("cursor", "moved"); throw new Error("after the write"); });`),
    });
    const { run } = await engine.triggerRun("partial");
    expect(await engine.waitForRun(run.id, 30_000)).toMatchObject({ status: "failed", error: { code: "WORKFLOW_ERROR", step: "s" } });
    expect(await engine.storage.state.get("partial", null, "cursor")).toMatchObject({ value: "moved", updatedByRun: run.id });
  });
});

describe("the host side of ctx.state", () => {
  it("checks what the guest sends whatever the prelude did, and writes only under a current lease", async () => {
    const storage = await openStorage({ dataDir: tempDir() });
    try {
      const { run } = await storage.runs.create({ id: uuidv7(), workflow: "w", workflowVersion: "v", org: "acme", trigger: "api", params: {}, idempotencyKey: null, scheduledFor: null, now: 1 });
      const claimed = (await storage.runs.claim(run.id, "A", 1, 10_000))!;
      const lease: Lease = { runId: run.id, owner: "A", token: claimed.leaseToken };
      const host = new RunState(claimed, lease, { storage, now: () => 5, limits: { ...DEFAULT_STATE_LIMITS, maxStateValueBytes: 100 } });
      const refused = (args: Record<string, unknown>) => host.handle("state.set", args).then(() => "stored", (e: { code: string }) => e.code);
      expect(await refused({ key: "k", value: "x".repeat(200) })).toBe("STATE_TOO_LARGE");
      expect(await refused({ key: "k", value: { a: "é".repeat(60) } })).toBe("STATE_TOO_LARGE");
      expect(await refused({ key: "k", length: 12 })).toBe("STATE_TOO_LARGE");
      expect(await refused({ key: "k", length: "huge" })).toBe("STATE_TOO_LARGE");
      expect(await refused({ key: "k" })).toBe("STATE_INVALID");
      expect(await refused({ key: "k", invalid: "x".repeat(100_000), value: 1 })).toBe("STATE_INVALID");
      expect(await refused({ key: "../etc", value: 1 })).toBe("STATE_INVALID");
      expect(await refused({ key: ["k"], value: 1 })).toBe("STATE_INVALID");
      expect(await refused({ key: "k\u0000", value: 1 })).toBe("STATE_INVALID");
      expect(await storage.state.list("w", "acme")).toEqual([]);
      expect(await refused({ key: "k", value: { ok: true } })).toBe("stored");
      expect(await storage.state.get("w", "acme", "k")).toMatchObject({ value: { ok: true }, updatedAt: 5, updatedByRun: run.id });

      // The run is claimed again (its lease lapsed): the old invocation's writes are refused.
      await storage.runs.claim(run.id, "B", 20_000, 30_000);
      expect(await refused({ key: "k", value: "stale" })).toBe("LEASE_LOST");
      await expect(host.handle("state.delete", { key: "k" })).rejects.toMatchObject({ code: "LEASE_LOST" });
      expect(await host.handle("state.get", { key: "k" })).toEqual({ found: true, value: { ok: true } });
    } finally {
      await storage.close();
    }
  });
});
