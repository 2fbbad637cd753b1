import type { Kysely } from "kysely";
import { fenced } from "./kysely-storage.js";
import type { Database } from "./schema.js";
import type { ChunkProgress, ChunkRepository } from "./types.js";

const CHUNK_INDEX = /^\d{1,10}$/;

/**
 * Chunk progress of runs. Only the total is stored (when a ctx.chunks call starts); `done` is
 * counted from the committed chunk steps `name#i`, the records a resume trusts, so what a person
 * sees is what the run will skip.
 */
export function chunkRepository(db: Kysely<Database>): ChunkRepository {
  return {
    async start(lease, name, total, now) {
      await fenced(db, lease, (trx) =>
        trx
          .insertInto("run_chunks")
          .values({ run_id: lease.runId, name, total, started_at: now })
          .onConflict((oc) => oc.columns(["run_id", "name"]).doUpdateSet({ total }))
          .execute(),
      );
    },

    async listForRun(runId) {
      const chunks = await db.selectFrom("run_chunks").select(["name", "total"]).where("run_id", "=", runId).orderBy("started_at").orderBy("name").execute();
      if (chunks.length === 0) return [];
      const committed = await db.selectFrom("steps").select("name").where("run_id", "=", runId).where("status", "=", "succeeded").execute();
      const done = new Map<string, number>();
      for (const { name } of committed) {
        // The name before the last "#" is the chunks call: a chunks call may itself be named "a#1".
        const hash = name.lastIndexOf("#");
        if (hash < 1 || !CHUNK_INDEX.test(name.slice(hash + 1))) continue;
        const call = name.slice(0, hash);
        done.set(call, (done.get(call) ?? 0) + 1);
      }
      return chunks.map((c): ChunkProgress => ({ name: c.name, done: Math.min(done.get(c.name) ?? 0, c.total), total: c.total }));
    },
  };
}
