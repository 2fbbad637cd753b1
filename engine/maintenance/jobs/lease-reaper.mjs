// Bree job "lease-reaper" (a worker thread; see engine/maintenance/maintenance.ts). It finds runs
// still marked running whose lease ended (their engine died or lost the database) on its own
// read-only connection and posts their ids back; the engine puts them back in the queue through
// storage (leases.reapExpired), which checks the expiry again in the same statement. It writes
// nothing and keeps nothing.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { file, clockOffsetMs, limit } = workerData;
const now = Date.now() + clockOffsetMs;
const db = new Database(file, { readonly: true, fileMustExist: true });
try {
  db.pragma("busy_timeout = 5000");
  const rows = db.prepare("select id from runs where status = 'running' and lease_until < ? limit ?").all(now, limit);
  parentPort.postMessage({ kind: "leases", ids: rows.map((r) => r.id), at: now });
} finally {
  db.close();
}
parentPort.postMessage("done");
