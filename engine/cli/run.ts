import { BifrostError, isBifrostError } from "../../common/errors.js";
import type { LogRecord, RunRecord } from "../../storage/types.js";
import { runView, type RunView } from "../api/views.js";
import type { Engine } from "../engine.js";
import { clientFromEnv, type ApiClient } from "./client.js";
import { err, exitState, keptVersionText, type KeptVersion, openCliEngine, out, SHUTDOWN_MARGIN_MS } from "./embedded.js";
import { dim, errorText, logLine, runDuration, statusText, yellow, type PrintableLogLine } from "./format.js";

/**
 * `bifrost run <workflow>` and `bifrost runs retry <run-id>`: start a run, stream its log lines as
 * they happen, print the result and exit 0 only when it succeeded (130 when cancelled, 1 else).
 * Embedded, the run executes in this process; with BIFROST_URL, on the server, followed over its
 * log stream. Ctrl-C cancels the run either way.
 */

export interface RunCommandOptions {
  json: boolean;
  params?: string | undefined;
  org?: string | undefined;
}

export type RunWithSteps = Extract<RunView, { steps: unknown }>;

export async function runCommand(name: string, options: RunCommandOptions): Promise<number> {
  const params = parseParams(options.params);
  const org = options.org ?? null;
  const client = clientFromEnv();
  if (client) {
    return followRemote(client, options, async () => {
      const workflow = await client.get<KeptVersion>(`/api/workflows/${encodeURIComponent(name)}`);
      if (workflow.lastError) err(yellow(keptVersionText(workflow)));
      const { body } = await client.request<{ id: string }>("POST", `/api/workflows/${encodeURIComponent(name)}/runs`, { body: { params, ...(org !== null && { org }) } });
      return { id: body.id, workflow: name, retryOf: null };
    });
  }
  return runEmbedded(options, (engine) => {
    warnIfLastGoodVersion(engine, name);
    return engine.triggerRun(name, { params, org, trigger: "cli" }, { adopt: true });
  });
}

export async function retryCommand(id: string, options: RunCommandOptions): Promise<number> {
  const client = clientFromEnv();
  if (client) {
    return followRemote(client, options, async () => {
      const { body } = await client.request<RunWithSteps>("POST", `/api/runs/${encodeURIComponent(id)}/retry`);
      return { id: body.id, workflow: body.workflow, retryOf: body.retryOf };
    });
  }
  return runEmbedded(options, (engine) => engine.retry(id, undefined, { adopt: true }));
}

function parseParams(text: string | undefined): unknown {
  if (text === undefined) return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BifrostError("INVALID_JSON", `--params is not valid JSON: ${(e as Error).message}`);
  }
}

/** `bifrost run` warns only about the module it runs: which version runs when its text is rejected. */
function warnIfLastGoodVersion(engine: Engine, name: string): void {
  const workflow = engine.registry.get(name);
  const problem = workflow && engine.registry.problemFor(workflow);
  if (!workflow || !problem) return;
  err(
    yellow(
      keptVersionText({
        name: workflow.definition.name,
        version: workflow.version,
        updatedAt: new Date(workflow.updatedAt).toISOString(),
        file: workflow.file,
        lastError: problem.error,
      }),
    ),
  );
}

const startedText = (id: string, workflow: string, retryOf: string | null | undefined, where = "") =>
  dim(`run ${id} of ${workflow} started${retryOf ? ` (a retry of ${retryOf})` : ""}${where}`);

function printer(json: boolean): (line: PrintableLogLine) => void {
  return (line) => (json ? err(logLine(line)) : out(logLine(line)));
}

/** The run's record with `--json`; else how it ended, its error and its result. The exit status. */
function finish(view: RunWithSteps, json: boolean): number {
  if (json) out(JSON.stringify(view, null, 2));
  else {
    err(`${statusText(view.status)} in ${runDuration(view)}`);
    if (view.error) err(errorText(view.error));
    if (view.result !== null) out(JSON.stringify(view.result, null, 2));
  }
  return view.status === "succeeded" ? 0 : view.status === "cancelled" ? 130 : 1;
}

async function runEmbedded(options: RunCommandOptions, start: (engine: Engine) => Promise<{ run: RunRecord; done?: Promise<void> }>): Promise<number> {
  const engine = await openCliEngine();
  const { json } = options;
  const print = printer(json);
  try {
    engine.start({ claim: false, watch: false });
    let runId: string | undefined;
    const early: LogRecord[] = [];
    engine.events.on("run:queued", ({ run: queued }) => {
      if (!json) err(startedText(queued.id, queued.workflow, queued.retryOf));
    });
    engine.events.on("run:log", ({ runId: id, line }) => {
      if (runId === undefined) early.push(line);
      else if (id === runId) print(line);
    });
    const { run, done } = await start(engine);
    runId = run.id;
    // Ctrl-C cancels the run (it would otherwise be resumed later by any engine on this database).
    process.on("SIGINT", () => {
      engine.cancelRun(run.id).then(
        (cancelled) => cancelled || process.exit(130),
        () => process.exit(130),
      );
    });
    // SIGTERM (also sent when the launcher is gone): hand the run back as a server does and end.
    process.once("SIGTERM", () => {
      exitState.handingBack = true;
      const grace = engine.config.shutdownGraceMs;
      err(`SIGTERM: stopping (up to ${grace} ms); the run resumes from its last committed step on the next engine`);
      setTimeout(() => process.exit(143), grace + SHUTDOWN_MARGIN_MS).unref();
      engine.stop().then(
        () => process.exit(143),
        () => process.exit(143),
      );
    });
    for (const line of early.filter((l) => l.runId === run.id)) print(line);
    // Retries of a failed attempt run here too, unless a server process picks them up first.
    const finished = await engine.runHere(run.id, done ?? Promise.resolve());
    return finish(runView(finished, await engine.runDetail(run.id)) as RunWithSteps, json);
  } finally {
    await engine.stop(0);
  }
}

/** How long `runs cancel` and Ctrl-C wait for a server to confirm that the run stopped. */
export const CANCEL_WAIT_MS = 60_000;

async function followRemote(client: ApiClient, options: RunCommandOptions, start: () => Promise<{ id: string; workflow: string; retryOf: string | null | undefined }>): Promise<number> {
  const { json } = options;
  const started = await start();
  if (!json) err(startedText(started.id, started.workflow, started.retryOf, ` on ${client.url}`));
  let cancelling = false;
  process.on("SIGINT", () => {
    if (cancelling) process.exit(130);
    cancelling = true;
    err(dim("cancelling the run (Ctrl-C again to stop waiting)"));
    // The stream goes on until the run ends, cancelled.
    client.request("POST", `/api/runs/${encodeURIComponent(started.id)}/cancel`).catch((e: unknown) => {
      // It ended meanwhile: the stream says how.
      if (isBifrostError(e) && e.code === "RUN_NOT_CANCELLABLE") return;
      err(`error ${isBifrostError(e) ? e.code : "INTERNAL"}: could not cancel the run: ${(e as Error).message}`);
      process.exit(130);
    });
  });
  // The run lives on the server: leaving does not stop it.
  process.once("SIGTERM", () => {
    err(`SIGTERM: leaving run ${started.id} to the server`);
    process.exit(143);
  });
  await client.followLogs(started.id, { onLine: printer(json) });
  return finish(await client.get<RunWithSteps>(`/api/runs/${encodeURIComponent(started.id)}`), json);
}
