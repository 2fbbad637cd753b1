// Real servers on 127.0.0.1 for the ctx.http tests: a scripted one (401/503/5xx/slow/reset cases)
// and fastify with @fastify/rate-limit. Both record every arrival with the server's own clock.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import rateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyInstance } from "fastify";

export interface Arrival {
  /** Server clock, ms. */
  at: number;
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
  status?: number;
  /** What a 429/503 told the client, in ms after `at` (from Retry-After). */
  retryAfterMs?: number;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, ctx: { body: string; count: number; arrivals: Arrival[] }) => void;

/** A server whose answer per path is a script of handlers: the n-th request to a path gets the n-th (the last repeats). */
export class ScriptedServer {
  readonly arrivals: Arrival[] = [];
  private readonly scripts = new Map<string, Handler[]>();
  private readonly counts = new Map<string, number>();
  private server!: Server;
  url = "";
  port = 0;

  static async start(): Promise<ScriptedServer> {
    const s = new ScriptedServer();
    s.server = createServer((req, res) => s.handle(req, res));
    await new Promise<void>((resolve) => s.server.listen(0, "127.0.0.1", resolve));
    s.port = (s.server.address() as AddressInfo).port;
    s.url = `http://127.0.0.1:${s.port}`;
    return s;
  }

  on(path: string, ...handlers: Handler[]): string {
    this.scripts.set(path, handlers);
    this.counts.set(path, 0);
    return `${this.url}${path}`;
  }

  to(path: string): Arrival[] {
    return this.arrivals.filter((a) => a.path === path);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const at = Date.now();
      const path = (req.url ?? "/").split("?")[0]!;
      const body = Buffer.concat(chunks).toString();
      const arrival: Arrival = { at, method: req.method ?? "", path, headers: req.headers, body };
      this.arrivals.push(arrival);
      const script = this.scripts.get(path);
      if (!script) {
        res.writeHead(404, { "content-type": "text/plain" }).end("no such test route");
        return;
      }
      const count = (this.counts.get(path) ?? 0) + 1;
      this.counts.set(path, count);
      const handler = script[Math.min(count, script.length) - 1]!;
      const writeHead = res.writeHead.bind(res);
      res.writeHead = ((status: number, ...rest: unknown[]) => {
        arrival.status = status;
        const headers = (rest.find((r) => r && typeof r === "object") ?? {}) as Record<string, string>;
        const ra = headers["retry-after"];
        if (ra !== undefined) arrival.retryAfterMs = /^\d+$/.test(ra) ? Number(ra) * 1000 : Date.parse(ra) - at;
        return writeHead(status, ...(rest as []));
      }) as typeof res.writeHead;
      handler(req, res, { body, count, arrivals: this.arrivals });
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export const json = (status: number, value: unknown, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(value));
};
export const text = (status: number, value: string, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(status, { "content-type": "text/plain", ...headers }).end(value);
};

/** fastify with @fastify/rate-limit: `max` requests per `windowMs` for every client; every arrival recorded. */
export async function rateLimitedServer(options: { max: number; windowMs: number; publishBudget: boolean }): Promise<{ app: FastifyInstance; url: string; arrivals: Arrival[] }> {
  const arrivals: Arrival[] = [];
  const app = Fastify();
  app.addHook("onRequest", async (req) => {
    arrivals.push({ at: Date.now(), method: req.method, path: req.url.split("?")[0]!, headers: req.headers, body: "" });
    (req as unknown as { arrival: Arrival }).arrival = arrivals[arrivals.length - 1]!;
  });
  app.addHook("onSend", async (req, reply) => {
    const arrival = (req as unknown as { arrival: Arrival }).arrival;
    arrival.status = reply.statusCode;
    const ra = reply.getHeader("retry-after");
    if (ra !== undefined) arrival.retryAfterMs = Number(ra) * 1000;
  });
  const labels = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"] as const;
  const published = Object.fromEntries(labels.map((l) => [l, options.publishBudget]));
  await app.register(rateLimit, {
    max: options.max,
    timeWindow: options.windowMs,
    keyGenerator: () => "everyone",
    addHeadersOnExceeding: published,
    addHeaders: { ...published, "retry-after": true },
  });
  app.get("/items", async () => ({ items: [1, 2, 3] }));
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, arrivals };
}

/** A port on 127.0.0.1 that nothing listens on (it was bound and released), for refused connections. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A plain node:http server on 127.0.0.1 with `handler`: its base URL and how to close it. */
export async function listenLocal(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
