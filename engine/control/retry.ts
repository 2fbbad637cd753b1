import { BifrostError, isBifrostError } from "../../common/errors.js";
import type { RunRecord, RunStatus } from "../../storage/types.js";
import type { RunScope } from "../auth/org.js";

/** The runs a retry may start again from: those that ended without succeeding. */
export const RETRYABLE_STATUSES: readonly RunStatus[] = ["failed", "timed_out", "cancelled"];

export interface RetryInput {
  params: unknown;
  org: string | null;
  trigger: "retry";
  retryOf: string;
  scheduledFor: number | null;
}

export interface RetryDeps<T> {
  requireRun: (id: string, scope?: RunScope) => Promise<RunRecord>;
  /** Queues the new run (the engine's triggerRun: the current version, params validated again). */
  trigger: (workflow: string, input: RetryInput) => Promise<T>;
}

/**
 * A retry is a new run (a new id, trigger "retry", `retryOf` the original) that starts with the
 * original's succeeded steps, so their bodies never run again, and with its own attempts and
 * logs: lists and logs show both runs as they happened. It runs the workflow's current version,
 * the one a fix was deployed in; the original's params are validated against it again.
 */
export async function retryRun<T>(deps: RetryDeps<T>, id: string, scope?: RunScope): Promise<T> {
  const original = await deps.requireRun(id, scope);
  if (!RETRYABLE_STATUSES.includes(original.status)) {
    const why = original.status === "succeeded" ? "it succeeded: trigger a new run to do the work again" : `it is still ${original.status}: wait for it to end (or cancel it) first`;
    throw new BifrostError("RUN_NOT_RETRYABLE", `Run ${id} cannot be retried: ${why}`, { details: { id, status: original.status } });
  }
  try {
    return await deps.trigger(original.workflow, { params: original.params, org: original.org, trigger: "retry", retryOf: original.id, scheduledFor: original.scheduledFor });
  } catch (err) {
    if (!isBifrostError(err)) throw err;
    if (err.code === "WORKFLOW_NOT_FOUND") {
      throw new BifrostError("RUN_NOT_RETRYABLE", `Run ${id} cannot be retried: its workflow "${original.workflow}" is not registered any more`, {
        details: { id, workflow: original.workflow },
        fix: "Register the workflow again, then retry the run.",
        cause: err,
      });
    }
    if (err.code === "INVALID_PARAMS") {
      throw new BifrostError("RUN_NOT_RETRYABLE", `Run ${id} cannot be retried: its params do not match the params schema of the current version of "${original.workflow}": ${err.message}`, {
        details: { id, workflow: original.workflow, ...(typeof err.details === "object" && err.details !== null ? err.details : {}) },
        fix: "Trigger a new run with params that match the workflow's schema as it is now.",
        cause: err,
      });
    }
    throw err;
  }
}
