// Bree job "schedule-check" (a worker thread; see engine/maintenance/maintenance.ts). It reads the
// schedules table on its own read-only connection, so the scan never blocks the event loop that
// fires schedules, and posts back the (workflow, org) of the rows the engine must look at again:
// changed by another process since the last check (paused, resumed, a new cron or zone), overdue
// (a fire more than the grace period late: missed while no engine ran), or holding a pending fire.
// It writes nothing and keeps nothing: the database is the source of truth, the engine decides.
// Plain JavaScript on better-sqlite3: a worker that loaded the TypeScript storage layer would cost
// a second of CPU each run.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { file, clockOffsetMs, sinceMs, graceMs, limit } = workerData;
const now = Date.now() + clockOffsetMs;
const db = new Database(file, { readonly: true, fileMustExist: true });
try {
  // A reader waits here, on its own thread, never on the engine's.
  db.pragma("busy_timeout = 5000");
  const rows = db
    .prepare(
      `select workflow, org from schedules
       where changed_at > ? or (paused = 0 and next_fire_at < ?) or pending_for is not null
       order by changed_at limit ?`,
    )
    .all(now - sinceMs, now - graceMs, limit);
  parentPort.postMessage({ kind: "schedules", keys: rows.map((r) => ({ workflow: r.workflow, org: r.org === "" ? null : r.org })), at: now });
} finally {
  db.close();
}
parentPort.postMessage("done");
