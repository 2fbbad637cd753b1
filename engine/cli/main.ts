import { isAbsolute, relative } from "node:path";
import { parseArgs } from "node:util";
import { openStorage } from "../../storage/index.js";
import { FINISHED_STATUSES, type RunStatus, type RunTrigger, type Storage } from "../../storage/types.js";
import { decodeCursor, encodeCursor, parseTime } from "../api/cursor.js";
import { logView, runView, workflowListView } from "../api/views.js";
import { loadConfig, type EngineConfig } from "../config.js";
import { Engine } from "../engine.js";
import type { RegisteredWorkflow, RegistrationProblem } from "../registry/registry.js";
import { BifrostError, hintFor, isBifrostError } from "../../common/errors.js";
import { createLogger } from "../logger.js";
import { startServer } from "../server.js";
import { dim, errorText, logLine, runDetails, runDuration, statusText, table, yellow } from "./format.js";
import { firstKeyText, keysCommand } from "./keys.js";
import { webhooksCommand } from "./webhooks.js";
import { deployCommand } from "./deploy.js";

const USAGE = `bifrost — workflow engine

Usage:
  bifrost start                          run the engine and HTTP API (port ${"$"}BIFROST_PORT, default 7071)
  bifrost run <workflow> [--params JSON] [--org ORG]
                                         run a workflow here, streaming its logs; exits 1 unless it succeeds
  bifrost workflows list                 registered workflows (and modules that failed to load)
  bifrost workflows deploy <file> [--name N]
                                         register a module file's text (as PUT /api/workflows/:name); N: the file's name
  bifrost runs list [--workflow W] [--status S] [--trigger T] [--org ORG] [--since TIME] [--until TIME]
                    [--limit N] [--cursor C]
                                         runs, newest first; a full page ends with the --cursor of the next
  bifrost runs show <run-id>             one run with its steps, result and error
  bifrost runs logs <run-id> [--follow]  a run's log lines
  bifrost keys create --role R [--org O] [--name N]
                                         a new API key (admin, operator or viewer), printed once
  bifrost keys list                      API keys (never their secrets)
  bifrost keys revoke <key-id>           refuse a key from now on
  bifrost webhooks show <workflow>       a webhook workflow's secret (stdout) and how to sign with it
  bifrost webhooks rotate <workflow>     replace the secret; the old one stops working at once

Options:
  --json     machine-readable output on stdout
  --help     this text

Environment: BIFROST_DATA_DIR (./data), BIFROST_WORKFLOWS_DIR (./workflows), BIFROST_PORT, BIFROST_HOST,
LOG_LEVEL, BIFROST_CONCURRENCY; see the README for the rest.`;

const out = (text: string) => process.stdout.write(`${text}\n`);
const err = (text: string) => process.stderr.write(`${text}\n`);

function usage(message: string): never {
  throw new BifrostError("CLI_USAGE", message);
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        params: { type: "string", short: "p" },
        org: { type: "string" },
        workflow: { type: "string", short: "w" },
        status: { type: "string" },
        trigger: { type: "string" },
        since: { type: "string" },
        until: { type: "string" },
        limit: { type: "string" },
        cursor: { type: "string" },
        follow: { type: "boolean", short: "f", default: false },
        role: { type: "string" },
        name: { type: "string" },
      },
    });
  } catch (e) {
    usage((e as Error).message);
  }
}

type Args = ReturnType<typeof parse>;

async function main(argv: string[]): Promise<number> {
  const args = parse(argv);
  const [command, sub, ...rest] = args.positionals;
  if (args.values.help || !command || command === "help") {
    out(USAGE);
    return command || args.values.help ? 0 : 2;
  }
  switch (command) {
    case "start":
      return start();
    case "run":
      if (!sub) usage("run needs a workflow name: bifrost run <workflow> [--params JSON]");
      return run(sub, args);
    case "workflows":
      if (sub === "deploy") return deployCommand(rest, args.values, openCliEngine);
      if (sub !== "list" && sub !== undefined) usage(`unknown command "workflows ${sub}"; try "workflows list" or "workflows deploy <file>"`);
      return listWorkflows(args);
    case "runs":
      if (sub === "list" || sub === undefined) return withStorage((s) => listRuns(s, args));
      if (sub === "show") return withStorage((s) => showRun(s, need(rest[0], "runs show <run-id>"), args));
      if (sub === "logs") return withStorage((s) => showLogs(s, need(rest[0], "runs logs <run-id>"), args));
      return usage(`unknown command "runs ${sub}"; try list, show or logs`);
    case "keys":
      return withStorage((s) => keysCommand(s, sub, rest, args.values));
    case "webhooks":
      return webhooksCommand(sub, rest, args.values, openCliEngine);
    default:
      return usage(`unknown command "${command}"`);
  }
}

function need(value: string | undefined, form: string): string {
  if (!value) usage(`missing argument: bifrost ${form}`);
  return value;
}

/** Commands that only read storage don't load or compile workflows. */
async function withStorage(fn: (storage: Storage) => Promise<number>): Promise<number> {
  const config = loadConfig();
  const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

async function start(): Promise<number> {
  const config = loadConfig();
  const server = await startServer(config);
  const { engine } = server;
  const workflows = engine.registry.list();
  err(`Bifrost listening on ${server.url} (pid ${process.pid}, data: ${config.dataDir}, ${engine.storage.dialect})`);
  // Written to stderr only, never through the engine log; before the workflows line, so that a
  // reader who has seen that line has seen the key.
  const firstKey = await engine.createFirstAdminKey();
  if (firstKey) err(firstKeyText(firstKey, server.url));
  err(`${workflows.length} workflow(s) from ${config.workflowsDir}: ${workflows.map((w) => w.definition.name).join(", ") || "none"}`);
  reportProblems(engine);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        err("forced exit");
        process.exit(1);
      }
      stopping = true;
      // Whatever happens while draining, this process ends: it must not outlive its command.
      setTimeout(() => {
        err("shutdown did not finish in time; exiting");
        process.exit(1);
      }, config.shutdownGraceMs + SHUTDOWN_MARGIN_MS).unref();
      err(`${signal}: draining runs (up to ${config.shutdownGraceMs} ms), press Ctrl-C again to force`);
      server.close().then(
        () => resolve(0),
        (e: unknown) => {
          err(String(e));
          resolve(1);
        },
      );
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
  });
}

function cliConfig(): EngineConfig {
  return loadConfig(process.env, { watch: false });
}

async function openCliEngine(): Promise<Engine> {
  const config = cliConfig();
  // The CLI speaks to people on stdout/stderr; engine logs go to stderr only when asked for.
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? "silent", destination: process.stderr });
  return Engine.open(config, { logger });
}

/** Beyond the grace period, how long closing the server and storage may take before exiting. */
const SHUTDOWN_MARGIN_MS = 5_000;
/** Set once `run` hands its run back on SIGTERM: the engine closing under it is then expected. */
let handingBack = false;

/** Every module that failed to load, and every workflow serving its last good version instead. */
function reportProblems(engine: Engine): void {
  for (const p of engine.registry.unloaded()) err(yellow(`not loaded: ${p.error.message}`));
  for (const w of engine.registry.list()) {
    const problem = engine.registry.problemFor(w);
    if (problem) err(yellow(keptVersionText(w, problem)));
  }
}

/** `bifrost run` warns only about the module it runs: which version runs when its text is rejected. */
function warnIfLastGoodVersion(engine: Engine, name: string): void {
  const workflow = engine.registry.get(name);
  const problem = workflow && engine.registry.problemFor(workflow);
  if (workflow && problem) err(yellow(keptVersionText(workflow, problem)));
}

/** Says which version of a workflow runs while its module's current text is rejected, and why. */
function keptVersionText(w: RegisteredWorkflow, problem: RegistrationProblem): string {
  const text = w.file ? `the current text of ${relativeToCwd(w.file)}` : "the module sent last";
  return (
    `warning: "${w.definition.name}" runs its last good version ${w.version} (registered ${new Date(w.updatedAt).toISOString()}): ` +
    `${text} was rejected: ${problem.error.code} ${problem.error.message}`
  );
}

function relativeToCwd(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}

async function run(name: string, args: Args): Promise<number> {
  let params: unknown = {};
  if (args.values.params !== undefined) {
    try {
      params = JSON.parse(args.values.params);
    } catch (e) {
      throw new BifrostError("INVALID_JSON", `--params is not valid JSON: ${(e as Error).message}`);
    }
  }
  const engine = await openCliEngine();
  const json = args.values.json;
  try {
    warnIfLastGoodVersion(engine, name);
    engine.start({ claim: false, watch: false });
    let runId: string | undefined;
    const early: Parameters<typeof logLine>[0][] = [];
    const print = (line: Parameters<typeof logLine>[0]) => (json ? err(logLine(line)) : out(logLine(line)));
    engine.events.on("run:queued", ({ run: queued }) => {
      if (!json) err(dim(`run ${queued.id} of ${queued.workflow} started`));
    });
    engine.events.on("run:log", ({ runId: id, line }) => {
      if (runId === undefined) early.push(line);
      else if (id === runId) print(line);
    });
    const { run, done } = await engine.triggerRun(name, { params, org: args.values.org ?? null, trigger: "cli" }, { adopt: true });
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
      handingBack = true;
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
    const { steps } = await engine.getRun(run.id);
    if (json) out(JSON.stringify(runView(finished, steps), null, 2));
    else {
      err(`${statusText(finished.status)} in ${runDuration(finished)}`);
      if (finished.error) err(errorText(finished.error));
      if (finished.result !== null) out(JSON.stringify(finished.result, null, 2));
    }
    return finished.status === "succeeded" ? 0 : finished.status === "cancelled" ? 130 : 1;
  } finally {
    await engine.stop(0);
  }
}

async function listWorkflows(args: Args): Promise<number> {
  const engine = await openCliEngine();
  try {
    const listing = workflowListView(engine.registry, engine.now());
    if (args.values.json) {
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
    reportProblems(engine);
    return 0;
  } finally {
    await engine.stop(0);
  }
}

const STATUSES: RunStatus[] = ["queued", "running", "succeeded", "failed", "cancelled", "timed_out"];
const TRIGGERS: RunTrigger[] = ["api", "schedule", "webhook", "cli", "retry"];
/** The same page bounds as GET /api/runs (1 to 200); a terminal page is shorter by default. */
const MAX_PAGE = 200;

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], option: string): T | undefined {
  if (value !== undefined && !allowed.includes(value as T)) usage(`${option} must be one of ${allowed.join(", ")}`);
  return value as T | undefined;
}

function cliCursor(cursor: string): string {
  try {
    return decodeCursor(cursor);
  } catch {
    throw new BifrostError("VALIDATION_FAILED", "--cursor is invalid", {
      fix: "Pass --cursor the cursor printed with the previous page (nextCursor with --json) unchanged, or leave it out for the first page.",
    });
  }
}

/** The filters and cursor of GET /api/runs, as options; the page has the API's shape. */
async function listRuns(storage: Storage, args: Args): Promise<number> {
  const { workflow, org, limit, cursor } = args.values;
  const status = oneOf(args.values.status, STATUSES, "--status");
  const trigger = oneOf(args.values.trigger, TRIGGERS, "--trigger");
  const n = limit === undefined ? 20 : /^\d+$/.test(limit) ? Number(limit) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) usage(`--limit must be an integer from 1 to ${MAX_PAGE}`);
  const since = parseTime(args.values.since, "--since");
  const until = parseTime(args.values.until, "--until");
  const runs = await storage.runs.list({
    ...(workflow !== undefined && { workflow }),
    ...(status !== undefined && { status }),
    ...(trigger !== undefined && { trigger }),
    ...(org !== undefined && { org }),
    ...(since !== undefined && { since }),
    ...(until !== undefined && { until }),
    ...(cursor !== undefined && { beforeId: cliCursor(cursor) }),
    limit: n + 1,
  });
  const page = runs.slice(0, n);
  const last = page[page.length - 1];
  const nextCursor = runs.length > n && last ? encodeCursor(last.id) : null;
  if (args.values.json) {
    out(JSON.stringify({ items: page.map((r) => runView(r)), nextCursor }, null, 2));
    return 0;
  }
  if (page.length === 0) out("no runs");
  else {
    out(
      table([
        ["ID", "WORKFLOW", "STATUS", "TRIGGER", "QUEUED", "DURATION"],
        ...page.map((r) => [r.id, r.workflow, statusText(r.status), r.trigger, new Date(r.queuedAt).toISOString(), runDuration(r)]),
      ]),
    );
  }
  if (nextCursor) err(dim(`more: add --cursor ${nextCursor}`));
  return 0;
}

async function findRun(storage: Storage, id: string) {
  const run = await storage.runs.get(id);
  if (!run) throw new BifrostError("RUN_NOT_FOUND", `No run with id "${id}"`);
  return run;
}

async function showRun(storage: Storage, id: string, args: Args): Promise<number> {
  const run = await findRun(storage, id);
  const steps = await storage.steps.listForRun(id);
  out(args.values.json ? JSON.stringify(runView(run, steps), null, 2) : runDetails(run, steps));
  return 0;
}

async function showLogs(storage: Storage, id: string, args: Args): Promise<number> {
  let run = await findRun(storage, id);
  let after = 0;
  for (;;) {
    const lines = await storage.logs.list(id, { afterSeq: after, limit: 1000 });
    for (const line of lines) out(args.values.json ? JSON.stringify(logView(line)) : logLine(line));
    after = lines[lines.length - 1]?.seq ?? after;
    if (lines.length === 1000) continue;
    if (!args.values.follow || FINISHED_STATUSES.includes(run.status)) return 0;
    await new Promise((r) => setTimeout(r, 500));
    run = await findRun(storage, id);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (handingBack) process.exit(143);
    if (isBifrostError(e)) {
      err(`error ${e.code}: ${e.message}`);
      err(dim(`  fix: ${e.fixFor("cli")}`));
      process.exit(e.code === "CLI_USAGE" ? 2 : e.status < 500 ? 2 : 1);
    }
    err(`error INTERNAL: ${(e as Error)?.stack ?? String(e)}`);
    err(dim(`  fix: ${hintFor("INTERNAL", "cli")}`));
    process.exit(1);
  },
);
