import { BifrostError } from "../../common/errors.js";
import type { StateRecord } from "../../storage/types.js";
import { requestedOrg, type RunScope } from "../auth/org.js";
import type { Engine } from "../engine.js";
import { stateKeyProblem } from "./keys.js";

/**
 * ctx.state as a person debugging a sync sees it (the API and the CLI): read a workflow's keys for
 * one org, and reset one. The org is the one asked for, or none; an org key reads its own org only,
 * and another org's state answers as absent (an empty list, STATE_NOT_FOUND for a key), exactly as
 * state nobody wrote does.
 */

/** One value as the API and `bifrost state` show it. */
export function stateView(r: StateRecord) {
  return { key: r.key, value: r.value, updatedAt: new Date(r.updatedAt).toISOString(), updatedByRun: r.updatedByRun };
}

export type StateView = ReturnType<typeof stateView>;

/** The org asked for (checked), or null: the state of the runs without an org. */
function askedOrg(requested: string | undefined): string | null {
  return requestedOrg(requested, "the state of the runs without an org");
}

/** The org whose state a caller reads: an org key reads its own, named or not; undefined for another org's. */
function readOrg(requested: string | undefined, scope: RunScope): { org: string | null } | undefined {
  const org = askedOrg(requested);
  if (scope.org === undefined) return { org };
  return org === null || org === scope.org ? { org: scope.org } : undefined;
}

function checkKey(key: string): void {
  const problem = stateKeyProblem(key);
  if (problem) throw new BifrostError("VALIDATION_FAILED", problem, { details: { key: key.slice(0, 200) } });
}

const notFound = (workflow: string, org: string | null, key: string) =>
  new BifrostError("STATE_NOT_FOUND", `workflow "${workflow}" has no state key "${key}" ${org === null ? "without an org" : `for org "${org}"`}`, { details: { workflow, org, key } });

export async function listState(engine: Engine, workflow: string, requestedOrg: string | undefined, scope: RunScope = {}): Promise<{ workflow: string; org: string | null; items: StateView[] }> {
  await engine.getWorkflow(workflow);
  const target = readOrg(requestedOrg, scope);
  if (!target) return { workflow, org: askedOrg(requestedOrg), items: [] };
  return { workflow, org: target.org, items: (await engine.storage.state.list(workflow, target.org)).map(stateView) };
}

export async function getState(engine: Engine, workflow: string, key: string, requestedOrg: string | undefined, scope: RunScope = {}): Promise<StateView> {
  await engine.getWorkflow(workflow);
  checkKey(key);
  const target = readOrg(requestedOrg, scope);
  const record = target && (await engine.storage.state.get(workflow, target.org, key));
  if (!record) throw notFound(workflow, target?.org ?? askedOrg(requestedOrg), key);
  return stateView(record);
}

/** An administrator's reset: the next run that reads the key finds nothing (and starts over). */
export async function resetState(engine: Engine, workflow: string, key: string, requestedOrg: string | undefined): Promise<void> {
  await engine.getWorkflow(workflow);
  checkKey(key);
  const org = askedOrg(requestedOrg);
  if (!(await engine.storage.state.reset(workflow, org, key))) throw notFound(workflow, org, key);
  engine.logger.info({ workflow, org, key }, "state key reset");
}
