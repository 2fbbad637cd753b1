/**
 * The scheduler's public surface. Pure parts: cron and DST math (cron.ts), the expression in words
 * (describe.ts), catch-up planning (plan.ts) and overlap decisions (overlap.ts). The loop
 * (loop.ts) is handed its I/O; scheduler.ts wires it to storage, the registry and events.
 */
export { compileCron, cronError, CRON_MAX_LENGTH, firesBetween, isValidTimeZone, nextFire, nextFireTime, prevFire, TIMEZONE_MAX_LENGTH, type CompiledCron } from "./cron.js";
export { describeCron } from "./describe.js";
export { DEFAULT_GRACE_MS, MAX_CATCH_UP_FIRES, planFires, type CatchUp, type Plan, type PlanInput } from "./plan.js";
export { applyOverlap, type Overlap, type OverlapOutcome, type OverlapState } from "./overlap.js";
