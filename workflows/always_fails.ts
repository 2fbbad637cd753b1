import { workflow } from "bifrost";

/**
 * Fails on purpose, to show what a failure looks like: the error and its stack (pointing at this
 * file), the failed step, the retry attempts, and the step that was reused instead of re-run.
 */
export default workflow({
  name: "always_fails",
  description: "Fails on purpose: shows errors, stack traces and run-level retries",
  params: {
    type: "object",
    properties: { ticket: { type: "integer", default: 4242 } },
    additionalProperties: false,
  },
  retry: { attempts: 2, backoff: "fixed", delay: "1s" },
  async run(ctx, params: { ticket: number }) {
    const ticket = await ctx.step("load ticket", () => {
      ctx.log.info("loading ticket (runs once, reused by the retry)", { ticket: params.ticket });
      return { id: params.ticket, client: "Contoso" };
    });
    await ctx.step("update ticket", () => {
      ctx.log.warn(`attempt ${ctx.run.attempt}: updating ticket ${ticket.id}`);
      throw new Error(`HaloPSA rejected the update of ticket ${ticket.id}: status "Closed" is final`);
    });
    return { updated: true };
  },
});
