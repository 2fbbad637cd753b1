import { InvocationOAuth, type TokenSource } from "../oauth/ctx-oauth.js";
import { WorkflowSandbox, type InvocationOutcome, type IsolatePool, type SandboxLimits } from "../../sandbox/index.js";
import type { RunOutcome, RunRecord, Storage } from "../../storage/types.js";
import { BifrostError, ERROR_CODES, type ErrorCode, type ErrorData } from "../../common/errors.js";
import { capString } from "../../common/json-bounds.js";
import type { EngineEvents, SandboxLimitKind } from "../events.js";
import type { Logger } from "../logger.js";
import type { RegisteredWorkflow, WorkflowRegistry } from "../registry/registry.js";
import { formatDuration } from "../duration.js";
import { retryDelayMs } from "./backoff.js";
import type { HttpService } from "../http/service.js";
import { InvocationHttp } from "../http/invocation.js";
import { errorDataOf } from "./faults.js";
import { RunHost, type RunHostLimits } from "./run-host.js";
import { CANCELLED, type RunSignals } from "./runner.js";

export interface ExecuteDeps {
  storage: Storage;
  registry: WorkflowRegistry;
  events: EngineEvents;
  logger: Logger;
  now: () => number;
  owner: string;
  sandboxLimits: SandboxLimits;
  hostLimits: RunHostLimits;
  pool?: IsolatePool;
  /** ctx.http's shared state (host gates, agent, connections); without it ctx.http is refused. */
  http?: HttpService;
  /** ctx.oauth's tokens; without it ctx.oauth is refused. */
  oauth?: TokenSource;
}

/** Why the host ended the invocation itself: to resume the run at `at`, or to end it timed out. */
interface YieldAt {
  at: number;
  reason: string;
  /** The log line to write instead of the ctx.http one built from `reason`. */
  line?: string;
  timedOut?: ErrorData;
}

/** What one invocation decided for the run. */
type Decision =
  | { kind: "finish"; outcome: RunOutcome }
  | { kind: "requeue"; reason: "retry" | "resume"; runAt: number; attempt: number; error: ErrorData | null; limit?: SandboxLimitKind }
  | { kind: "abandon" };

function errorOf(code: ErrorCode, message: string, extra: Partial<ErrorData> = {}): ErrorData {
  return { code, message, fix: ERROR_CODES[code].hint, ...extra };
}

/** How soon a run whose invocation met an unavailable database is tried again. */
const STORAGE_RESUME_MS = 1_000;

/**
 * Runs one invocation of a claimed run in a fresh sandbox and records the outcome. Resumes are
 * invocations too: run() starts from the top and finished steps return their stored results.
 */
export async function executeRun(run: RunRecord, signals: RunSignals, deps: ExecuteDeps): Promise<void> {
  const { storage, now } = deps;
  // The version the run was triggered with, even after a newer one was registered or it was deleted.
  const workflow = await deps.registry.forRun(run.workflow, run.workflowVersion);
  const host = new RunHost(run, await storage.logs.maxSeq(run.id), {
    storage,
    events: deps.events,
    logger: deps.logger,
    now,
    sourceMap: workflow?.module.sourceMap ?? "",
    limits: deps.hostLimits,
  });
  deps.events.emit("run:started", { runId: run.id, workflow: run.workflow, attempt: run.attempt });

  let decision: Decision;
  try {
    decision = workflow ? await invoke(run, workflow, host, signals, deps) : finish("failed", errorOf("WORKFLOW_UNREGISTERED", `workflow "${run.workflow}"${run.workflowVersion ? ` version ${run.workflowVersion}` : ""} is not registered any more`), now());
  } catch (err) {
    // Deciding must not fail; if it does, the run still ends in a recorded decision.
    deps.logger.error({ err, runId: run.id }, "deciding the outcome of an invocation failed");
    decision = finish("failed", errorOf("INTERNAL", `the engine failed while deciding the run's outcome: ${errorDataOf(err).message}`), now());
  }
  await host.flush();
  const recorded = await record(run, decision, deps);
  deps.events.emit("invocation:ended", { runId: run.id, decision: decision.kind, recorded });
}

/**
 * Writes the decision under the invocation's lease. A database that is locked or gone is not the
 * run's fault: nothing is written, the lease runs out and the run resumes from its last committed
 * step wherever it is claimed next.
 */
async function record(run: RunRecord, decision: Decision, deps: ExecuteDeps): Promise<boolean> {
  if (decision.kind === "abandon") return false;
  const lease = { runId: run.id, owner: deps.owner, token: run.leaseToken };
  try {
    if (decision.kind === "requeue") {
      const requeued = await deps.storage.runs.requeue(lease, { runAt: decision.runAt, attempt: decision.attempt, error: decision.error, at: deps.now() });
      if (requeued) {
        const event = { runId: run.id, workflow: run.workflow, reason: decision.reason, runAt: decision.runAt, error: decision.error };
        deps.events.emit("run:requeued", decision.limit ? { ...event, limit: decision.limit } : event);
      }
      return requeued;
    }
    const finished = await deps.storage.runs.finish(lease, decision.outcome);
    if (finished) deps.events.emit("run:finished", { run: finished });
    else deps.logger.warn({ runId: run.id }, "run outcome not recorded: this engine no longer holds its lease");
    return finished !== undefined;
  } catch (err) {
    if (err instanceof BifrostError && (err.code === "STORAGE_UNAVAILABLE" || err.code === "LEASE_LOST")) {
      deps.logger.warn({ runId: run.id, code: err.code, err: err.message }, "run outcome not recorded: the database is unavailable; the run resumes once its lease runs out");
      return false;
    }
    // Anything else would repeat on every resume: end the run as an engine failure instead.
    deps.logger.error({ runId: run.id, err }, "recording the run's outcome failed; recording it as an internal failure");
    const message = err instanceof Error ? err.message : String(err);
    const outcome = { status: "failed" as const, result: null, finishedAt: deps.now(), error: errorOf("INTERNAL", `the engine could not record the run's outcome: ${capString(message, 500)}`) };
    const finished = await deps.storage.runs.finish(lease, outcome).catch(() => undefined);
    if (finished) deps.events.emit("run:finished", { run: finished });
    return finished !== undefined;
  }
}

function finish(status: RunOutcome["status"], error: ErrorData | null, finishedAt: number, result?: unknown): Decision {
  return { kind: "finish", outcome: { status, error, result: result ?? null, finishedAt } };
}

async function invoke(run: RunRecord, workflow: RegisteredWorkflow, host: RunHost, signals: RunSignals, deps: ExecuteDeps): Promise<Decision> {
  const { definition } = workflow;
  const now = deps.now();
  const runDeadline = (run.startedAt ?? now) + definition.timeoutMs;
  if (now >= runDeadline) {
    return finish("timed_out", errorOf("RUN_TIMED_OUT", `the run passed its ${formatDuration(definition.timeoutMs)} timeout before it could resume`), now);
  }
  const deadline = Math.min(runDeadline, now + definition.chunkTimeoutMs);
  // ctx.http may end the invocation early: a retry whose wait crosses the deadline in a run that
  // committed a step resumes after the wait instead of failing. So may the host for a durable
  // ctx.sleep or a step retry's pause (`line` is then the whole log line), or to end the run
  // timed_out for a sleep past the run's timeout.
  const yielded = new AbortController();
  let yieldAt: YieldAt | undefined;
  const invocationSignal = AbortSignal.any([signals.kill, yielded.signal]);
  // A call the workflow never awaited stops with the invocation instead of outliving its decision.
  const ended = new AbortController();
  const http = deps.http && new InvocationHttp({
    service: deps.http,
    run,
    deadline,
    runDeadline,
    signal: AbortSignal.any([invocationSignal, ended.signal]),
    canYield: () => host.committedSteps > 0 && deadline < runDeadline,
    yieldUntil: (at, reason) => {
      yieldAt ??= { at, reason };
      yielded.abort("ctx.http yields");
    },
    log: (level, msg, data) => host.append(level, msg, data),
    recordFault: (err) => host.recordFault("http.request", err),
    ...(signals.leaseHeld ? { leaseHeld: signals.leaseHeld } : {}),
  });
  if (http) host.useHttp(http);
  if (deps.oauth) {
    host.useOAuth(new InvocationOAuth({
      tokens: deps.oauth,
      org: run.org,
      signal: AbortSignal.any([invocationSignal, ended.signal]),
      log: (level, msg, data) => host.append(level, msg, data),
      onSecret: (secret) => host.redactor.add(secret),
    }));
  }
  host.useInvocation({
    deadline,
    runDeadline,
    signal: AbortSignal.any([invocationSignal, ended.signal]),
    stopping: () => signals.stop.aborted,
    yieldUntil: (at, line) => {
      yieldAt ??= { at, reason: line, line };
      yielded.abort("the run yields");
    },
    timeOut: (error) => {
      yieldAt ??= { at: deps.now(), reason: error.message, timedOut: error };
      yielded.abort("the run timed out");
    },
  });
  let outcome: InvocationOutcome;
  let sandbox: WorkflowSandbox | undefined;
  const onStop = () => void sandbox?.signalAbort(String(signals.stop.reason ?? "engine stopping"));
  signals.stop.addEventListener("abort", onStop, { once: true });
  try {
    sandbox = await WorkflowSandbox.create(workflow.module, deps.sandboxLimits, deps.pool);
    if (signals.stop.aborted) onStop();
    const ctxRun = { id: run.id, workflow: run.workflow, org: run.org, trigger: run.trigger, attempt: run.attempt, scheduledFor: run.scheduledFor === null ? null : new Date(run.scheduledFor).toISOString() };
    outcome = await sandbox.run(
      { run: ctxRun, params: run.params, deadline, logBudget: host.logBudget },
      { host: host.handler, onFault: host.onFault, deadline, signal: invocationSignal },
    );
  } catch (err) {
    outcome = { kind: "crashed", message: capString(err instanceof Error ? err.message : String(err), 1000) };
  } finally {
    signals.stop.removeEventListener("abort", onStop);
    sandbox?.dispose();
    ended.abort("the invocation ended");
  }
  if (http && http.stats.requests > 0) host.append("info", "http summary", { ...http.stats });
  // Log writes of the invocation are in: a storage fault among them decides as much as any other.
  await host.flush();
  return decide(outcome, { run, workflow, host, signals, deadline, runDeadline, yieldAt }, deps);
}

/**
 * The one outcome-to-decision table. Its inputs are host-side: the sandbox outcome (in which only a
 * thrown error carries guest data, bounded), the host's faults, the engine's signals. A code the
 * workflow wrote is never the run's code.
 */
function decide(
  outcome: InvocationOutcome,
  c: { run: RunRecord; workflow: RegisteredWorkflow; host: RunHost; signals: RunSignals; deadline: number; runDeadline: number; yieldAt: YieldAt | undefined },
  deps: ExecuteDeps,
): Decision {
  const { run, workflow, host } = c;
  const { definition } = workflow;
  const at = deps.now();
  if (outcome.kind === "aborted") {
    if (c.signals.kill.reason === CANCELLED) {
      host.append("warn", "run cancelled");
      return finish("cancelled", errorOf("RUN_CANCELLED", "the run was cancelled"), at);
    }
    // Stopped by the engine (lease lost, no grace left): nothing more is written.
    if (c.signals.kill.aborted || !c.yieldAt) return { kind: "abandon" };
  }
  // A database that refused this invocation's writes is not the run's fault, whatever the workflow did next.
  const storage = host.storageFault;
  if (storage?.code === "LEASE_LOST") {
    deps.logger.warn({ runId: run.id }, "another claim of the run fenced this invocation off; it writes nothing more");
    return { kind: "abandon" };
  }
  if (storage) {
    host.append("warn", `the database was unavailable during this invocation (${storage.message}); the run resumes from its last committed step`);
    return { kind: "requeue", reason: "resume", runAt: at + STORAGE_RESUME_MS, attempt: run.attempt, error: null };
  }
  switch (outcome.kind) {
    case "aborted": {
      // Only the host's own yields get here (see above): it ended the invocation to wait, or to time out.
      const { at: runAt, reason, line, timedOut } = c.yieldAt ?? { at, reason: "ctx.http yields" };
      if (timedOut) {
        host.append("error", timedOut.message);
        return finish("timed_out", timedOut, at);
      }
      host.append("info", line ?? `${reason}; the run yields and resumes at ${new Date(runAt).toISOString()} from its last committed step`);
      return { kind: "requeue", reason: "resume", runAt, attempt: run.attempt, error: null };
    }
    case "returned": {
      const problem = host.resultProblem(outcome.value);
      if (problem) return fail(run, workflow, host, problem, at);
      return finish("succeeded", null, at, host.redactor.value(outcome.value));
    }
    case "threw": {
      // The engine asked the run to stop and it ended by throwing: whatever it threw, it resumes.
      if (c.signals.stop.aborted) {
        host.append("info", "stopped at the engine's request; the run resumes from its last committed step");
        return { kind: "requeue", reason: "resume", runAt: at, attempt: run.attempt, error: null };
      }
      const error = host.errorFromGuest(outcome.error);
      if (host.lastFailedStep && host.lastFailedStep.message === error.message) error.step = host.lastFailedStep.name;
      return fail(run, workflow, host, error, at);
    }
    case "refused":
      return fail(run, workflow, host, errorOf(outcome.code, outcome.message), at);
    case "limit": {
      if (outcome.limit === "memory") {
        const error = errorOf("SANDBOX_MEMORY_LIMIT", `the run exceeded the sandbox memory limit of ${deps.sandboxLimits.memoryMb} MB`);
        return fail(run, workflow, host, error, at);
      }
      if (outcome.limit === "cpu") {
        const error = errorOf("SANDBOX_CPU_LIMIT", `the run used more than ${formatDuration(deps.sandboxLimits.cpuMs)} of CPU time in one invocation`);
        host.append("error", error.message);
        return finish("timed_out", error, at);
      }
      const chunkLimit = c.deadline < c.runDeadline;
      if (chunkLimit && host.committedSteps > 0) {
        host.append("info", `invocation reached chunkTimeout (${formatDuration(definition.chunkTimeoutMs)}) after committing ${host.committedSteps} step(s); resuming from the last committed step`);
        return { kind: "requeue", reason: "resume", runAt: at, attempt: run.attempt, error: null, limit: "deadline" };
      }
      // A step that alone outlasted chunkTimeout: its own retry policy first, then the run's.
      const stepRetry = chunkLimit ? host.retryOfRunningStep() : undefined;
      if (stepRetry && at + stepRetry.delayMs < c.runDeadline) {
        const { name, attempt, retry, delayMs } = stepRetry;
        host.append("warn", `step "${name}" did not finish within chunkTimeout (${formatDuration(definition.chunkTimeoutMs)}) (attempt ${attempt} of ${retry.attempts}); trying it again in ${formatDuration(delayMs)} in a fresh invocation`, undefined, name);
        const error = errorOf("RUN_TIMED_OUT", `step "${name}" did not finish within the chunkTimeout of ${formatDuration(definition.chunkTimeoutMs)}`, { step: name });
        return { kind: "requeue", reason: "resume", runAt: at + delayMs, attempt: run.attempt, error, limit: "deadline" };
      }
      const limit = chunkLimit ? `chunkTimeout of ${formatDuration(definition.chunkTimeoutMs)} without committing a step` : `timeout of ${formatDuration(definition.timeoutMs)}`;
      const error = errorOf("RUN_TIMED_OUT", `the run exceeded its ${limit}`);
      // The run's timeout is final; one invocation's chunkTimeout is retried as the run's policy says.
      if (chunkLimit) return fail(run, workflow, host, error, at, "timed_out");
      host.append("error", error.message);
      return finish("timed_out", error, at);
    }
    case "crashed": {
      const error = errorOf("SANDBOX_CRASHED", `the sandbox failed: ${outcome.message}`);
      return fail(run, workflow, host, error, at);
    }
  }
}

function fail(run: RunRecord, workflow: RegisteredWorkflow, host: RunHost, error: ErrorData, at: number, status: "failed" | "timed_out" = "failed"): Decision {
  const { retry } = workflow.definition;
  // A retry that would start after the run's timeout could only time out.
  if (run.attempt < retry.attempts && (status === "failed" || at + retryDelayMs(retry, run.attempt + 1) < (run.startedAt ?? at) + workflow.definition.timeoutMs)) {
    const next = run.attempt + 1;
    const delay = retryDelayMs(retry, next);
    host.append("warn", `attempt ${run.attempt} of ${retry.attempts} failed: ${error.message}; retrying in ${formatDuration(delay)}`, { code: error.code });
    return { kind: "requeue", reason: "retry", runAt: at + delay, attempt: next, error };
  }
  if (status === "timed_out") {
    host.append("error", error.message);
    return finish("timed_out", error, at);
  }
  host.append("error", `run failed: ${error.message}`, { code: error.code, ...(error.step ? { step: error.step } : {}) });
  return finish("failed", error, at);
}
