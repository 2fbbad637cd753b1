import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { startHaloSim, type HaloSim, type Held, type SimRequest } from "../scripts/halo-sim.js";
import { SQLITE_FILE } from "../storage/sqlite.js";
import { tempDir, workflowSource, writeFiles } from "./helpers.js";
import { BIFROST_BIN, spawnTracked, trackPid, waitUntilGone } from "./processes.js";

/**
 * kill -9 of a real engine process (`bifrost start`) in the middle of a chunked sync, at several
 * points, then a restart on the same data directory or a second engine already running on the same
 * database: the run succeeds, every batch that committed reached the target exactly once, only the
 * batch in flight at the kill was sent again, and nothing is left running. The target (the HaloPSA
 * simulator of scripts/halo-sim.ts) counts every upsert it receives and holds the request the test
 * names, so the test knows exactly where the run is when it kills the engine.
 */

const LEASE_MS = 1500;
const TICKETS = 300;
const PAGE_SIZE = 100;
const ORG = "contoso";
/** Batches the run sends: pages 1–3 of 100 tickets, two chunks of 50 each. */
const BATCHES = ["1#0", "1#1", "2#0", "2#1", "3#0", "3#1"];

/** The example itself, run as a user would (its cursor in ctx.state, one run per org). */
const EXAMPLE = fileURLToPath(new URL("../workflows/halopsa_sync.ts", import.meta.url));

/**
 * The shape of workflows/halopsa_sync.ts (page fetches and chunks of 50 as durable steps), without
 * ctx.state: the crash paths are about steps.
 */
const SYNC = workflowSource(
  "crash_sync",
  `const org = ctx.run.org;
    let synced = 0;
    for (let page = 1; ; page++) {
      const tickets = await ctx.step("fetch page " + page, async () =>
        (await ctx.http.get(params.baseUrl + "/" + org + "/api/tickets", { query: { page_no: page, page_size: params.pageSize } })).body.tickets);
      if (tickets.length === 0) break;
      await ctx.chunks("upsert page " + page, tickets, { size: 50 }, async (batch, index) => {
        await ctx.http.post(params.targetUrl + "/tickets", { json: { org, batch: page + "#" + index, tickets: batch } });
        return batch.length;
      });
      synced += tickets.length;
      if (tickets.length < params.pageSize) break;
    }
    return { synced };`,
  `\n  chunkTimeout: "1m",`,
);

interface EngineProcess {
  /** The node process running the engine (not the launcher in front of it). */
  pid: number;
  url: string;
  /** The first admin key, printed only by the first start on a data directory. */
  key: string | undefined;
  child: ChildProcess;
  output: () => string;
}

interface Dirs {
  dataDir: string;
  workflowsDir: string;
  secretKey: string;
}

function newDirs(): Dirs {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, { "crash_sync.ts": SYNC });
  copyFileSync(EXAMPLE, join(workflowsDir, "halopsa_sync.ts"));
  return { dataDir: tempDir(), workflowsDir, secretKey: randomBytes(32).toString("hex") };
}

/** `bifrost start` as a user runs it; resolves once it serves and has loaded its workflows. */
function startEngine(dirs: Dirs): Promise<EngineProcess> {
  const child = spawnTracked(process.execPath, [BIFROST_BIN, "start"], {
    env: {
      ...process.env,
      NO_COLOR: "1",
      LOG_LEVEL: "warn",
      BIFROST_PORT: "0",
      BIFROST_WATCH: "0",
      BIFROST_DATA_DIR: dirs.dataDir,
      BIFROST_WORKFLOWS_DIR: dirs.workflowsDir,
      BIFROST_SECRET_KEY: dirs.secretKey,
      BIFROST_LEASE_MS: String(LEASE_MS),
      // A dead engine's run is claimable once its lease ends; look for it often.
      BIFROST_POLL_MS: "100",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      out += d.toString();
      const listening = /listening on (http:\/\/\S+) \(pid (\d+)/.exec(out);
      if (!listening || !/workflow\(s\) from/.test(out)) return;
      const pid = Number(listening[2]);
      trackPid(pid);
      resolve({ pid, url: listening[1]!, key: /^\s+(bfk_key_\S+)$/m.exec(out)?.[1], child, output: () => out });
    });
    child.on("exit", (code, signal) => reject(new Error(`bifrost start ended (${code ?? signal}) before it was ready:\n${out}`)));
  });
}

/** SIGKILL to the engine itself: no drain, no lease released, nothing written. */
async function crash(engine: EngineProcess): Promise<void> {
  process.kill(engine.pid, "SIGKILL");
  await waitUntilGone(engine.pid);
}

/** Once the held request has reached the simulator, the engine dies; the request never gets its answer. */
async function crashWhenArrived(engine: EngineProcess, held: Held): Promise<void> {
  await held.arrived;
  await crash(engine);
  held.release();
}

async function api<T>(url: string, key: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

interface StepView {
  name: string;
  status: string;
  attempts: number;
  error: { code: string } | null;
}
interface RunView {
  id: string;
  status: string;
  result: unknown;
  error: unknown;
  steps: StepView[];
}

/**
 * Asks until `done` holds: an event wait on state only the API or the database can show. The
 * test's timeout bounds it; nothing is asserted about how long it took.
 */
async function until<T>(read: () => Promise<T> | T, done: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const finished = (run: RunView) => run.status !== "queued" && run.status !== "running";

/** Reads the engine's SQLite file directly (read-only, beside the engines). */
function readDb<T>(dirs: Dirs, read: (db: Database.Database) => T): T {
  const db = new Database(join(dirs.dataDir, SQLITE_FILE), { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Nothing in the database is left running: no run, no step. */
function running(dirs: Dirs): { runs: number; steps: number } {
  return readDb(dirs, (db) => ({
    runs: (db.prepare("select count(*) as n from runs where status = 'running'").get() as { n: number }).n,
    steps: (db.prepare("select count(*) as n from steps where status = 'running'").get() as { n: number }).n,
  }));
}

/** What ctx.state holds for the workflow and org, parsed. */
function stateOf(dirs: Dirs, workflow: string, org: string): Record<string, unknown> {
  return readDb(dirs, (db) => {
    const rows = db.prepare("select key, value from workflow_state where workflow = ? and org_key = ?").all(workflow, org) as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value) as unknown]));
  });
}

function leaseOwner(dirs: Dirs, runId: string): string | null {
  return readDb(dirs, (db) => (db.prepare("select lease_owner as owner from runs where id = ?").get(runId) as { owner: string | null }).owner);
}

const sims: HaloSim[] = [];
afterEach(async () => {
  for (const sim of sims.splice(0)) await sim.close();
});

async function newSim(): Promise<HaloSim> {
  const sim = await startHaloSim({ tickets: TICKETS });
  sims.push(sim);
  return sim;
}

/** A simulator, new directories and the first engine on them, with the admin key it printed. */
async function fresh(): Promise<{ sim: HaloSim; dirs: Dirs; first: EngineProcess; key: string }> {
  const sim = await newSim();
  const dirs = newDirs();
  const first = await startEngine(dirs);
  return { sim, dirs, first, key: first.key! };
}

const isUpsert = (batch: string) => (r: SimRequest) => r.kind === "upsert" && r.batch === batch;
const isList = (page: number) => (r: SimRequest) => r.kind === "list" && r.page === page;

/** How often the target received each batch, and each ticket, of the org. */
function received(sim: HaloSim, org = ORG): { batches: Record<string, number>; ticketsTwice: number[]; distinct: number } {
  const batches = Object.fromEntries(BATCHES.map((b) => [b, sim.batches.get(`${org}/${b}`) ?? 0]));
  const mine = [...sim.upserts].filter(([key]) => key.startsWith(`${org}/`));
  const ticketsTwice = mine.filter(([, n]) => n > 1).map(([key]) => Number(key.split("/")[1])).sort((a, b) => a - b);
  return { batches, ticketsTwice, distinct: mine.length };
}

const once = (except: Record<string, number> = {}) => Object.fromEntries(BATCHES.map((b) => [b, except[b] ?? 1]));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const pagesFetched = (sim: HaloSim) => sim.requests.filter((r) => r.kind === "list").map((r) => r.page);

async function trigger(engine: EngineProcess, key: string, sim: HaloSim, workflow = "crash_sync", org = ORG): Promise<string> {
  const res = await api<{ id: string }>(engine.url, key, "POST", `/api/workflows/${workflow}/runs`, {
    org,
    params: { baseUrl: sim.url, targetUrl: `${sim.url}/target`, pageSize: PAGE_SIZE },
  });
  return res.id;
}

/** The run's end as the surviving engine reports it, and then the database: nothing running. */
async function expectSucceeded(dirs: Dirs, engine: EngineProcess, key: string, runId: string, result: unknown = { synced: TICKETS }): Promise<RunView> {
  const run = await until(() => api<RunView>(engine.url, key, "GET", `/api/runs/${runId}`), finished);
  expect({ status: run.status, result: run.result, error: run.error }, engine.output()).toEqual({ status: "succeeded", result, error: null });
  expect(run.steps.filter((s) => s.status !== "succeeded")).toEqual([]);
  expect(running(dirs)).toEqual({ runs: 0, steps: 0 });
  return run;
}

const attemptsOf = (run: RunView) => Object.fromEntries(run.steps.map((s) => [s.name, s.attempts]));

describe("kill -9 of the engine in the middle of a chunked sync, then a restart on the same data directory", { timeout: 120_000 }, () => {
  it("with a batch in flight: the run resumes at that batch, the only one the target receives twice", async () => {
    const { sim, dirs, first, key } = await fresh();
    const held = sim.hold(isUpsert("2#0"));
    const runId = await trigger(first, key, sim);
    await held.arrived;
    // Where the run is: two batches committed, the third's request at the target.
    const before = await api<RunView>(first.url, key, "GET", `/api/runs/${runId}`);
    expect(before.steps.map((s) => [s.name, s.status])).toEqual([
      ["fetch page 1", "succeeded"],
      ["upsert page 1#0", "succeeded"],
      ["upsert page 1#1", "succeeded"],
      ["fetch page 2", "succeeded"],
      ["upsert page 2#0", "running"],
    ]);
    await crash(first);
    held.release();

    const second = await startEngine(dirs);
    const run = await expectSucceeded(dirs, second, key, runId);
    expect(received(sim)).toEqual({ batches: once({ "2#0": 2 }), ticketsTwice: range(101, 150), distinct: TICKETS });
    expect(attemptsOf(run)).toMatchObject({ "upsert page 1#0": 1, "upsert page 1#1": 1, "fetch page 2": 1, "upsert page 2#0": 2, "upsert page 2#1": 1 });
    expect(pagesFetched(sim)).toEqual([1, 2, 3, 4]);
  });

  it("right after a batch committed: nothing is sent twice", async () => {
    const { sim, dirs, first, key } = await fresh();
    // The next page's fetch is the run's next move once the last batch of page 1 committed.
    const held = sim.hold(isList(2));
    const runId = await trigger(first, key, sim);
    await held.arrived;
    const committed = await until(
      () => api<RunView>(first.url, key, "GET", `/api/runs/${runId}`),
      (run) => run.steps.some((s) => s.name === "upsert page 1#1" && s.status === "succeeded"),
    );
    expect(committed.steps.find((s) => s.name === "fetch page 2")?.status).toBe("running");
    expect(received(sim).batches).toEqual({ ...once(), "2#0": 0, "2#1": 0, "3#0": 0, "3#1": 0 });
    await crash(first);
    held.release();

    const second = await startEngine(dirs);
    const run = await expectSucceeded(dirs, second, key, runId);
    expect(received(sim)).toEqual({ batches: once(), ticketsTwice: [], distinct: TICKETS });
    expect(attemptsOf(run)).toMatchObject({ "upsert page 1#1": 1, "fetch page 2": 2, "upsert page 2#0": 1 });
    expect(pagesFetched(sim)).toEqual([1, 2, 2, 3, 4]);
  });

  it("before the first batch: every batch is sent once, after the restart", async () => {
    const { sim, dirs, first, key } = await fresh();
    const held = sim.hold(isList(1));
    const runId = await trigger(first, key, sim);
    await crashWhenArrived(first, held);
    expect(sim.batches.size).toBe(0);

    const second = await startEngine(dirs);
    const run = await expectSucceeded(dirs, second, key, runId);
    expect(received(sim)).toEqual({ batches: once(), ticketsTwice: [], distinct: TICKETS });
    expect(attemptsOf(run)).toMatchObject({ "fetch page 1": 2, "upsert page 1#0": 1 });
    expect(pagesFetched(sim)).toEqual([1, 1, 2, 3, 4]);
  });

  it("killed again while it resumes: the third engine finishes, each of the two batches in flight sent twice", async () => {
    const { sim, dirs, first, key } = await fresh();
    const heldFirst = sim.hold(isUpsert("1#1"));
    const runId = await trigger(first, key, sim);
    await crashWhenArrived(first, heldFirst);

    const heldSecond = sim.hold(isUpsert("3#0"));
    const second = await startEngine(dirs);
    await crashWhenArrived(second, heldSecond);

    const third = await startEngine(dirs);
    const run = await expectSucceeded(dirs, third, key, runId);
    expect(received(sim)).toEqual({ batches: once({ "1#1": 2, "3#0": 2 }), ticketsTwice: [...range(51, 100), ...range(201, 250)], distinct: TICKETS });
    expect(attemptsOf(run)).toMatchObject({ "upsert page 1#0": 1, "upsert page 1#1": 2, "upsert page 2#1": 1, "upsert page 3#0": 2, "upsert page 3#1": 1 });
  });
});

describe("kill -9 of the engine running a sync while a second engine runs on the same database", { timeout: 120_000 }, () => {
  it("the other engine takes the run over once the lease ends and resends only the batch in flight", async () => {
    const { sim, dirs, first: a, key } = await fresh();
    const b = await startEngine(dirs);
    const held = sim.hold(isUpsert("2#1"));
    const runId = await trigger(a, key, sim);
    await held.arrived;
    // Whichever engine claimed it (the one triggered nudges itself, the other polls): its owner
    // names the process ("host:pid:random").
    const owner = leaseOwner(dirs, runId)!;
    const holder = [a, b].find((e) => owner.split(":").at(-2) === String(e.pid));
    expect(holder, `lease owner ${owner}; engines ${a.pid}, ${b.pid}`).toBeDefined();
    const survivor = holder === a ? b : a;
    await crash(holder!);
    held.release();

    const run = await expectSucceeded(dirs, survivor, key, runId);
    expect(received(sim)).toEqual({ batches: once({ "2#1": 2 }), ticketsTwice: range(151, 200), distinct: TICKETS });
    expect(attemptsOf(run)).toMatchObject({ "upsert page 2#0": 1, "upsert page 2#1": 2, "upsert page 3#0": 1 });
    expect(survivor.child.exitCode).toBeNull();
  });
});

describe("the halopsa_sync example, killed halfway for one of its two orgs", { timeout: 120_000 }, () => {
  it("both orgs' runs finish after the restart, the cursor is saved once per org, and the next run syncs only what changed", async () => {
    const { sim, dirs, first, key } = await fresh();
    const held = sim.hold((r) => r.kind === "upsert" && r.org === "contoso" && r.batch === "2#0");
    const contoso = await trigger(first, key, sim, "halopsa_sync", "contoso");
    const fabrikam = await trigger(first, key, sim, "halopsa_sync", "fabrikam");
    await crashWhenArrived(first, held);
    expect(stateOf(dirs, "halopsa_sync", "contoso")).toEqual({});

    const second = await startEngine(dirs);
    const cursor = (org: string) => stateOf(dirs, "halopsa_sync", org).modifiedSince as string;
    // Both ended before either is checked: the check also asks that no run at all is left running.
    await until(() => Promise.all([contoso, fabrikam].map((id) => api<RunView>(second.url, key, "GET", `/api/runs/${id}`))), (runs) => runs.every(finished));
    await expectSucceeded(dirs, second, key, contoso, { org: "contoso", since: null, synced: TICKETS, modifiedSince: expect.any(String) });
    await expectSucceeded(dirs, second, key, fabrikam, { org: "fabrikam", since: null, synced: TICKETS, modifiedSince: expect.any(String) });
    expect(received(sim, "contoso")).toEqual({ batches: once({ "2#0": 2 }), ticketsTwice: range(101, 150), distinct: TICKETS });
    // fabrikam was wherever it was at the kill: at most its one batch in flight came twice.
    const other = received(sim, "fabrikam");
    const repeated = Object.entries(other.batches).filter(([, n]) => n !== 1);
    expect(other.distinct).toBe(TICKETS);
    expect(repeated.length <= 1 && repeated.every(([, n]) => n === 2), JSON.stringify(other.batches)).toBe(true);
    for (const org of ["contoso", "fabrikam"]) expect(cursor(org)).toBe(sim.tickets(org).at(-1)!.lastupdate);

    // The cursor at work: 20 tickets change, and the next contoso run pages through those only.
    const since = cursor("contoso");
    sim.touch("contoso", 20);
    const next = await trigger(second, key, sim, "halopsa_sync", "contoso");
    await expectSucceeded(dirs, second, key, next, { org: "contoso", since, synced: 20, modifiedSince: sim.tickets("contoso")[19]!.lastupdate });
  });
});
