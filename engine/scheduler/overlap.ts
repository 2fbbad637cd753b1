/**
 * What a fire does while an earlier run of the same schedule and org is unfinished (pure):
 *
 * - `skip` (default): nothing; the fire is skipped;
 * - `queue`: it waits as the one pending fire and starts when the unfinished run ends; a pending
 *   fire already waiting keeps its place and later ones are dropped (at most one pending);
 * - `allow`: it starts anyway.
 *
 * A pending fire starts as soon as nothing is unfinished, before any new fire is decided.
 */

export type Overlap = "skip" | "queue" | "allow";

export interface OverlapState {
  /** A queued or running run of this schedule and org exists. */
  unfinished: boolean;
  /** The instant of the fire waiting to start (overlap: queue), if any. */
  pending: number | null;
}

export interface OverlapOutcome {
  /** Fire instants to start now, oldest first. */
  start: number[];
  /** The pending fire afterwards (null: none). */
  pending: number | null;
  skipped: number[];
  /** Fires that found a fire already pending (queue). */
  dropped: number[];
}

export function applyOverlap(policy: Overlap, state: OverlapState, fires: readonly number[]): OverlapOutcome {
  const out: OverlapOutcome = { start: [], pending: state.pending, skipped: [], dropped: [] };
  let unfinished = state.unfinished;
  if (out.pending !== null && !unfinished) {
    out.start.push(out.pending);
    out.pending = null;
    unfinished = true;
  }
  for (const fire of fires) {
    if (!unfinished || policy === "allow") {
      out.start.push(fire);
      unfinished = true;
    } else if (policy === "skip") out.skipped.push(fire);
    else if (out.pending === null) out.pending = fire;
    else out.dropped.push(fire);
  }
  return out;
}
