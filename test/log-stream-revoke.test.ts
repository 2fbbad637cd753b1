import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { createKey, revokeKey } from "../engine/auth/key-store.js";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { bearer, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";
import { listenLocal } from "./http-servers.js";

/**
 * A live log stream was authorized when it opened; revoking its key ends it with the error a new
 * request with that key would get, instead of letting it run on for as long as the run does.
 */

const WAITS = workflowSource("waits", `ctx.log.info("started"); await ctx.http.get(params.url); return "done";`);

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe("a live log stream and its key", () => {
  it("ends with UNAUTHENTICATED once its key is revoked", async () => {
    let held: ServerResponse | undefined;
    const upstream = await listenLocal((_req, res) => (held = res));
    // Closed in this order: the held answer goes out (so the run can end), the engine stops, then this server.
    closers.push(async () => void held?.end("{}"));
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "waits.ts": WAITS });
    const server: RunningServer = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
    closers.push(() => server.close(), upstream.close);
    const operator = await createKey(server.engine.storage, { role: "operator", org: null }, Date.now());
    const { run } = await server.engine.triggerRun("waits", { params: { url: `${upstream.url}/slow` } });

    const res = await fetch(`${server.url}/api/runs/${run.id}/logs`, { headers: { ...bearer(operator.key), accept: "text/event-stream" } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) return false;
        text += decoder.decode(value, { stream: true });
      }
      return true;
    };
    expect(await readUntil('"msg":"started"')).toBe(true);
    await revokeKey(server.engine.storage, operator.record.id, Date.now());
    expect(await readUntil("event: error")).toBe(true);
    // The stream closes after the error: nothing more comes.
    expect(await readUntil("never sent")).toBe(false);
    const error = JSON.parse(text.slice(text.indexOf("event: error")).split("\ndata: ")[1]!.split("\n")[0]!) as { error: { code: string; message: string } };
    expect(error.error).toMatchObject({ code: "UNAUTHENTICATED", message: expect.stringContaining("revoked") });
    expect((await server.engine.storage.runs.get(run.id))?.status).toBe("running");
  });
});
