import type { FastifyReply, FastifyRequest } from "fastify";
import { FINISHED_STATUSES, type LogLevel } from "../../storage/types.js";
import type { Engine } from "../engine.js";
import { hintFor } from "../../common/errors.js";
import { logView } from "./views.js";

/**
 * Server-sent events of a run's log lines until the run ends. Storage is the source of truth:
 * in-process events and a poll (for runs executed by other engine processes) both just say
 * "read what is new", so lines are never duplicated or reordered.
 */
export async function streamLogs(
  engine: Engine,
  request: FastifyRequest,
  reply: FastifyReply,
  opts: { runId: string; after?: number; level?: LogLevel; open: Set<() => void> },
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
  let lastSeq = opts.after ?? 0;
  let closed = false;
  let draining: Promise<void> | undefined;
  let again = false;

  const cleanup = () => {
    closed = true;
    offLog();
    offFinished();
    clearInterval(poll);
    opts.open.delete(endNow);
  };
  // Server shutdown ends open streams; clients reconnect elsewhere with Last-Event-ID.
  const endNow = () => {
    if (closed) return;
    cleanup();
    res.end();
  };

  const drain = async (): Promise<void> => {
    do {
      again = false;
      // The run before its lines: a run seen finished has stored every line it will ever write, so
      // the lines read after that are all of them. Read the other way round, lines written between
      // the last page and the finish would never be sent.
      const run = await engine.storage.runs.get(opts.runId);
      for (;;) {
        const lines = await engine.storage.logs.list(opts.runId, { afterSeq: lastSeq, limit: 500, ...(opts.level && { minLevel: opts.level }) });
        for (const line of lines) {
          if (closed) return;
          res.write(`id: ${line.seq}\nevent: log\ndata: ${JSON.stringify(logView(line))}\n\n`);
          lastSeq = line.seq;
        }
        if (lines.length < 500) break;
      }
      if (!run || FINISHED_STATUSES.includes(run.status)) {
        if (!closed) {
          res.write(`event: end\ndata: ${JSON.stringify({ id: opts.runId, status: run?.status ?? null })}\n\n`);
          cleanup();
          res.end();
        }
        return;
      }
    } while (again && !closed);
  };

  const kick = () => {
    if (closed) return;
    if (draining) {
      again = true;
      return;
    }
    draining = drain()
      .catch((err: unknown) => {
        request.log.error({ err }, "log stream failed");
        cleanup();
        res.end();
      })
      .finally(() => {
        draining = undefined;
      });
  };

  // A stream outlives the request that authorized it: the key is looked at again on every poll, and
  // a key revoked (or removed) since ends the stream with the error a new request would get.
  const keyId = request.principal?.keyId ?? undefined;
  let checking = false;
  const checkKey = () => {
    if (keyId === undefined || checking || closed) return;
    checking = true;
    engine.storage.keys
      .get(keyId)
      .then((key) => {
        if (closed || (key && key.revokedAt === null)) return;
        const error = { code: "UNAUTHENTICATED", message: `API key ${keyId} has been revoked`, fix: hintFor("UNAUTHENTICATED", "http") };
        res.write(`event: error\ndata: ${JSON.stringify({ error })}\n\n`);
        cleanup();
        res.end();
      })
      .catch((err: unknown) => request.log.debug({ err }, "could not check the log stream's API key; checking again at the next poll"))
      .finally(() => {
        checking = false;
      });
  };

  const offLog = engine.events.on("run:log", (e) => e.runId === opts.runId && kick());
  const offFinished = engine.events.on("run:finished", (e) => e.run.id === opts.runId && kick());
  const poll = setInterval(() => {
    kick();
    checkKey();
  }, engine.config.pollMs);
  request.raw.on("close", cleanup);
  opts.open.add(endNow);
  kick();
}
