import { BifrostError } from "../../common/errors.js";
import { scheduleView } from "../api/routes/schedules.js";
import { runView } from "../api/views.js";
import type { Engine } from "../engine.js";
import { clientFromEnv, type ApiClient } from "./client.js";
import { withEngine as embedded } from "./embedded.js";
import { dim, statusText, table, yellow } from "./format.js";

/**
 * `bifrost schedules list|pause|resume|trigger`: embedded on the data directory (the engine is
 * opened, never started: nothing fires here), or against a server when BIFROST_URL and
 * BIFROST_API_KEY are set. `--org` picks one org of a schedule's `orgs`; without it a command acts
 * on every org of the schedule.
 */

type ScheduleItem = ReturnType<typeof scheduleView>;
type RunItem = ReturnType<typeof runView>;

const out = (text: string) => process.stdout.write(`${text}\n`);
const err = (text: string) => process.stderr.write(`${text}\n`);

function usage(message: string): never {
  throw new BifrostError("CLI_USAGE", message);
}

export interface SchedulesOptions {
  json: boolean;
  workflow?: string | undefined;
  org?: string | undefined;
}

export async function schedulesCommand(sub: string | undefined, rest: string[], options: SchedulesOptions, openEngine: () => Promise<Engine>): Promise<number> {
  const client = clientFromEnv();
  if (sub === "list" || sub === undefined) {
    if (rest.length > 0) usage(`schedules list takes no arguments (got "${rest[0]}"); filter with --workflow and --org`);
    const items = client ? await listFromServer(client, options) : await embedded(openEngine, async (e) => (await e.scheduling.scheduler.list(filters(options))).map(scheduleView));
    printList(items, options.json);
    return 0;
  }
  if (sub !== "pause" && sub !== "resume" && sub !== "trigger") usage(`unknown command "schedules ${sub}"; try list, pause, resume or trigger`);
  const workflow = rest[0];
  if (!workflow) usage(`missing argument: bifrost schedules ${sub} <workflow> [--org ORG]`);
  if (rest.length > 1) usage(`schedules ${sub} takes one workflow name (got ${rest.length})`);
  const target = options.org === undefined ? {} : { org: options.org };
  if (sub === "trigger") {
    const runs = client
      ? (await client.request<{ runs: RunItem[] }>("POST", `/api/schedules/${encodeURIComponent(workflow)}/trigger`, { body: target })).body.runs
      : await embedded(openEngine, async (e) => (await e.scheduling.scheduler.trigger(workflow, target)).map((r) => runView(r)));
    if (options.json) out(JSON.stringify({ runs }, null, 2));
    else {
      for (const run of runs) out(run.id);
      err(dim(`queued ${runs.length} run(s) of ${workflow} with trigger "schedule"${client ? "" : "; an engine serving this data directory (bifrost start) runs them"}`));
    }
    return 0;
  }
  const items = client
    ? (await client.request<{ items: ScheduleItem[] }>("POST", `/api/schedules/${encodeURIComponent(workflow)}/${sub}`, { body: target })).body.items
    : await embedded(openEngine, async (e) => (await (sub === "pause" ? e.scheduling.scheduler.pause(workflow, target) : e.scheduling.scheduler.resume(workflow, target))).map(scheduleView));
  printList(items, options.json);
  if (!options.json) err(dim(sub === "pause" ? "paused: no fire happens and none is kept for later" : "resumed: it fires from its next fire time; the paused time is not replayed"));
  return 0;
}

function filters(options: SchedulesOptions): { workflow?: string; org?: string } {
  return { ...(options.workflow !== undefined && { workflow: options.workflow }), ...(options.org !== undefined && { org: options.org }) };
}

async function listFromServer(client: ApiClient, options: SchedulesOptions): Promise<ScheduleItem[]> {
  return (await client.get<{ items: ScheduleItem[] }>("/api/schedules", filters(options))).items;
}

function printList(items: ScheduleItem[], json: boolean): void {
  if (json) {
    out(JSON.stringify({ items }, null, 2));
    return;
  }
  if (items.length === 0) {
    out("no schedules");
    return;
  }
  out(
    table([
      ["WORKFLOW", "ORG", "CRON", "ZONE", "NEXT FIRE", "LAST FIRE", "LAST RUN", "WHEN"],
      ...items.map((s) => [
        s.workflow,
        s.org ?? "-",
        s.cron,
        s.timezone,
        s.paused ? yellow("paused") : (s.nextFireAt ?? "never"),
        s.lastFireAt ?? "-",
        s.lastRunStatus ? statusText(s.lastRunStatus) : "-",
        s.description,
      ]),
    ]),
  );
}
