import { workflow } from "bifrost";

interface Sku {
  skuPartNumber: string;
  consumedUnits: number;
  prepaidUnits?: { enabled?: number };
}

/**
 * Before an E5-only operation (e.g. turning on Defender for Office 365 policies), check that the
 * tenant has an E5 license with a free seat, the way a Microsoft Graph script does with
 * GET /subscribedSkus. The org's own "Microsoft" connection is used (its tenant id fills
 * `{entity_id}` in the provider's token URL).
 */
export default workflow({
  name: "m365_license_check",
  description: "Checks a tenant's Microsoft 365 E5 licenses through Microsoft Graph before an E5-only change",
  params: {
    type: "object",
    properties: {
      graphUrl: { type: "string", format: "uri", default: "https://graph.microsoft.com/v1.0" },
      sku: { type: "string", default: "SPE_E5" },
    },
    additionalProperties: false,
  },
  timeout: "5m",
  async run(ctx, params: { graphUrl: string; sku: string }) {
    const skus = await ctx.step("subscribed skus", async () => {
      const res = await ctx.http.get(`${params.graphUrl}/subscribedSkus`, { connection: "Microsoft" });
      return ((res.body as { value?: Sku[] }).value ?? []).map((s) => ({ sku: s.skuPartNumber, enabled: s.prepaidUnits?.enabled ?? 0, consumed: s.consumedUnits }));
    });
    const e5 = skus.find((s) => s.sku === params.sku);
    if (!e5 || e5.enabled === 0) {
      ctx.log.warn(`the tenant has no ${params.sku} license: the E5-only operation is skipped`, { skus: skus.map((s) => s.sku) });
      return { eligible: false, reason: `no ${params.sku} license` };
    }
    const free = e5.enabled - e5.consumed;
    ctx.log.info(`${params.sku}: ${e5.consumed} of ${e5.enabled} seats used`, { free });
    return { eligible: free >= 0, sku: params.sku, seats: e5.enabled, used: e5.consumed, free };
  },
});
