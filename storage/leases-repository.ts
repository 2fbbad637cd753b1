import type { Kysely } from "kysely";
import { cancelRequestedRuns, interruptSteps } from "./kysely-storage.js";
import type { Database } from "./schema.js";
import type { LeaseRepository } from "./types.js";

/**
 * Runs whose engine stopped renewing their lease (it died, or lost the database) look "running"
 * until some engine claims them. The reaper puts them back in the queue so that their status says
 * what is true and any engine with room takes them; the expiry is checked again in the same
 * statement, so a lease renewed since the reaper looked is never touched.
 */
export function leaseRepository(db: Kysely<Database>): LeaseRepository {
  return {
    async reapExpired(ids, now) {
      if (ids.length === 0) return [];
      return db.transaction().execute(async (trx) => {
        const expired = () => trx.updateTable("runs").where("id", "in", [...ids]).where("status", "=", "running").where("lease_until", "<", now);
        await cancelRequestedRuns(trx, expired(), now);
        const rows = await expired().set({ status: "queued", lease_owner: null, lease_until: null }).returning("id").execute();
        for (const { id } of rows) await interruptSteps(trx, id, now, "its engine stopped renewing the run's lease");
        return rows.map((r) => r.id);
      });
    },
  };
}
