import { workflow } from "bifrost";

interface Device {
  id: string;
  os: string;
  patchedDaysAgo: number;
}

/**
 * Steps and chunks: an inventory is fetched once (a durable step), then checked in chunks of 25.
 * If the engine stops midway, the run resumes at the first chunk that did not finish.
 * (The inventory is generated here; a real one would come from ctx.http once that lands.)
 */
export default workflow({
  name: "device_report",
  description: "Checks a client's device inventory for patch compliance, in durable chunks",
  params: {
    type: "object",
    properties: {
      devices: { type: "integer", minimum: 1, maximum: 10000, default: 120 },
      maxPatchAgeDays: { type: "integer", minimum: 1, default: 30 },
    },
    additionalProperties: false,
  },
  timeout: "10m",
  chunkTimeout: "1m",
  async run(ctx, params: { devices: number; maxPatchAgeDays: number }) {
    const inventory = await ctx.step("fetch inventory", () => {
      const oses = ["Windows 11", "Windows 10", "macOS 15", "Ubuntu 24.04"];
      const devices: Device[] = [];
      for (let i = 0; i < params.devices; i++) {
        devices.push({ id: `dev-${String(i + 1).padStart(4, "0")}`, os: oses[i % oses.length]!, patchedDaysAgo: (i * 7) % 45 });
      }
      ctx.log.info("inventory fetched", { devices: devices.length });
      return devices;
    });

    const perChunk = await ctx.chunks("check", inventory, { size: 25 }, (batch, index) => {
      const stale = batch.filter((d) => d.patchedDaysAgo > params.maxPatchAgeDays).map((d) => d.id);
      ctx.log.info(`chunk ${index}: ${stale.length} of ${batch.length} devices need patching`);
      return { checked: batch.length, stale };
    });

    const stale = perChunk.flatMap((c) => c.stale);
    if (stale.length > 0) ctx.log.warn(`${stale.length} devices are out of patch compliance`, { first: stale.slice(0, 5) });
    return { checked: inventory.length, compliant: inventory.length - stale.length, stale: stale.length, chunks: perChunk.length };
  },
});
