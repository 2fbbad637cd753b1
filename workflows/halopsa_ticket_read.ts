import { workflow } from "bifrost";

interface Ticket {
  id: number;
  summary: string;
  status_id?: number;
  client_name?: string;
}

/**
 * Reads a client's open tickets from HaloPSA with the "HaloPSA" connection (client credentials).
 * ctx.http adds the fresh token, refreshes it once on a 401, and waits out HaloPSA's rate limits.
 */
export default workflow({
  name: "halopsa_ticket_read",
  description: "Reads open HaloPSA tickets with the HaloPSA connection",
  params: {
    type: "object",
    properties: {
      baseUrl: { type: "string", format: "uri", default: "https://halo.example.com" },
      pageSize: { type: "integer", minimum: 1, maximum: 100, default: 50 },
    },
    additionalProperties: false,
  },
  timeout: "5m",
  async run(ctx, params: { baseUrl: string; pageSize: number }) {
    const res = await ctx.http.get(`${params.baseUrl}/api/tickets`, {
      connection: "HaloPSA",
      query: { open_only: "true", page_size: String(params.pageSize), page_no: "1" },
    });
    const body = res.body as { record_count?: number; tickets?: Ticket[] };
    const tickets = (body.tickets ?? []).map((t) => ({ id: t.id, summary: t.summary, client: t.client_name ?? null }));
    ctx.log.info(`read ${tickets.length} open tickets`, { total: body.record_count ?? tickets.length });
    return { count: tickets.length, total: body.record_count ?? tickets.length, tickets };
  },
});
