import type { Kysely } from "kysely";
import type { Database } from "./schema.js";
import type { RunStatus, StatsRepository } from "./types.js";

/** Counts for metrics, read at scrape time: the database holds the queue, not any one process. */
export function statsRepository(db: Kysely<Database>): StatsRepository {
  return {
    async unfinishedRuns() {
      const rows = await db
        .selectFrom("runs")
        .select((eb) => ["workflow", "status", eb.fn.countAll<number>().as("count")])
        .where("status", "in", ["queued", "running"])
        .groupBy(["workflow", "status"])
        .execute();
      return rows.map((r) => ({ workflow: r.workflow, status: r.status as Extract<RunStatus, "queued" | "running">, count: Number(r.count) }));
    },
  };
}
