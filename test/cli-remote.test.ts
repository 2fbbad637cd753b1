import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type EngineConfig } from "../engine/config.js";
import type { Engine } from "../engine/engine.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { copyExamples, createTestKey, memoryLogger, openTestEngine, tempDir, workflowSource, writeFiles } from "./helpers.js";
import { spawnTracked } from "./processes.js";

/**
 * The CLI as a client of a running server (BIFROST_URL + BIFROST_API_KEY) and, for cancel, retry
 * and --follow, embedded beside one: the real CLI in a child process, a real listening server, and
 * a second engine on the server's database executing the long runs.
 */

const BIN = fileURLToPath(new URL("../bin/bifrost.js", import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function bifrost(args: string[], env: Record<string, string>, onStdout?: (all: string, child: ChildProcess) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: "1", LOG_LEVEL: "silent", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, child);
    });
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

const fixLine = (stderr: string) => /^\s*fix: (.*)$/m.exec(stderr)?.[1] ?? "";

const FLAKY = workflowSource(
  "flaky",
  `const ticket = await ctx.step("load", () => { ctx.log.info("loading ticket"); return 42; });
   if (ctx.run.trigger !== "retry") throw new Error("upstream down");
   return { ticket };`,
);
/** A line per durable step, without end: the test cancels it once it has seen enough. */
const CHATTY = workflowSource("chatty", `for (let i = 0; i < 1000000; i++) { ctx.log.info("line " + i); await ctx.step("s" + i, () => i); }`);

let dataDir: string;
let workflowsDir: string;
let config: EngineConfig;
let server: RunningServer;
let worker: Engine;
let operator: string;
let viewer: string;
/** The CLI in client mode; its data directory is a file, so embedded access could only fail. */
let remote: Record<string, string>;
/** The CLI embedded on the server's data directory. */
let local: Record<string, string>;

beforeAll(async () => {
  dataDir = tempDir();
  workflowsDir = copyExamples();
  writeFiles(workflowsDir, { "spin.ts": workflowSource("spin", `ctx.log.info("spinning"); for (;;) {}`), "flaky.ts": FLAKY, "chatty.ts": CHATTY });
  config = loadConfig({}, { dataDir, workflowsDir, port: 0, watch: false, pollMs: 50 });
  server = await startServer(config, { logger: memoryLogger().logger });
  operator = await createTestKey(server.engine, "operator");
  viewer = await createTestKey(server.engine, "viewer");
  worker = (await openTestEngine({ dataDir, workflowsDir, deps: { hostLimits: { maxLogLines: 1_000_000 } } })).engine;
  worker.start({ claim: false, watch: false });
  const notADirectory = join(tempDir(), "file");
  writeFileSync(notADirectory, "");
  remote = { BIFROST_URL: server.url, BIFROST_API_KEY: operator, BIFROST_DATA_DIR: notADirectory, BIFROST_WORKFLOWS_DIR: notADirectory };
  local = { BIFROST_DATA_DIR: dataDir, BIFROST_WORKFLOWS_DIR: workflowsDir };
});

afterAll(async () => {
  await worker?.stop(0);
  await server?.close();
});

/** A run executing in the worker engine, once it has logged its first line. */
async function inWorker(name: string): Promise<string> {
  const { run } = await worker.triggerRun(name, {}, { adopt: true });
  await worker.events.next("run:log", (e) => e.runId === run.id);
  return run.id;
}

describe("CLI client mode (BIFROST_URL, BIFROST_API_KEY)", () => {
  it("runs a workflow on the server: streams its lines, prints the result, exits 0", async () => {
    const res = await bifrost(["run", "hello", "--params", '{"name":"Ada"}'], remote);
    expect(res).toMatchObject({ code: 0 });
    expect(res.stdout).toMatch(/INFO {2}Hello, Ada! \{"trigger":"api"\}/);
    expect(res.stderr).toMatch(new RegExp(`run \\S+ of hello started on ${server.url.replace(/[.]/g, "\\.")}`));
    expect(res.stderr).toMatch(/succeeded in/);
    expect(JSON.parse(res.stdout.slice(res.stdout.indexOf("{\n")))).toMatchObject({ greeting: "Hello, Ada!" });

    const failed = await bifrost(["run", "always_fails", "--json"], remote);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ status: "failed", error: { code: "WORKFLOW_ERROR" }, steps: expect.any(Array) });
  });

  /** The command's --json output in client mode and embedded: the same. */
  async function sameBothWays(args: string[]): Promise<void> {
    const [viaServer, embedded] = await Promise.all([bifrost(args, remote), bifrost(args, local)]);
    // `runs logs --json` prints one JSON line per log line.
    const parsed = (stdout: string): unknown => (args[1] === "logs" ? stdout.trim().split("\n").map((l) => JSON.parse(l)) : JSON.parse(stdout));
    expect({ args, code: viaServer.code, stderr: viaServer.stderr }).toEqual({ args, code: 0, stderr: "" });
    expect({ args, out: parsed(viaServer.stdout) }).toEqual({ args, out: parsed(embedded.stdout) });
  }

  it("reads runs as the embedded CLI does, in the same shapes", async () => {
    const { run } = await server.engine.triggerRun("hello", { params: { name: "both" } });
    await server.engine.waitForRun(run.id, 30_000);
    await sameBothWays(["runs", "list", "--json", "--workflow", "hello", "--limit", "2"]);
    await sameBothWays(["runs", "show", run.id, "--json"]);
    const human = await bifrost(["runs", "show", run.id], remote);
    expect(human.stdout).toMatch(/status: +succeeded/);
    expect(human.stdout).toMatch(/result: +\{"greeting":"Hello, both!"/);
  });

  it("reads log lines and workflows as the embedded CLI does", async () => {
    const { run } = await server.engine.triggerRun("device_report", { params: { devices: 20 } });
    await server.engine.waitForRun(run.id, 30_000);
    await sameBothWays(["runs", "logs", run.id, "--json"]);
    await sameBothWays(["workflows", "list", "--json"]);
  });

  it("prints the server's errors as the CLI's own: code, message, a fix for the terminal, exit 2", async () => {
    const missing = await bifrost(["runs", "show", "00000000-0000-7000-8000-000000000000"], remote);
    expect({ code: missing.code, err: /error RUN_NOT_FOUND: No run with id/.test(missing.stderr), fix: fixLine(missing.stderr) }).toEqual({ code: 2, err: true, fix: expect.stringMatching(/bifrost runs list/) });
    const params = await bifrost(["run", "hello", "--params", '{"name":""}'], remote);
    expect({ code: params.code, fix: fixLine(params.stderr) }).toEqual({ code: 2, fix: expect.stringMatching(/--params/) });
    const forbidden = await bifrost(["runs", "cancel", "00000000-0000-7000-8000-000000000000"], { ...remote, BIFROST_API_KEY: viewer });
    expect({ code: forbidden.code, err: /error FORBIDDEN/.test(forbidden.stderr), fix: fixLine(forbidden.stderr) }).toEqual({ code: 2, err: true, fix: expect.stringMatching(/BIFROST_API_KEY/) });
    const badKey = await bifrost(["runs", "list"], { ...remote, BIFROST_API_KEY: "bfk_key_0000000000000000_nope" });
    expect({ code: badKey.code, err: /error UNAUTHENTICATED/.test(badKey.stderr), fix: fixLine(badKey.stderr) }).toEqual({ code: 2, err: true, fix: expect.stringMatching(/BIFROST_API_KEY/) });
    for (const res of [missing, params, forbidden, badKey]) expect(fixLine(res.stderr)).not.toMatch(/Content-Type|request|body|GET |POST |\/api\//);
  });

  it("says clearly when the address is wrong, nothing answers there, or the key is missing: never a stack", { timeout: 120_000 }, async () => {
    const other: Server = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<html>hello</html>"));
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    const otherUrl = `http://127.0.0.1:${(other.address() as { port: number }).port}`;
    const closed: Server = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const closedUrl = `http://127.0.0.1:${(closed.address() as { port: number }).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    try {
      const cases: [Record<string, string>, string, number][] = [
        [{ ...remote, BIFROST_URL: otherUrl }, "SERVER_REPLY_INVALID", 1],
        [{ ...remote, BIFROST_URL: closedUrl }, "SERVER_UNREACHABLE", 1],
        [{ ...remote, BIFROST_URL: `${server.url}/not/here` }, "ROUTE_NOT_FOUND", 2],
        [{ ...remote, BIFROST_URL: "localhost:7071" }, "CONFIG_INVALID", 1],
        [{ ...remote, BIFROST_API_KEY: "" }, "CONFIG_INVALID", 1],
      ];
      for (const [env, code, exit] of cases) {
        const res = await bifrost(["runs", "list"], env);
        const shown = { url: env.BIFROST_URL, exit: res.code, code: /^error ([A-Z_]+):/m.exec(res.stderr)?.[1], stack: /\n\s+at /.test(res.stderr), fix: fixLine(res.stderr) };
        expect(shown).toEqual({ url: env.BIFROST_URL, exit, code, stack: false, fix: expect.stringMatching(/BIFROST_URL|BIFROST_API_KEY/) });
      }
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });

  it.each(["remote", "local"])("cancels a never-yielding run that another engine executes: runs cancel (%s)", async (mode) => {
    const env = mode === "remote" ? remote : local;
    const id = await inWorker("spin");
    const res = await bifrost(["runs", "cancel", id, "--json"], env);
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(res.stdout)).toMatchObject({ id, status: "cancelled", error: { code: "RUN_CANCELLED" } });
    const again = await bifrost(["runs", "cancel", id], env);
    expect({ code: again.code, err: /error RUN_NOT_CANCELLABLE: .*already finished \(cancelled\)/.test(again.stderr), fix: fixLine(again.stderr) }).toEqual({ code: 2, err: true, fix: expect.stringMatching(/bifrost runs retry/) });
  });

  it("Ctrl-C in a client-mode run cancels the run on the server", async () => {
    let sent = false;
    const res = await bifrost(["run", "spin"], remote, (all, child) => {
      if (!sent && all.includes("spinning")) sent = child.kill("SIGINT");
    });
    expect(res.code).toBe(130);
    expect(res.stderr).toMatch(/RUN_CANCELLED/);
    const id = /run (\S+) of spin started/.exec(res.stderr)?.[1];
    expect(await server.engine.storage.runs.get(id!)).toMatchObject({ status: "cancelled" });
  });

  it.each(["remote", "local"])("retries a failed run reusing its finished step (%s): the step's line appears once", async (mode) => {
    const env = mode === "remote" ? remote : local;
    const { run } = await server.engine.triggerRun("flaky");
    expect((await server.engine.waitForRun(run.id, 30_000)).status).toBe("failed");
    const res = await bifrost(["runs", "retry", run.id], env);
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(new RegExp(`run \\S+ of flaky started \\(a retry of ${run.id}\\)`)) });
    expect(res.stdout).not.toMatch(/loading ticket/);
    expect(JSON.parse(res.stdout.slice(res.stdout.indexOf("{")))).toEqual({ ticket: 42 });
    const retry = (await server.engine.listRuns({ trigger: "retry", limit: 1 }))[0]!;
    expect(retry).toMatchObject({ retryOf: run.id, status: "succeeded" });
    const lines = [...(await server.engine.storage.logs.list(run.id, { limit: 100 })), ...(await server.engine.storage.logs.list(retry.id, { limit: 100 }))];
    expect(lines.filter((l) => l.msg === "loading ticket")).toHaveLength(1);
    const refused = await bifrost(["runs", "retry", retry.id], env);
    expect({ code: refused.code, err: /error RUN_NOT_RETRYABLE: .*succeeded/.test(refused.stderr) }).toEqual({ code: 2, err: true });
  });
});

describe("runs logs --follow", () => {
  /** Follows `id` with the CLI until it exits; `onLines(count)` is told how many lines it printed. */
  function follow(id: string, env: Record<string, string>, onLines: (count: number) => void): Promise<Result> {
    return bifrost(["runs", "logs", id, "--follow", "--json"], env, (all) => onLines(all.split("\n").length - 1));
  }

  async function expectEveryLineOnce(id: string, res: Result): Promise<void> {
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: "" });
    const received = res.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { seq: number }).seq);
    const stored = (await worker.storage.logs.list(id, { limit: 1_000_000 })).map((l) => l.seq);
    expect(stored.length).toBeGreaterThan(100);
    expect(received).toEqual(stored);
  }

  it("receives every line of a chatty run exactly once while the server restarts the stream", async () => {
    const id = await inWorker("chatty");
    let restartedAt: number | undefined;
    let restarting: Promise<void> | undefined;
    let cancelling: Promise<unknown> | undefined;
    const port = new URL(server.url).port;
    const res = await follow(id, remote, (count) => {
      // Mid-run: the server goes away (ending the stream) and comes back on the same port.
      if (restarting === undefined && count >= 50) {
        restartedAt = count;
        restarting = (async () => {
          await server.close();
          server = await startServer({ ...config, port: Number(port) }, { logger: memoryLogger().logger });
        })();
      }
      // Lines after the restart came over a new stream: now let the run end.
      if (restartedAt !== undefined && cancelling === undefined && count >= restartedAt + 200) cancelling = restarting!.then(() => worker.cancel(id));
    });
    await restarting;
    await cancelling;
    expect(await worker.storage.runs.get(id)).toMatchObject({ status: "cancelled" });
    await expectEveryLineOnce(id, res);
  });

  it("embedded, polls the database and also receives every line exactly once", async () => {
    const id = await inWorker("chatty");
    let cancelling: Promise<unknown> | undefined;
    const res = await follow(id, local, (count) => {
      if (cancelling === undefined && count >= 300) cancelling = worker.cancel(id);
    });
    await cancelling;
    await expectEveryLineOnce(id, res);
  });
});
