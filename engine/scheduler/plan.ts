import { nextFire, prevFire, type CompiledCron } from "./cron.js";

/**
 * Which fires to create when a schedule is looked at (pure). Used alike for a fire that is due now
 * and after downtime: fires found late by at most `graceMs` are on time (a busy moment, a restart of
 * a few seconds); older ones were missed and follow `catchUp`:
 *
 * - `none`: missed fires are dropped;
 * - `latest`: the most recent missed fire runs, unless an on-time fire supersedes it;
 * - `all`: every fire of the last `catchUpWindowMs`, at most `maxFires` (the most recent ones).
 *
 * Missed fires older than the window are dropped whatever the policy.
 */

export type CatchUp = "none" | "latest" | "all";

/** A fire found at most this late counts as on time. @default 60 s */
export const DEFAULT_GRACE_MS = 60_000;
/** The most fires one look at a schedule creates (catchUp: all). */
export const MAX_CATCH_UP_FIRES = 100;

export interface PlanInput {
  /** The schedule's first fire not yet handled (it is a fire of the expression). */
  next: number;
  now: number;
  catchUp: CatchUp;
  catchUpWindowMs: number;
  graceMs?: number;
  maxFires?: number;
}

export interface Plan {
  /** Fire instants to create, oldest first. */
  fires: number[];
  /** Some due fires are not in `fires` (missed and dropped by the policy, the window or the cap). */
  dropped: boolean;
  /** The first fire after `now`; null when the expression never fires again. */
  next: number | null;
}

/** Fires in [lower, now], newest first, at most `limit`. */
function backwards(c: CompiledCron, lower: number, now: number, limit: number): number[] {
  const out: number[] = [];
  let t = now + 1;
  while (out.length < limit) {
    const p = prevFire(c, t);
    if (p === null || p < lower) break;
    out.push(p);
    t = p;
  }
  return out;
}

export function planFires(c: CompiledCron, input: PlanInput): Plan {
  const { next, now } = input;
  if (next > now) return { fires: [], dropped: false, next };
  const grace = input.graceMs ?? DEFAULT_GRACE_MS;
  const max = input.maxFires ?? MAX_CATCH_UP_FIRES;
  // The usual case, a fire looked at on time with no other fire due since: one step of cron math.
  if (next >= now - grace && max > 0) {
    const after = nextFire(c, next);
    if (after === null || after > now) return { fires: [next], dropped: false, next: after };
  }
  const onTimeFrom = Math.max(next, now - grace);
  const windowFrom = Math.max(next, now - input.catchUpWindowMs);
  let chosen: number[];
  switch (input.catchUp) {
    case "none":
      chosen = backwards(c, onTimeFrom, now, max);
      break;
    case "latest": {
      chosen = backwards(c, onTimeFrom, now, max);
      if (chosen.length === 0) chosen = backwards(c, windowFrom, now, 1);
      break;
    }
    case "all":
      chosen = backwards(c, Math.min(windowFrom, onTimeFrom), now, max);
      break;
  }
  const fires = chosen.reverse();
  const earliest = fires[0];
  // `next` itself was due; anything between it and the earliest chosen fire was left out.
  const dropped = earliest === undefined || (earliest > next && (prevFire(c, earliest) ?? -Infinity) >= next);
  return { fires, dropped, next: nextFire(c, now) };
}
