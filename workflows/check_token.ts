import { workflow } from "bifrost";

/**
 * The troubleshooting guide's first check, as a workflow: can the engine hand out a token for this
 * connection, when does it expire, which scopes did the provider grant? The token itself never
 * reaches a log line or the result (the engine replaces it with "[redacted]" anyway).
 */
export default workflow({
  name: "check_token",
  description: "Reads an OAuth connection and reports its expiry and granted scopes",
  params: {
    type: "object",
    properties: { provider: { type: "string", minLength: 1, maxLength: 64, default: "Microsoft" } },
    additionalProperties: false,
  },
  timeout: "1m",
  async run(ctx, params: { provider: string }) {
    const conn = await ctx.oauth.getConnection(params.provider);
    const report = {
      provider: params.provider,
      org: ctx.run.org,
      expired: conn.isExpired(),
      expiresAt: conn.expiresAt.toISOString(),
      expiresIn: conn.expiresIn,
      tokenType: conn.tokenType,
      scopes: [...conn.scopes],
    };
    ctx.log.info(report.expired ? "token is expired" : `token is valid for ${Math.round(conn.expiresIn / 60)} more minutes`, report);
    return report;
  },
});
