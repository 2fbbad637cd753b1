import { workflow } from "bifrost";

/**
 * The guide's second check: call a "who am I" endpoint with the connection's Authorization header
 * and say plainly what the answer means. `throwOnError: false` hands back 401/403 instead of
 * throwing, so the workflow can explain them.
 */
export default workflow({
  name: "test_api_call",
  description: "Calls a /me-style endpoint with a connection's token and explains 200/401/403",
  params: {
    type: "object",
    properties: {
      provider: { type: "string", minLength: 1, maxLength: 64, default: "Microsoft" },
      url: { type: "string", format: "uri", default: "https://graph.microsoft.com/v1.0/me" },
    },
    additionalProperties: false,
  },
  timeout: "2m",
  async run(ctx, params: { provider: string; url: string }) {
    const conn = await ctx.oauth.getConnection(params.provider);
    const res = await ctx.http.get(params.url, { headers: { authorization: conn.getAuthHeader() }, throwOnError: false });
    const meaning: Record<number, string> = {
      200: "the token works for this API",
      401: "the API refused the token: it is expired, revoked or meant for another API (audience); reconnect the connection",
      403: "the token is valid but lacks permission: add the scope or admin consent, then reconnect",
    };
    const verdict = meaning[res.status] ?? `unexpected answer ${res.status}`;
    if (res.ok) ctx.log.info(verdict, { status: res.status });
    else ctx.log.warn(verdict, { status: res.status, body: res.body });
    return { status: res.status, ok: res.ok, verdict };
  },
});
