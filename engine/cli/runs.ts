import { BifrostError } from "../../common/errors.js";
import { FINISHED_STATUSES, type RunRecord, type RunStatus, type RunTrigger, type Storage } from "../../storage/types.js";
import { decodeCursor, encodeCursor, parseTime } from "../api/cursor.js";
import { logView, runView } from "../api/views.js";
import { cancelRun } from "../control/cancel.js";
import { clientFromEnv, type ApiClient, type LogLineView } from "./client.js";
import { err, out, withStorage } from "./embedded.js";
import { dim, logLine, runDetails, runDuration, statusText, table, yellow } from "./format.js";
import { CANCEL_WAIT_MS, retryCommand, type RunWithSteps } from "./run.js";

/**
 * `bifrost runs list|show|logs|cancel|retry`. Each reads the data directory, or asks the server
 * when BIFROST_URL and BIFROST_API_KEY are set; both give the API's shapes, so output is the same.
 */

export interface RunsOptions {
  json: boolean;
  follow: boolean;
  workflow?: string | undefined;
  status?: string | undefined;
  trigger?: string | undefined;
  org?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  limit?: string | undefined;
  cursor?: string | undefined;
  params?: string | undefined;
}

type RunListView = Omit<RunWithSteps, "steps">;
interface RunPage {
  items: RunListView[];
  nextCursor: string | null;
}

interface RunQuery {
  workflow?: string;
  status?: RunStatus;
  trigger?: RunTrigger;
  org?: string;
  since?: number;
  until?: number;
  cursor?: string;
  limit: number;
}

/** Where the runs commands read and act: the data directory, or a server. */
interface RunsSource {
  list(query: RunQuery): Promise<RunPage>;
  show(id: string): Promise<RunWithSteps>;
  /** Every line after `after`, then (with `follow`) each new one until the run ends. */
  logs(id: string, follow: boolean, onLine: (line: LogLineView) => void): Promise<void>;
  /** Cancels and waits (a while) for the run to end; the run as it then stands. */
  cancel(id: string): Promise<RunWithSteps>;
}

const STATUSES: RunStatus[] = ["queued", "running", "succeeded", "failed", "cancelled", "timed_out"];
const TRIGGERS: RunTrigger[] = ["api", "schedule", "webhook", "cli", "retry"];
/** The same page bounds as GET /api/runs (1 to 200); a terminal page is shorter by default. */
const MAX_PAGE = 200;
const LOG_PAGE = 1000;
/** How often the embedded `--follow` and `cancel` look at the database again. */
const POLL_MS = 250;

function usage(message: string): never {
  throw new BifrostError("CLI_USAGE", message);
}

function need(value: string | undefined, form: string): string {
  if (!value) usage(`missing argument: bifrost ${form}`);
  return value;
}

export async function runsCommand(sub: string | undefined, rest: string[], options: RunsOptions): Promise<number> {
  const id = (form: string) => {
    if (rest.length > 1) usage(`bifrost ${form} takes one run id (got ${rest.length})`);
    return need(rest[0], form);
  };
  if (sub === "retry") {
    if (options.params !== undefined || options.org !== undefined) usage("runs retry takes no --params or --org: the retry runs with the params and org of the run it retries");
    return retryCommand(id("runs retry <run-id>"), { json: options.json });
  }
  const action = pick(sub, id, options);
  const client = clientFromEnv();
  if (client) return action(remoteSource(client));
  return withStorage((storage) => action(storedSource(storage)));
}

/** The command to run against whichever source the environment selects. */
function pick(sub: string | undefined, id: (form: string) => string, options: RunsOptions): (source: RunsSource) => Promise<number> {
  switch (sub) {
    case undefined:
    case "list":
      return (s) => listRuns(s, options);
    case "show": {
      const runId = id("runs show <run-id>");
      return (s) => showRun(s, runId, options);
    }
    case "logs": {
      const runId = id("runs logs <run-id>");
      return (s) => showLogs(s, runId, options);
    }
    case "cancel": {
      const runId = id("runs cancel <run-id>");
      return (s) => cancel(s, runId, options);
    }
    default:
      return usage(`unknown command "runs ${sub}"; try list, show, logs, cancel or retry`);
  }
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], option: string): T | undefined {
  if (value !== undefined && !allowed.includes(value as T)) usage(`${option} must be one of ${allowed.join(", ")}`);
  return value as T | undefined;
}

function cliCursor(cursor: string): string {
  try {
    decodeCursor(cursor);
    return cursor;
  } catch {
    throw new BifrostError("VALIDATION_FAILED", "--cursor is invalid", {
      fix: "Pass --cursor the cursor printed with the previous page (nextCursor with --json) unchanged, or leave it out for the first page.",
    });
  }
}

/** The filters and cursor of GET /api/runs, as options; the page has the API's shape. */
async function listRuns(source: RunsSource, options: RunsOptions): Promise<number> {
  const { workflow, org, limit, cursor } = options;
  const status = oneOf(options.status, STATUSES, "--status");
  const trigger = oneOf(options.trigger, TRIGGERS, "--trigger");
  const n = limit === undefined ? 20 : /^\d+$/.test(limit) ? Number(limit) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) usage(`--limit must be an integer from 1 to ${MAX_PAGE}`);
  const since = parseTime(options.since, "--since");
  const until = parseTime(options.until, "--until");
  const page = await source.list({
    ...(workflow !== undefined && { workflow }),
    ...(status !== undefined && { status }),
    ...(trigger !== undefined && { trigger }),
    ...(org !== undefined && { org }),
    ...(since !== undefined && { since }),
    ...(until !== undefined && { until }),
    ...(cursor !== undefined && { cursor: cliCursor(cursor) }),
    limit: n,
  });
  if (options.json) {
    out(JSON.stringify(page, null, 2));
    return 0;
  }
  if (page.items.length === 0) out("no runs");
  else {
    out(
      table([
        ["ID", "WORKFLOW", "STATUS", "TRIGGER", "QUEUED", "DURATION"],
        ...page.items.map((r) => [r.id, r.workflow, statusText(r.status), r.trigger, r.queuedAt ?? "-", runDuration(r)]),
      ]),
    );
  }
  if (page.nextCursor) err(dim(`more: add --cursor ${page.nextCursor}`));
  return 0;
}

async function showRun(source: RunsSource, id: string, options: RunsOptions): Promise<number> {
  const view = await source.show(id);
  out(options.json ? JSON.stringify(view, null, 2) : runDetails(view, view.steps));
  return 0;
}

async function showLogs(source: RunsSource, id: string, options: RunsOptions): Promise<number> {
  await source.logs(id, options.follow, (line) => out(options.json ? JSON.stringify(line) : logLine(line)));
  return 0;
}

async function cancel(source: RunsSource, id: string, options: RunsOptions): Promise<number> {
  const view = await source.cancel(id);
  if (options.json) out(JSON.stringify(view, null, 2));
  else if (view.status === "cancelled") out(`run ${id} cancelled`);
  else if (view.status === "running") err(yellow(`cancel requested for run ${id}, but it is still running: its engine has not stopped it yet (a stopped engine's run ends cancelled once its lease runs out)`));
  else out(`run ${id} ${statusText(view.status)} before the cancel reached it`);
  return view.status === "cancelled" ? 0 : 1;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function storedSource(storage: Storage): RunsSource {
  const find = async (id: string): Promise<RunRecord> => {
    const run = await storage.runs.get(id);
    if (!run) throw new BifrostError("RUN_NOT_FOUND", `No run with id "${id}"`, { details: { id } });
    return run;
  };
  const withSteps = async (run: RunRecord) => runView(run, { steps: await storage.steps.listForRun(run.id), chunks: await storage.chunks.listForRun(run.id) }) as RunWithSteps;
  return {
    async list(q) {
      const runs = await storage.runs.list({
        ...(q.workflow !== undefined && { workflow: q.workflow }),
        ...(q.status !== undefined && { status: q.status }),
        ...(q.trigger !== undefined && { trigger: q.trigger }),
        ...(q.org !== undefined && { org: q.org }),
        ...(q.since !== undefined && { since: q.since }),
        ...(q.until !== undefined && { until: q.until }),
        ...(q.cursor !== undefined && { beforeId: decodeCursor(q.cursor) }),
        limit: q.limit + 1,
      });
      const page = runs.slice(0, q.limit);
      const last = page[page.length - 1];
      return { items: page.map((r) => runView(r) as RunListView), nextCursor: runs.length > q.limit && last ? encodeCursor(last.id) : null };
    },
    async show(id) {
      return withSteps(await find(id));
    },
    async logs(id, follow, onLine) {
      let after = 0;
      for (;;) {
        // Read the run before its lines: once it is seen finished, every line it wrote is stored.
        const run = await find(id);
        for (;;) {
          const lines = await storage.logs.list(id, { afterSeq: after, limit: LOG_PAGE });
          for (const line of lines) onLine(logView(line) as LogLineView);
          after = lines[lines.length - 1]?.seq ?? after;
          if (lines.length < LOG_PAGE) break;
        }
        if (!follow || FINISHED_STATUSES.includes(run.status)) return;
        await sleep(POLL_MS);
      }
    },
    async cancel(id) {
      let { run } = await cancelRun({ storage, now: Date.now, requireRun: find }, id);
      // The engine executing the run stops it within its cancel check. One that is gone cannot:
      // once its lease has run out, the cancel ends the run here.
      const deadline = Date.now() + CANCEL_WAIT_MS;
      while (run.status === "running" && Date.now() < deadline) {
        await sleep(POLL_MS);
        run = await find(id);
        if (run.status === "running" && run.leaseUntil !== null && run.leaseUntil < Date.now()) run = (await storage.runs.cancel(id, Date.now()))?.run ?? run;
      }
      return withSteps(run);
    },
  };
}

function remoteSource(client: ApiClient): RunsSource {
  const runPath = (id: string) => `/api/runs/${encodeURIComponent(id)}`;
  return {
    list(q) {
      return client.get<RunPage>("/api/runs", {
        workflow: q.workflow,
        status: q.status,
        trigger: q.trigger,
        org: q.org,
        since: q.since,
        until: q.until,
        cursor: q.cursor,
        limit: q.limit,
      });
    },
    show(id) {
      return client.get<RunWithSteps>(runPath(id));
    },
    async logs(id, follow, onLine) {
      if (follow) {
        await client.followLogs(id, { onLine });
        return;
      }
      let after = 0;
      for (;;) {
        const page = await client.get<{ items: LogLineView[]; nextAfter: number | null }>(`${runPath(id)}/logs`, { after, limit: LOG_PAGE });
        for (const line of page.items) onLine(line);
        if (page.nextAfter === null) return;
        after = page.nextAfter;
      }
    },
    async cancel(id) {
      const { body } = await client.request<RunWithSteps>("POST", `${runPath(id)}/cancel`, { body: { wait: CANCEL_WAIT_MS }, timeoutMs: CANCEL_WAIT_MS + 30_000 });
      return body;
    },
  };
}
