// Bree job "lease-reaper" (a worker thread; see engine/maintenance/maintenance.ts). It finds runs
// still marked running whose lease ended (their engine died or lost the database) on its own
// read-only connection and posts their ids back; the engine puts them back in the queue through
// storage (leases.reapExpired), which checks the expiry again in the same statement. It writes
// nothing and keeps nothing.
import { readOnce } from "./read-once.mjs";

readOnce((db, now, { limit }) => {
  const rows = db.prepare("select id from runs where status = 'running' and lease_until < ? limit ?").all(now, limit);
  return { kind: "leases", ids: rows.map((r) => r.id), at: now };
});
