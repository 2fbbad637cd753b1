import type { ChunkProgress, LogRecord, RunRecord, StepRecord } from "../../storage/types.js";
import type { ErrorData } from "../../common/errors.js";
import type { RegisteredWorkflow, RegistrationProblem, WorkflowRegistry } from "../registry/registry.js";
import { nextFireTime } from "../scheduler/cron.js";

/** API shapes (DESIGN §6). Storage records never leave the engine unconverted. */

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function publicError(error: ErrorData | null): ErrorData | null {
  if (!error) return null;
  const out: ErrorData = { code: error.code, message: error.message };
  for (const key of ["category", "fix", "step", "stack", "details"] as const) {
    if (error[key] !== undefined) (out as unknown as Record<string, unknown>)[key] = error[key];
  }
  return out;
}

export function stepView(s: StepRecord) {
  return {
    name: s.name,
    status: s.status,
    attempts: s.attempts,
    startedAt: iso(s.startedAt),
    finishedAt: iso(s.finishedAt),
    durationMs: s.finishedAt === null ? null : s.finishedAt - s.startedAt,
    error: publicError(s.error),
  };
}

/** What the run record shows beside the run: its steps, and `done/total` of each ctx.chunks call. */
export interface RunDetail {
  steps: StepRecord[];
  chunks: ChunkProgress[];
}

export function runView(r: RunRecord, detail?: RunDetail) {
  const view = {
    id: r.id,
    workflow: r.workflow,
    workflowVersion: r.workflowVersion,
    org: r.org,
    trigger: r.trigger,
    status: r.status,
    params: r.params,
    result: r.result,
    error: publicError(r.error),
    attempt: r.attempt,
    idempotencyKey: r.idempotencyKey,
    queuedAt: iso(r.queuedAt),
    // When a queued run is due: a sleeping run, or one waiting for a retry, is queued until then.
    runAt: iso(r.runAt),
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    durationMs: r.startedAt !== null && r.finishedAt !== null ? r.finishedAt - r.startedAt : null,
    scheduledFor: iso(r.scheduledFor),
    retryOf: r.retryOf ?? null,
    cancelRequestedAt: iso(r.cancelRequestedAt ?? null),
  };
  return detail ? { ...view, steps: detail.steps.map(stepView), chunks: detail.chunks.map((c) => ({ name: c.name, done: c.done, total: c.total })) } : view;
}

export type RunView = ReturnType<typeof runView>;

export function logView(l: LogRecord) {
  const view: { seq: number; ts: string; level: string; msg: string; data?: unknown; step?: string } = {
    seq: l.seq,
    ts: new Date(l.ts).toISOString(),
    level: l.level,
    msg: l.msg,
  };
  if (l.data !== undefined) view.data = l.data;
  if (l.step !== undefined) view.step = l.step;
  return view;
}

export function workflowView(w: RegisteredWorkflow, problem: RegistrationProblem | undefined, now: number) {
  const d = w.definition;
  return {
    name: d.name,
    description: d.description,
    params: d.params,
    schedule: d.schedule && {
      cron: d.schedule.cron,
      timezone: d.schedule.timezone,
      overlap: d.schedule.overlap,
      catchUp: d.schedule.catchUp,
      catchUpWindowMs: d.schedule.catchUpWindowMs,
      ...(d.schedule.orgs ? { orgs: d.schedule.orgs } : {}),
    },
    nextFireAt: d.schedule ? iso(nextFireTime(d.schedule.cron, d.schedule.timezone, now)) : null,
    timeoutMs: d.timeoutMs,
    chunkTimeoutMs: d.chunkTimeoutMs,
    retry: d.retry,
    webhook: d.webhook === true,
    sourceKind: w.sourceKind,
    file: w.file,
    version: w.version,
    registeredAt: iso(w.registeredAt),
    updatedAt: iso(w.updatedAt),
    // A newer version of the module was rejected; this (last good) version keeps running.
    lastError: problem ? { ...publicError(problem.error), at: iso(problem.at) } : null,
  };
}

/**
 * A module that failed to load, in `problems` of GET /api/workflows and `bifrost workflows list
 * --json` alike: `file` is the module's path (null for a module sent as text), `name` is present
 * only when known (modules sent as text), `error` says why.
 */
export function problemView(p: RegistrationProblem): { file: string | null; name?: string; error: ErrorData | null; at: string | null } {
  return { file: p.file, ...(p.name !== undefined && { name: p.name }), error: publicError(p.error), at: iso(p.at) };
}

/**
 * GET /api/workflows and `bifrost workflows list --json`: registered workflows (a rejected newer
 * text shows as `lastError`), and the modules with no good version to fall back on.
 */
export function workflowListView(registry: WorkflowRegistry, now: number) {
  return {
    items: registry.list().map((w) => workflowView(w, registry.problemFor(w), now)),
    problems: registry.unloaded().map(problemView),
  };
}
