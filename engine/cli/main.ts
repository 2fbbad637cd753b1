import { parseArgs } from "node:util";
import { loadConfig } from "../config.js";
import { BifrostError, hintFor, isBifrostError } from "../../common/errors.js";
import { startServer } from "../server.js";
import { exitState, openCliEngine, reportProblems, SHUTDOWN_MARGIN_MS, withStorage } from "./embedded.js";
import { dim } from "./format.js";
import { runCommand } from "./run.js";
import { runsCommand } from "./runs.js";
import { listWorkflowsCommand } from "./workflows-list.js";
import { firstKeyText, keysCommand } from "./keys.js";
import { webhooksCommand } from "./webhooks.js";
import { schedulesCommand } from "./schedules.js";
import { oauthCommand } from "./oauth.js";
import { stateCommand } from "./state.js";
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
  bifrost runs logs <run-id> [--follow]  a run's log lines; --follow streams them until the run ends
  bifrost runs cancel <run-id>           stop a queued or running run, wherever it executes
  bifrost runs retry <run-id>            a new run of a failed, timed-out or cancelled one, reusing its
                                         finished steps; streams its logs like run
  bifrost keys create --role R [--org O] [--name N]
                                         a new API key (admin, operator or viewer), printed once
  bifrost keys list                      API keys (never their secrets)
  bifrost keys revoke <key-id>           refuse a key from now on
  bifrost webhooks show <workflow> [--org ORG]
                                         a webhook workflow's secret (stdout) and how to sign with it;
                                         with --org, that org's hook (its own secret and URL)
  bifrost webhooks rotate <workflow> [--org ORG] [--grace 24h]
                                         replace the secret; the old one keeps working for the grace
                                         (default 24h, at most 7d; --grace 0 ends it at once)
  bifrost schedules list [--workflow W] [--org ORG]
                                         schedules per workflow and org: cron in words, next and last fire
  bifrost schedules pause|resume <workflow> [--org ORG]
                                         stop firing (nothing accumulates) or fire again from now on
  bifrost schedules trigger <workflow> [--org ORG]
                                         fire now: one run per org, trigger "schedule"
  bifrost state list <workflow> [--org ORG]
                                         a workflow's ctx.state keys and values for one org (none: no org)
  bifrost state get <workflow> <key> [--org ORG]
                                         one value, as JSON on stdout
  bifrost state delete <workflow> <key> [--org ORG]
                                         reset a key: the next run that reads it finds nothing
  bifrost oauth providers add <name> --grant-type authorization_code|client_credentials --token-url U
                    --client-id ID [--authorization-url U] [--client-secret-stdin | --client-secret S]
                    [--scopes "a b"] [--redirect-uri U] [--client-auth post|basic]
                                         create or replace a provider; prints its configuration warnings
  bifrost oauth providers list|show <name>|remove <name>
                                         providers (the client secret only as set / not set)
  bifrost oauth connect <provider> [--org ORG] [--entity-id E]
                                         client credentials: connect now; authorization code: print the URL
                                         to open (a running server completes the callback)
  bifrost oauth connections list [--provider P] [--org ORG]
                                         status, expiry, scopes and last failure with its fix
  bifrost oauth connections refresh|remove <provider> [--org ORG]
                                         a new token now, or forget the connection and its tokens
  bifrost oauth diagnose <provider> [--org ORG]
                                         the troubleshooting checklist; exits 1 when a check fails
                                         (oauth commands talk to BIFROST_URL too, with an admin key;
                                         connections list and diagnose need only a key that may read)

Options:
  --json     machine-readable output on stdout
  --help     this text

Environment: BIFROST_DATA_DIR (./data), BIFROST_WORKFLOWS_DIR (./workflows), BIFROST_PORT, BIFROST_HOST,
LOG_LEVEL, BIFROST_CONCURRENCY; see the README for the rest. With BIFROST_URL and BIFROST_API_KEY set,
run, workflows list, schedules, state and the runs commands talk to that server instead of the local data directory.`;

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
        provider: { type: "string" },
        "entity-id": { type: "string" },
        "grant-type": { type: "string" },
        "authorization-url": { type: "string" },
        "token-url": { type: "string" },
        "client-id": { type: "string" },
        "client-secret": { type: "string" },
        "client-secret-stdin": { type: "boolean", default: false },
        scopes: { type: "string" },
        "redirect-uri": { type: "string" },
        grace: { type: "string" },
        "client-auth": { type: "string" },
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
      return runCommand(sub, args.values);
    case "workflows":
      if (sub === "deploy") return deployCommand(rest, args.values, openCliEngine);
      if (sub !== "list" && sub !== undefined) usage(`unknown command "workflows ${sub}"; try "workflows list" or "workflows deploy <file>"`);
      return listWorkflowsCommand(args.values, openCliEngine);
    case "runs":
      return runsCommand(sub, rest, args.values);
    case "keys":
      return withStorage((s) => keysCommand(s, sub, rest, args.values));
    case "webhooks":
      return webhooksCommand(sub, rest, args.values, openCliEngine);
    case "schedules":
      return schedulesCommand(sub, rest, args.values, openCliEngine);
    case "oauth":
      return oauthCommand(sub, rest, args.values, openCliEngine);
    case "state":
      return stateCommand(sub, rest, args.values, openCliEngine);
    default:
      return usage(`unknown command "${command}"`);
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (exitState.handingBack) process.exit(143);
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
