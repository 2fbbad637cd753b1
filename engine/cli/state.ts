import { BifrostError } from "../../common/errors.js";
import type { Engine } from "../engine.js";
import { getState, listState, resetState, type StateView } from "../state/workflow-state.js";
import { clientFromEnv } from "./client.js";
import { err, out, withEngine as embedded } from "./embedded.js";
import { dim, table } from "./format.js";

/**
 * `bifrost state list|get|delete <workflow> [key] [--org ORG]`: a workflow's ctx.state for one org
 * (without --org: the runs without an org), embedded on the data directory or against a server
 * when BIFROST_URL and BIFROST_API_KEY are set (delete then needs an admin key).
 */

export interface StateOptions {
  json: boolean;
  org?: string | undefined;
}

type StateList = Awaited<ReturnType<typeof listState>>;

/** Longest value shown in the list's table; `get` and --json show it whole. */
const VALUE_COLUMN = 60;

function usage(message: string): never {
  throw new BifrostError("CLI_USAGE", message);
}

export async function stateCommand(sub: string | undefined, rest: string[], options: StateOptions, openEngine: () => Promise<Engine>): Promise<number> {
  if (sub !== "list" && sub !== "get" && sub !== "delete") usage(sub === undefined ? "state needs a command: list, get or delete" : `unknown command "state ${sub}"; try list, get or delete`);
  const wanted = sub === "list" ? 1 : 2;
  const [workflow, key] = rest;
  if (rest.length !== wanted || !workflow) usage(sub === "list" ? "usage: bifrost state list <workflow> [--org ORG]" : `usage: bifrost state ${sub} <workflow> <key> [--org ORG]`);
  const client = clientFromEnv();
  const base = `/api/workflows/${encodeURIComponent(workflow)}/state`;
  const query = options.org === undefined ? {} : { org: options.org };
  const where = options.org === undefined ? "without an org" : `for org "${options.org}"`;

  if (sub === "list") {
    const list = client ? await client.get<StateList>(base, query) : await embedded(openEngine, (e) => listState(e, workflow, options.org));
    printList(list, options.json);
    return 0;
  }
  const path = `${base}/${encodeURIComponent(key!)}`;
  if (sub === "get") {
    const item = client ? await client.get<StateView>(path, query) : await embedded(openEngine, (e) => getState(e, workflow, key!, options.org));
    // The value itself on stdout (it is JSON already); --json adds when and by which run.
    out(JSON.stringify(options.json ? item : item.value, null, 2));
    if (!options.json) err(dim(`updated ${item.updatedAt}${item.updatedByRun ? ` by run ${item.updatedByRun}` : ""}`));
    return 0;
  }
  if (client) await client.request("DELETE", path, { query });
  else await embedded(openEngine, (e) => resetState(e, workflow, key!, options.org));
  if (options.json) out(JSON.stringify({ workflow, org: options.org ?? null, key, deleted: true }));
  else err(`deleted state key "${key}" of ${workflow} ${where}: the next run that reads it finds nothing`);
  return 0;
}

function printList(list: StateList, json: boolean): void {
  if (json) {
    out(JSON.stringify(list, null, 2));
    return;
  }
  const where = list.org === null ? "without an org" : `for org "${list.org}"`;
  if (list.items.length === 0) {
    out(`no state for ${list.workflow} ${where}`);
    return;
  }
  const shown = (value: unknown) => {
    const text = JSON.stringify(value);
    return text.length > VALUE_COLUMN ? `${text.slice(0, VALUE_COLUMN - 1)}…` : text;
  };
  out(table([["KEY", "UPDATED", "BY RUN", "VALUE"], ...list.items.map((i) => [i.key, i.updatedAt, i.updatedByRun ?? "-", shown(i.value)])]));
  err(dim(`${list.items.length} key(s) of ${list.workflow} ${where}`));
}
