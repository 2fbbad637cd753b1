// Bree job "schedule-check" (a worker thread; see engine/maintenance/maintenance.ts). It reads the
// schedules table on its own read-only connection, so the scan never blocks the event loop that
// fires schedules, and posts back the (workflow, org) of the rows the engine must look at again:
// changed by another process since the last check (paused, resumed, a new cron or zone), overdue
// (a fire more than the grace period late: missed while no engine ran), or holding a pending fire.
// It writes nothing and keeps nothing: the database is the source of truth, the engine decides.
import { readOnce } from "./read-once.mjs";

readOnce((db, now, { sinceMs, graceMs, limit }) => {
  const rows = db
    .prepare(
      `select workflow, org from schedules
       where changed_at > ? or (paused = 0 and next_fire_at < ?) or pending_for is not null
       order by changed_at limit ?`,
    )
    .all(now - sinceMs, now - graceMs, limit);
  return { kind: "schedules", keys: rows.map((r) => ({ workflow: r.workflow, org: r.org === "" ? null : r.org })), at: now };
});
