import { workflow } from "bifrost";

/** The smallest useful workflow: validated params, a log line, a result. */
export default workflow({
  name: "hello",
  description: "Greets someone and reports who triggered the run",
  params: {
    type: "object",
    properties: {
      name: { type: "string", minLength: 1, maxLength: 100, default: "world" },
    },
    additionalProperties: false,
  },
  timeout: "30s",
  async run(ctx, params: { name: string }) {
    ctx.log.info(`Hello, ${params.name}!`, { trigger: ctx.run.trigger });
    return { greeting: `Hello, ${params.name}!`, runId: ctx.run.id };
  },
});
