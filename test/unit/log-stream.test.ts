import type { FastifyReply, FastifyRequest } from "fastify";
import { describe, expect, it } from "vitest";
import { streamLogs } from "../../engine/api/log-stream.js";
import type { Engine } from "../../engine/engine.js";
import { EngineEvents } from "../../engine/events.js";
import type { LogQuery, LogRecord, RunStatus } from "../../storage/types.js";

describe("the SSE log stream", () => {
  it("sends the lines a run wrote just before it finished, and only then the end", async () => {
    const runId = "r1";
    const stored: LogRecord[] = [];
    let status: RunStatus = "running";
    let reads = 0;
    const engine = {
      events: new EngineEvents(),
      config: { pollMs: 5 },
      storage: {
        runs: { get: async () => ({ id: runId, status }) },
        logs: {
          async list(_id: string, q: LogQuery) {
            const page = stored.filter((l) => l.seq > (q.afterSeq ?? 0)).slice(0, q.limit);
            // Right after the stream's first read, the run writes its last lines and finishes.
            if (++reads === 1) {
              stored.push({ runId, seq: 1, ts: 0, level: "info", msg: "one" }, { runId, seq: 2, ts: 0, level: "info", msg: "two" });
              status = "succeeded";
            }
            return page;
          },
        },
      },
    } as unknown as Engine;
    const written: string[] = [];
    const ended = new Promise<void>((resolve) => {
      const reply = { hijack() {}, raw: { writeHead() {}, write: (chunk: string) => written.push(chunk), end: () => resolve() } } as unknown as FastifyReply;
      const request = { raw: { on() {} }, log: { error() {} } } as unknown as FastifyRequest;
      void streamLogs(engine, request, reply, { runId, open: new Set() });
    });
    await ended;
    expect(written.map((w) => /^(id: \d+|event: end)/.exec(w)?.[1])).toEqual(["id: 1", "id: 2", "event: end"]);
  });
});
