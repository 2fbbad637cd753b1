import { BifrostError } from "../../common/errors.js";
import type { RunRecord, Storage } from "../../storage/types.js";
import type { RunScope } from "../auth/org.js";
import type { EngineEvents } from "../events.js";

export interface CancelDeps {
  storage: Storage;
  now: () => number;
  events?: EngineEvents;
  /** The run as the caller may see it (RUN_NOT_FOUND otherwise, also for another org's run). */
  requireRun: (id: string, scope?: RunScope) => Promise<RunRecord>;
  /** Stops the run at once if this process executes it; other engines see the request in storage. */
  stopHere?: (id: string) => boolean;
}

export interface Cancelled {
  run: RunRecord;
  /** `cancelled`: it is over (it was queued, or nobody held it); `requested`: its engine stops it now. */
  outcome: "cancelled" | "requested";
}

/**
 * Cancels a run wherever it is. A queued run never starts. A running one is stopped by the engine
 * that executes it, in this process at once, in another within its cancel check (half a second):
 * the request is a column, so it survives that engine dying and the run never goes back to the
 * queue. A run that has finished is RUN_NOT_CANCELLABLE.
 */
export async function cancelRun(deps: CancelDeps, id: string, scope?: RunScope): Promise<Cancelled> {
  // The org check comes first: a run's org never changes, so it still holds when the cancel lands.
  await deps.requireRun(id, scope);
  const result = await deps.storage.runs.cancel(id, deps.now());
  if (!result) throw new BifrostError("RUN_NOT_FOUND", `No run with id "${id}"`, { details: { id } });
  const { run, state } = result;
  if (state === "finished") {
    throw new BifrostError("RUN_NOT_CANCELLABLE", `Run ${id} has already finished (${run.status}): there is nothing to cancel`, { details: { id, status: run.status } });
  }
  if (state === "cancelled") deps.events?.emit("run:finished", { run });
  else deps.stopHere?.(id);
  return { run, outcome: state };
}
