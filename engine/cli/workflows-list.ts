import { workflowListView } from "../api/views.js";
import type { Engine } from "../engine.js";
import { clientFromEnv } from "./client.js";
import { err, out, problemLines, type WorkflowListing } from "./embedded.js";
import { table, yellow } from "./format.js";

/**
 * `bifrost workflows list`: what GET /api/workflows returns, `{ items, problems }`, from the
 * workflows directory (embedded) or from the server (BIFROST_URL): a table, and on stderr the
 * modules that did not load and the workflows that serve their last good version.
 */
export async function listWorkflowsCommand(options: { json: boolean }, openEngine: () => Promise<Engine>): Promise<number> {
  const client = clientFromEnv();
  const listing = client ? await client.get<WorkflowListing>("/api/workflows") : await embedded(openEngine);
  if (options.json) {
    out(JSON.stringify(listing, null, 2));
    return 0;
  }
  const { items } = listing;
  if (items.length === 0) out("no workflows registered");
  else {
    out(
      table([
        ["NAME", "SCHEDULE", "VERSION", "SOURCE", "DESCRIPTION"],
        ...items.map((w) => [w.name, w.schedule ? `${w.schedule.cron} (${w.schedule.timezone})` : "-", w.version, w.file ? w.file : w.sourceKind, w.description ?? ""]),
      ]),
    );
  }
  for (const line of problemLines(listing)) err(yellow(line));
  return 0;
}

async function embedded(openEngine: () => Promise<Engine>): Promise<WorkflowListing> {
  const engine = await openEngine();
  try {
    return workflowListView(engine.registry, engine.now());
  } finally {
    await engine.stop(0);
  }
}
