import { describe, expect, it } from "vitest";
import { BifrostError } from "../common/errors.js";
import { EngineEvents } from "../engine/events.js";
import { compileModule } from "../engine/registry/compile.js";
import { validateDefinition } from "../engine/registry/definition.js";
import type { RegisteredWorkflow, WorkflowRegistry } from "../engine/registry/registry.js";
import { executeRun, type ExecuteDeps } from "../engine/runner/execute.js";
import { DEFAULT_RUN_HOST_LIMITS, RunHost } from "../engine/runner/run-host.js";
import type { RunSignals } from "../engine/runner/runner.js";
import type { LogRecord, RunOutcome, RunRecord, StepRecord, Storage } from "../storage/types.js";
import { memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";

// executeRun over a storage whose writes fail in the ways a real database (or a bug) can: every
// invocation must still end in exactly one recorded decision, and never blame the workflow.

// A frozen engine clock near the real one: the sandbox measures its deadline against the wall clock.
const NOW = Date.now();

type Fail = { steps?: unknown; stepFinish?: unknown; logs?: unknown };

interface Recorded {
  finished: RunOutcome[];
  requeued: Array<{ runAt: number; attempt: number; error: unknown }>;
  lines: LogRecord[];
}

function fakeStorage(fail: Fail): { storage: Storage; recorded: Recorded } {
  const recorded: Recorded = { finished: [], requeued: [], lines: [] };
  const reject = (what: unknown) => Promise.reject(what);
  const step = (name: string): StepRecord => ({ runId: "r1", name, status: "running", result: null, error: null, attempts: 1, startedAt: NOW, finishedAt: null });
  const storage = {
    dialect: "sqlite",
    runs: {
      finish: async (_lease: unknown, outcome: RunOutcome) => {
        recorded.finished.push(outcome);
        return { ...run(), status: outcome.status, error: outcome.error, result: outcome.result };
      },
      requeue: async (_lease: unknown, patch: Recorded["requeued"][number]) => {
        recorded.requeued.push(patch);
        return true;
      },
    },
    steps: {
      begin: async (_lease: unknown, name: string) => (fail.steps === undefined ? step(name) : reject(fail.steps)),
      finish: async () => (fail.stepFinish === undefined ? undefined : reject(fail.stepFinish)),
      listForRun: async () => [],
    },
    logs: {
      append: async (_lease: unknown, lines: readonly LogRecord[]) => {
        if (fail.logs !== undefined) return reject(fail.logs);
        recorded.lines.push(...lines);
      },
      maxSeq: async () => 0,
      list: async () => [],
    },
  } as unknown as Storage;
  return { storage, recorded };
}

function run(): RunRecord {
  return {
    id: "r1",
    workflow: "w",
    workflowVersion: "v1",
    org: null,
    trigger: "api",
    status: "running",
    params: {},
    result: null,
    error: null,
    attempt: 1,
    idempotencyKey: null,
    queuedAt: NOW,
    runAt: NOW,
    startedAt: NOW,
    finishedAt: null,
    scheduledFor: null,
    leaseOwner: "me",
    leaseUntil: NOW + 30_000,
    leaseToken: 1,
  };
}

async function workflow(body: string): Promise<RegisteredWorkflow> {
  const dir = tempDir("bifrost-wf-");
  writeFiles(dir, { "w.ts": workflowSource("w", body) });
  const module = await compileModule({ kind: "file", file: `${dir}/w.ts` });
  const validated = validateDefinition({ name: "w", timeout: "1m", chunkTimeout: "1m", retry: { attempts: 1 } });
  if (!validated.ok) throw new Error(validated.problems.join("; "));
  return {
    definition: validated.definition,
    version: "v1",
    sourceKind: "file",
    file: `${dir}/w.ts`,
    module,
    source: body,
    registeredAt: NOW,
    updatedAt: NOW,
  };
}

async function execute(body: string, fail: Fail): Promise<Recorded> {
  const wf = await workflow(body);
  const { storage, recorded } = fakeStorage(fail);
  const deps: ExecuteDeps = {
    storage,
    registry: { forRun: async () => wf } as unknown as WorkflowRegistry,
    events: new EngineEvents(),
    logger: memoryLogger().logger,
    now: () => NOW,
    owner: "me",
    sandboxLimits: { memoryMb: 64, cpuMs: 10_000 },
    hostLimits: DEFAULT_RUN_HOST_LIMITS,
  };
  const signals: RunSignals = { stop: new AbortController().signal, kill: new AbortController().signal };
  await executeRun(run(), signals, deps);
  return recorded;
}

describe("every invocation ends in exactly one recorded decision", () => {
  it("a storage write that throws something that is not a BifrostError is an INTERNAL host fault, not the workflow's", async () => {
    for (const thrown of [new TypeError("cannot read properties of undefined"), "a bare string", { code: "SANDBOX_MEMORY_LIMIT" }, null]) {
      const r = await execute(`await ctx.step("s", () => 1); return "never";`, { steps: thrown });
      expect(r.requeued).toEqual([]);
      expect(r.finished).toHaveLength(1);
      expect(r.finished[0]).toMatchObject({ status: "failed", error: { code: "INTERNAL", message: expect.stringMatching(/^step "s" could not be stored: /) } });
    }
  });

  it("an unavailable database resumes the run a little later, even when the workflow swallowed the error", async () => {
    const unavailable = new BifrostError("STORAGE_UNAVAILABLE", "database is locked");
    for (const body of [`await ctx.step("s", () => 1);`, `try { await ctx.step("s", () => 1); } catch {} return "fine";`]) {
      const r = await execute(body, { stepFinish: unavailable });
      expect(r.finished).toEqual([]);
      // Handed back now (the cut-off steps end at NOW), due again a second later.
      expect(r.requeued).toEqual([{ runAt: NOW + 1_000, attempt: 1, error: null, at: NOW }]);
    }
  });

  it("a failed log write counts as a storage fault too", async () => {
    const r = await execute(`ctx.log.info("hello"); return "fine";`, { logs: new BifrostError("STORAGE_UNAVAILABLE", "database is locked") });
    expect(r.finished).toEqual([]);
    expect(r.requeued).toHaveLength(1);
  });

  it("a lost lease writes nothing more", async () => {
    const lost = new BifrostError("LEASE_LOST", "the run was claimed again");
    for (const fail of [{ stepFinish: lost }, { logs: lost }] as Fail[]) {
      const r = await execute(`ctx.log.info("x"); await ctx.step("s", () => 1); return "fine";`, fail);
      expect(r.finished).toEqual([]);
      expect(r.requeued).toEqual([]);
    }
  });

  it("a result the host cannot serialize is recorded as RESULT_NOT_SERIALIZABLE", async () => {
    const r = await execute(`let v = 1; for (let i = 0; i < 10000; i++) v = [v]; return v;`, {});
    expect(r.finished).toEqual([expect.objectContaining({ status: "failed", error: expect.objectContaining({ code: "RESULT_NOT_SERIALIZABLE" }) })]);
  });
});

describe("RunHost checks a log line's fields, whatever the guest claims", () => {
  it("normalises the level and drops an invalid step; message and data are bounded", async () => {
    const { storage, recorded } = fakeStorage({});
    const host = new RunHost(run(), 0, { storage, events: new EngineEvents(), logger: memoryLogger().logger, now: () => NOW, sourceMap: "", limits: DEFAULT_RUN_HOST_LIMITS });
    await host.handler("log", { level: "constructor", msg: { not: "a string" }, step: "S".repeat(4 * 1024 * 1024) });
    await host.handler("log", { level: "warn", msg: "m".repeat(100_000), step: "a\nb", data: { blob: "d".repeat(200_000) } });
    await host.handler("log", { level: "error", msg: "ok", step: "fine step" });
    await host.flush();
    expect(recorded.lines.map((l) => [l.level, l.msg.length, l.step, l.data])).toEqual([
      ["info", 0, undefined, undefined],
      ["warn", 8 * 1024 + "… [truncated]".length, undefined, { truncated: true, bytes: 200_011 }],
      ["error", 2, "fine step", undefined],
    ]);
  });

  it("refuses step calls out of order and unknown ops, recording each as a fault with its own id", async () => {
    const { storage } = fakeStorage({});
    const host = new RunHost(run(), 0, { storage, events: new EngineEvents(), logger: memoryLogger().logger, now: () => NOW, sourceMap: "", limits: DEFAULT_RUN_HOST_LIMITS });
    const faultOf = async (op: string, args: unknown) => {
      const err = await host.handler(op, args).then(() => undefined, (e: unknown) => e);
      return host.onFault(op, err);
    };
    const a = await faultOf("step.end", { name: "never begun", ok: true, result: 1 });
    const b = await faultOf("sandbox.escape", {});
    expect(a).toMatchObject({ code: "STEP_INVALID", message: 'step.end("never begun"): the step is not running in this invocation' });
    expect(b).toMatchObject({ code: "VALIDATION_FAILED" });
    expect(a.fault).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.fault).not.toBe(b.fault);
    expect(host.errorFromGuest({ name: "Error", message: "x", fault: a.fault! })).toMatchObject({ code: "STEP_INVALID" });
  });
});
