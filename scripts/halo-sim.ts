// A HaloPSA-like source and a target for the halopsa_sync example (README: "Surviving a crash: a long
// sync"), and the receiving server of test/crash-resume.test.ts:
//
//   GET  /<org>/api/tickets?page_no&page_size&modified_since   tickets of one org, oldest change first
//   POST /<org>/api/tickets/touch?count=N                      marks N tickets changed now (the next sync sees them)
//   POST /target/tickets  { org, batch, tickets }              upserts tickets by id, counts every arrival
//   GET  /sim/stats                                            what the target received, as JSON
//
// An upsert is applied when its request arrives (before any delay or hold), so an engine killed while
// it waits for the answer has already had its side effect: the run sends that batch again when it
// resumes, which the target counts. Run it with `node --no-node-snapshot bin/run-ts.js scripts/halo-sim.ts`
// (HALO_SIM_PORT 7080, HALO_SIM_TICKETS 3000 per org, HALO_SIM_DELAY_MS 150 per upsert).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";

export interface Ticket {
  id: number;
  summary: string;
  status: string;
  lastupdate: string;
}

/** A request as the simulator saw it, for holds and for the record of arrivals. */
export interface SimRequest {
  kind: "list" | "upsert" | "other";
  org: string | null;
  /** list: page_no */
  page?: number;
  /** upsert: the batch label the workflow sent, e.g. "3#1" (page 3, chunk 1) */
  batch?: string;
  /** upsert: the ticket ids */
  ids?: number[];
}

export interface HaloSimOptions {
  port?: number;
  host?: string;
  /** Tickets per org. @default 3000 */
  tickets?: number;
  /** How long an upsert's answer waits (a slow target, so a person can kill the engine halfway). @default 0 */
  upsertDelayMs?: number;
  /** One line per upsert batch (the script prints them; tests leave it out). */
  log?: (line: string) => void;
}

export interface Held {
  /** Resolves when the held request has arrived (its upsert, if any, is applied). */
  arrived: Promise<SimRequest>;
  /** Lets its answer go (a no-op once the client is gone). */
  release(): void;
}

export interface HaloSim {
  url: string;
  port: number;
  /** Every request, in arrival order. */
  readonly requests: SimRequest[];
  /** Upserts applied per "org/ticket id". */
  readonly upserts: Map<string, number>;
  /** Upsert requests received per "org/batch". */
  readonly batches: Map<string, number>;
  /** The org's tickets, by id (the source's own objects: read them, do not change them). */
  tickets(org: string): readonly Ticket[];
  /** Marks the org's first `count` tickets changed now, as POST /<org>/api/tickets/touch does. */
  touch(org: string, count: number): number;
  /** Holds the answer to the first request from now on that `match` accepts, until released. */
  hold(match: (req: SimRequest) => boolean): Held;
  close(): Promise<void>;
}

const MINUTE = 60_000;
const MAX_BODY = 5 * 1024 * 1024;

/** The tickets of one org: fixed ids, changed a minute apart, the newest a minute before the simulator started. */
function ticketsFor(org: string, count: number, startedAt: number): Ticket[] {
  return Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    summary: `${org}: ticket ${i + 1}`,
    status: ["New", "In Progress", "Waiting on Customer", "Resolved"][i % 4]!,
    lastupdate: new Date(startedAt - (count - i) * MINUTE).toISOString(),
  }));
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy(new Error("body too large"));
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString()));
    req.on("error", reject);
  });
}

export async function startHaloSim(options: HaloSimOptions = {}): Promise<HaloSim> {
  const count = options.tickets ?? 3000;
  const startedAt = Date.now();
  const orgs = new Map<string, Ticket[]>();
  const tickets = (org: string) => {
    let list = orgs.get(org);
    if (!list) orgs.set(org, (list = ticketsFor(org, count, startedAt)));
    return list;
  };
  const requests: SimRequest[] = [];
  const upserts = new Map<string, number>();
  const batches = new Map<string, number>();
  const touch = (org: string, n: number) => {
    const now = Date.now();
    const list = tickets(org).slice(0, Math.min(count, Math.max(0, n)));
    // Each a millisecond apart, so that "modified since" stays exact.
    list.forEach((t, i) => (t.lastupdate = new Date(now + i).toISOString()));
    return list.length;
  };
  const holds: { match: (r: SimRequest) => boolean; arrived: (r: SimRequest) => void; released: Promise<void> }[] = [];

  /** Waits for a hold on this request (if one matches) and the configured delay; false once the client left. */
  async function answerable(req: SimRequest, res: ServerResponse, delayMs: number): Promise<boolean> {
    const index = holds.findIndex((h) => h.match(req));
    if (index >= 0) {
      const [hold] = holds.splice(index, 1);
      hold!.arrived(req);
      await hold!.released;
    }
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return !res.destroyed;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim");
    const parts = url.pathname.split("/").filter(Boolean);
    const body = req.method === "POST" ? await readBody(req) : "";
    if (req.method === "GET" && parts.length === 3 && parts[1] === "api" && parts[2] === "tickets") {
      const org = parts[0]!;
      const page = Math.max(1, Number(url.searchParams.get("page_no") ?? 1) || 1);
      const size = Math.min(1000, Math.max(1, Number(url.searchParams.get("page_size") ?? 100) || 100));
      const since = url.searchParams.get("modified_since");
      const seen: SimRequest = { kind: "list", org, page };
      requests.push(seen);
      // ISO times of one format compare as strings; oldest change first keeps pages stable while paging.
      const changed = tickets(org)
        .filter((t) => since === null || t.lastupdate > since)
        .sort((a, b) => (a.lastupdate < b.lastupdate ? -1 : a.lastupdate > b.lastupdate ? 1 : a.id - b.id));
      if (!(await answerable(seen, res, 0))) return;
      send(res, 200, { page_no: page, page_size: size, record_count: changed.length, tickets: changed.slice((page - 1) * size, page * size) });
      return;
    }
    if (req.method === "POST" && parts.length === 4 && parts[1] === "api" && parts[2] === "tickets" && parts[3] === "touch") {
      const org = parts[0]!;
      requests.push({ kind: "other", org });
      send(res, 200, { touched: touch(org, Number(url.searchParams.get("count") ?? 10) || 0) });
      return;
    }
    if (req.method === "POST" && parts.length === 2 && parts[0] === "target" && parts[1] === "tickets") {
      let parsed: { org?: unknown; batch?: unknown; tickets?: unknown };
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        send(res, 400, { error: "expected JSON { org, batch, tickets }" });
        return;
      }
      const list = Array.isArray(parsed.tickets) ? (parsed.tickets as { id?: unknown }[]) : [];
      const org = typeof parsed.org === "string" ? parsed.org : "";
      const batch = typeof parsed.batch === "string" ? parsed.batch : "?";
      const ids = list.map((t) => Number(t.id));
      const seen: SimRequest = { kind: "upsert", org, batch, ids };
      requests.push(seen);
      // Applied on arrival: the target has done the work even if the answer never reaches the engine.
      for (const id of ids) upserts.set(`${org}/${id}`, (upserts.get(`${org}/${id}`) ?? 0) + 1);
      const times = (batches.get(`${org}/${batch}`) ?? 0) + 1;
      batches.set(`${org}/${batch}`, times);
      options.log?.(`upsert ${org} batch ${batch}: ${ids.length} tickets${times > 1 ? ` (received ${times} times: the engine resent a batch it had not committed)` : ""}`);
      if (!(await answerable(seen, res, options.upsertDelayMs ?? 0))) return;
      send(res, 200, { upserted: ids.length });
      return;
    }
    if (req.method === "GET" && url.pathname === "/sim/stats") {
      const repeated = [...batches].filter(([, n]) => n > 1).map(([batch, n]) => ({ batch, times: n }));
      send(res, 200, { upsertRequests: [...batches.values()].reduce((a, b) => a + b, 0), distinctTickets: upserts.size, repeated });
      return;
    }
    requests.push({ kind: "other", org: null });
    send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { error: String(err) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const releases: (() => void)[] = [];
  return {
    url: `http://${options.host ?? "127.0.0.1"}:${port}`,
    port,
    requests,
    upserts,
    batches,
    tickets,
    touch,
    hold(match) {
      let arrived!: (r: SimRequest) => void;
      let release!: () => void;
      const arrivedP = new Promise<SimRequest>((resolve) => (arrived = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      releases.push(release);
      holds.push({ match, arrived, released });
      return { arrived: arrivedP, release };
    },
    async close() {
      for (const release of releases) release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
  const sim = await startHaloSim({
    port: env("HALO_SIM_PORT", 7080),
    tickets: env("HALO_SIM_TICKETS", 3000),
    upsertDelayMs: env("HALO_SIM_DELAY_MS", 150),
    log: (line) => console.log(line),
  });
  console.log(`HaloPSA simulator on ${sim.url}: GET /<org>/api/tickets, POST /target/tickets, GET /sim/stats`);
  const stop = () => void sim.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
