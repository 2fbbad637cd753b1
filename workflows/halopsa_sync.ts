import { workflow } from "bifrost";

interface Ticket {
  id: number;
  summary: string;
  status: string;
  lastupdate: string;
}

interface TicketPage {
  page_no: number;
  page_size: number;
  record_count: number;
  tickets: Ticket[];
}

interface Params {
  baseUrl: string;
  targetUrl: string;
  pageSize: number;
}

/**
 * A long sync that survives a crash: tickets changed since the last sync are paged from a
 * HaloPSA-like API and upserted into a target 50 at a time. Every page fetch and every batch is a
 * durable step, so a run that resumes (after kill -9, on another engine) starts at the first batch
 * that did not commit. The batch in flight at the crash is sent again: the target upserts by ticket
 * id, so a repeat changes nothing. The "modified since" cursor lives in ctx.state per org and moves
 * only once every batch is in. Try it with scripts/halo-sim.ts (README: "Surviving a crash").
 */
export default workflow({
  name: "halopsa_sync",
  description: "Mirrors HaloPSA tickets changed since the last sync into a target, in durable batches of 50",
  params: {
    type: "object",
    properties: {
      baseUrl: { type: "string", default: "http://127.0.0.1:7080" },
      targetUrl: { type: "string", default: "http://127.0.0.1:7080/target" },
      pageSize: { type: "integer", minimum: 50, maximum: 1000, default: 500 },
    },
    additionalProperties: false,
  },
  // Nightly for two clients; catchUp "none": an engine started after 02:00 does not sync at once.
  schedule: { cron: "0 2 * * *", timezone: "UTC", orgs: ["contoso", "fabrikam"], catchUp: "none" },
  timeout: "1h",
  chunkTimeout: "5m",
  async run(ctx, params: Params) {
    const org = ctx.run.org ?? "default";
    // Read in a step: a resumed run pages with the cursor it started with, whatever was saved since.
    const since = await ctx.step("read cursor", async () => (await ctx.state.get<string>("modifiedSince")) ?? null);
    ctx.log.info(since ? `syncing tickets changed since ${since}` : "first sync: every ticket");

    let synced = 0;
    let newest = since;
    for (let page = 1; ; page++) {
      const tickets = await ctx.step(`fetch page ${page}`, async () => {
        const res = await ctx.http.get<TicketPage>(`${params.baseUrl}/${encodeURIComponent(org)}/api/tickets`, {
          query: { page_no: page, page_size: params.pageSize, modified_since: since },
        });
        return res.body.tickets;
      });
      if (tickets.length === 0) break;
      await ctx.chunks(`upsert page ${page}`, tickets, { size: 50 }, async (batch, index) => {
        // Keyed by ticket id at the target: sending a batch twice leaves the same rows.
        await ctx.http.post(`${params.targetUrl}/tickets`, { json: { org, batch: `${page}#${index}`, tickets: batch } });
        return batch.length;
      });
      synced += tickets.length;
      for (const t of tickets) if (newest === null || t.lastupdate > newest) newest = t.lastupdate;
      ctx.log.info(`page ${page}: ${tickets.length} tickets upserted`, { synced });
      if (tickets.length < params.pageSize) break;
    }

    if (newest !== since) await ctx.step("save cursor", () => ctx.state.set("modifiedSince", newest));
    return { org, since, synced, modifiedSince: newest };
  },
});
