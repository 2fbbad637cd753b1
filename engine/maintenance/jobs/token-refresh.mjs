// Bree job "token-refresh" (a worker thread; see engine/maintenance/maintenance.ts). It finds OAuth
// connections whose token expires within the window, and those whose last refresh failed for a
// transient reason and are due again, on its own read-only connection, and posts them back; the
// engine refreshes each one (under the connection's refresh lease, so two engines never both do).
// A connection that sits unused for weeks thus keeps a live refresh token. It writes nothing.
import { readOnce } from "./read-once.mjs";

readOnce((db, now, { limit, windowMs }) => {
  const rows = db
    .prepare(
      `select provider, org from oauth_connections
       where (status = 'healthy' and expires_at < ?) or (status = 'refresh_failed' and (next_retry_at is null or next_retry_at <= ?))
       order by expires_at limit ?`,
    )
    .all(now + windowMs, now, limit);
  return { kind: "tokens", keys: rows.map((r) => ({ provider: r.provider, org: r.org === "" ? null : r.org })), at: now };
});
