import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { bearer, copyExamples, createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";
import { descendants, isAlive, spawnTracked, trackPid, waitUntilGone } from "./processes.js";

const BIN = fileURLToPath(new URL("../bin/bifrost.js", import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Options {
  /** Run the CLI in the launcher's own process (node already has --no-node-snapshot). */
  inProcess?: boolean;
  onStdout?: (chunk: string, child: ChildProcess) => void;
  onStderr?: (chunk: string, child: ChildProcess) => void;
}

function launch(args: string[], env: Record<string, string>, options: Options = {}): ChildProcess {
  const node = options.inProcess ? ["--no-node-snapshot", BIN] : [BIN];
  return spawnTracked(process.execPath, [...node, ...args], { env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
}

function bifrost(args: string[], env: Record<string, string>, options: Options = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = launch(args, env, options);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      options.onStdout?.(d.toString(), child);
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      options.onStderr?.(d.toString(), child);
    });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `bifrost start` on a free port; resolves once both banner lines are out. */
async function startEngine(env: Record<string, string>, options: Options = {}) {
  const child = launch(["start"], { ...env, BIFROST_PORT: "0", LOG_LEVEL: "warn" }, options);
  let stderr = "";
  const { url, pid } = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      // The banner is two lines that may arrive in separate chunks.
      const m = /listening on (http:\/\/[^\s]+) \(pid (\d+)/.exec(stderr);
      if (m && /workflow\(s\)/.test(stderr)) resolve({ url: m[1]!, pid: Number(m[2]) });
    });
    child.on("exit", (code) => reject(new Error(`start exited with ${code}: ${stderr}`)));
  });
  trackPid(pid);
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  // Every writer of the pipe (the launcher and the engine it started) has closed it.
  const outputClosed = new Promise<void>((resolve) => child.stderr!.on("close", resolve));
  return { child, url, enginePid: pid, exited, outputClosed, stderr: () => stderr };
}

function portRefuses(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.on("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.on("error", () => resolve(true));
  });
}

/** The `fix:` line the CLI printed for an error. */
const fixLine = (stderr: string) => /^\s*fix: (.*)$/m.exec(stderr)?.[1] ?? "";

describe("bifrost CLI", () => {
  const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: copyExamples() };

  it("runs a workflow, prints its logs and result, and records the run", async () => {
    const res = await bifrost(["run", "hello", "--params", '{"name":"Ada"}'], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/INFO {2}Hello, Ada! \{"trigger":"cli"\}/);
    const result = JSON.parse(res.stdout.slice(res.stdout.indexOf("{\n")));
    expect(result).toMatchObject({ greeting: "Hello, Ada!" });
    expect(res.stderr).toMatch(/succeeded in/);

    const list = await bifrost(["runs", "list", "--json"], env);
    const page = JSON.parse(list.stdout) as { items: { id: string; workflow: string; trigger: string; status: string }[]; nextCursor: string | null };
    expect(page.items[0]).toMatchObject({ id: result.runId, workflow: "hello", trigger: "cli", status: "succeeded" });

    const show = await bifrost(["runs", "show", result.runId], env);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/status: +succeeded/);
    expect(show.stdout).toMatch(/result: +\{"greeting":"Hello, Ada!"/);

    const logs = await bifrost(["runs", "logs", result.runId, "--json"], env);
    expect(logs.stdout.trim().split("\n").map((l) => JSON.parse(l))).toEqual([{ seq: 1, ts: expect.any(String), level: "info", msg: "Hello, Ada!", data: { trigger: "cli" } }]);
  });

  it("runs the steps example with --json", async () => {
    const res = await bifrost(["run", "device_report", "--params", '{"devices":60}', "--json"], env);
    expect(res.code).toBe(0);
    const run = JSON.parse(res.stdout);
    expect(run).toMatchObject({ status: "succeeded", result: { checked: 60, chunks: 3 } });
    expect(run.steps.map((s: { name: string }) => s.name)).toEqual(["fetch inventory", "check#0", "check#1", "check#2"]);
    expect(res.stderr).toMatch(/\[check#2\] chunk 2/);
  });

  it("exits 1 for a failing workflow and shows the error with the user's file and line", async () => {
    const res = await bifrost(["run", "always_fails"], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/failed in/);
    expect(res.stderr).toMatch(/WORKFLOW_ERROR: HaloPSA rejected the update of ticket 4242/);
    expect(res.stderr).toMatch(/in step: update ticket/);
    expect(res.stderr).toMatch(/workflows\/always_fails\.ts:\d+:\d+/);
    expect(res.stdout).toMatch(/attempt 1 of 2 failed/);
    expect(res.stdout.match(/loading ticket/g)).toHaveLength(1);
  });

  it("reports bad input with a stable code, exit status 2 and a fix that is true in a terminal", async () => {
    const cases: [string[], string, RegExp][] = [
      [["run", "hello", "--params", '{"name":""}'], "INVALID_PARAMS", /--params .*bifrost workflows list --json/],
      [["run", "hello", "--params", "{oops"], "INVALID_JSON", /--params/],
      [["run", "nope"], "WORKFLOW_NOT_FOUND", /bifrost workflows list/],
      [["runs", "show", "00000000-0000-7000-8000-000000000000"], "RUN_NOT_FOUND", /bifrost runs list/],
      [["runs", "list", "--since", "yesterday"], "VALIDATION_FAILED", /^Pass --since as an ISO 8601/],
      [["runs", "list", "--cursor", "nope"], "VALIDATION_FAILED", /--cursor .*previous page/],
      [["run", "hello", "--org", "bad org!"], "VALIDATION_FAILED", /option named in the message/],
      [["frobnicate"], "CLI_USAGE", /bifrost help/],
      [["run", "hello", "--bogus"], "CLI_USAGE", /bifrost help/],
    ];
    for (const [args, code, fix] of cases) {
      const res = await bifrost(args, env);
      const shown = { args, code: res.code, err: res.stderr.match(/error ([A-Z_]+)/)?.[1], fix: fixLine(res.stderr) };
      expect(shown).toEqual({ args, code: 2, err: code, fix: expect.stringMatching(fix) });
      // Nothing about HTTP requests: there is none in a terminal.
      expect(shown.fix).not.toMatch(/Content-Type|request|body|GET |POST |\/api\//);
    }
  });

  it("lists workflows, and modules that did not load, in the shape of GET /api/workflows", async () => {
    const dataDir = tempDir();
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "ok.ts": workflowSource("ok", "return 1;"), "flip.ts": workflowSource("flip", "return 1;"), "bad.ts": "export default workflow({" });
    const dirs = { BIFROST_DATA_DIR: dataDir, BIFROST_WORKFLOWS_DIR: workflowsDir };
    const first = await bifrost(["workflows", "list"], dirs);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^NAME +SCHEDULE/m);
    expect(first.stdout).toMatch(/^ok +- +[0-9a-f]{16}/m);
    expect(first.stderr).toMatch(/not loaded: \S*bad\.ts:1:\d+/);

    // flip breaks after its first version was registered: that version keeps serving.
    writeFileSync(join(workflowsDir, "flip.ts"), workflowSource("flip", "return 1 +;"));
    const cli = JSON.parse((await bifrost(["workflows", "list", "--json"], dirs)).stdout);
    const server = await startServer(loadConfig({}, { dataDir, workflowsDir, port: 0, watch: false }), { logger: memoryLogger().logger });
    let http: typeof cli;
    try {
      http = await (await fetch(`${server.url}/api/workflows`, { headers: bearer(await createTestKey(server.engine, "viewer")) })).json();
    } finally {
      await server.close();
    }
    const withoutTimes = (listing: typeof cli) => JSON.parse(JSON.stringify(listing, (key, value) => (["at", "nextFireAt"].includes(key) ? "<time>" : value)));
    expect(withoutTimes(cli)).toEqual(withoutTimes(http));
    expect(cli.items.map((w: { name: string }) => w.name)).toEqual(["flip", "ok"]);
    expect(cli.items[0].lastError).toMatchObject({ code: "WORKFLOW_COMPILE_ERROR" });
    expect(cli.problems).toEqual([{ file: join(workflowsDir, "bad.ts"), error: expect.objectContaining({ code: "WORKFLOW_COMPILE_ERROR" }), at: expect.any(String) }]);

    const examples = JSON.parse((await bifrost(["workflows", "list", "--json"], env)).stdout);
    expect(examples.items.map((w: { name: string }) => w.name)).toEqual(["always_fails", "device_report", "hello"]);
    expect(examples.problems).toEqual([]);
  });

  it("bifrost run warns only about the module it runs, and names the version it runs when the new text is rejected", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "flip.ts": workflowSource("flip", "return 'v1';"), "other.ts": "export default workflow({" });
    const dirs = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: workflowsDir };
    const first = await bifrost(["run", "flip", "--json"], dirs);
    expect(first.code).toBe(0);
    expect(first.stderr).not.toMatch(/other\.ts|warning/);
    const v1 = JSON.parse(first.stdout).workflowVersion as string;

    writeFileSync(join(workflowsDir, "flip.ts"), workflowSource("flip", "return 'v2' +;"));
    const second = await bifrost(["run", "flip", "--json"], dirs);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ workflowVersion: v1, result: "v1" });
    expect(second.stderr).toMatch(new RegExp(`warning: "flip" runs its last good version ${v1} \\(registered \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\): the current text of \\S*flip\\.ts was rejected: WORKFLOW_COMPILE_ERROR \\S*flip\\.ts:\\d+:\\d+`));
    expect(second.stderr).not.toMatch(/other\.ts/);
  });

  it("lists runs with the filters, cursor and page shape of GET /api/runs", async () => {
    const dataDir = tempDir();
    const workflowsDir = copyExamples();
    const server = await startServer(loadConfig({}, { dataDir, workflowsDir, port: 0, watch: false }), { logger: memoryLogger().logger });
    try {
      const auth = bearer(await createTestKey(server.engine));
      const trigger = async (name: string, org?: string) => {
        const res = await fetch(`${server.url}/api/workflows/hello/runs`, { method: "POST", headers: { "content-type": "application/json", ...auth }, body: JSON.stringify({ params: { name }, org, wait: 20_000 }) });
        return ((await res.json()) as { id: string; queuedAt: string }).id;
      };
      const ids = [await trigger("a", "contoso"), await trigger("b", "fabrikam"), await trigger("c", "contoso")];
      const dirs = { BIFROST_DATA_DIR: dataDir, BIFROST_WORKFLOWS_DIR: workflowsDir };
      const cli = async (args: string[]) => {
        const res = await bifrost(["runs", "list", "--json", ...args], dirs);
        expect({ args, code: res.code, stderr: res.stderr }).toEqual({ args, code: 0, stderr: "" });
        return JSON.parse(res.stdout) as { items: { id: string }[]; nextCursor: string | null };
      };
      const api = async (query: string) => (await (await fetch(`${server.url}/api/runs?${query}`, { headers: auth })).json()) as { items: { id: string }[]; nextCursor: string | null };

      const page1 = await cli(["--limit", "2"]);
      expect(page1).toEqual(await api("limit=2"));
      expect(page1.items.map((r) => r.id)).toEqual([ids[2], ids[1]]);
      expect(page1.nextCursor).toEqual(expect.any(String));
      const page2 = await cli(["--limit", "2", "--cursor", page1.nextCursor!]);
      expect(page2.items.map((r) => r.id)).toEqual([ids[0]]);
      expect(page2.nextCursor).toBeNull();

      const { items } = await cli(["--org", "contoso", "--trigger", "api", "--status", "succeeded", "--workflow", "hello"]);
      expect(items.map((r) => r.id)).toEqual([ids[2], ids[0]]);
      const secondQueued = ((await api("limit=200")).items as unknown as { id: string; queuedAt: string }[]).find((r) => r.id === ids[1])!.queuedAt;
      const until = await cli(["--until", secondQueued]);
      expect(until).toEqual(await api(`until=${encodeURIComponent(secondQueued)}`));
      expect(until.items.map((r) => r.id)).toContain(ids[0]);
      expect(until.items.map((r) => r.id)).not.toContain(ids[2]);
      expect((await cli(["--since", "2999-01-01T00:00:00Z"])).items).toEqual([]);
      expect((await cli(["--trigger", "cli"])).items).toEqual([]);

      const human = await bifrost(["runs", "list", "--limit", "1"], dirs);
      expect(human.stdout).toMatch(new RegExp(`^${ids[2]} +hello +succeeded +api`, "m"));
      expect(human.stderr).toMatch(/more: add --cursor \S+/);
      for (const bad of [["--cursor", "nope"], ["--limit", "0"], ["--limit", "201"], ["--status", "done"], ["--trigger", "cron"], ["--until", "soon"]]) {
        const res = await bifrost(["runs", "list", ...bad], dirs);
        expect({ bad, code: res.code, err: /error (VALIDATION_FAILED|CLI_USAGE)/.test(res.stderr) }).toEqual({ bad, code: 2, err: true });
      }
    } finally {
      await server.close();
    }
  });

  it("streams log lines while the run is still going", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "ticker.ts": workflowSource("ticker", `ctx.log.info("tick"); await new Promise(() => {});`, `\n  timeout: "2s",`) });
    let seenWhileRunning = false;
    const res = await bifrost(["run", "ticker"], { ...env, BIFROST_WORKFLOWS_DIR: workflowsDir }, {
      onStdout: (chunk, child) => {
        if (chunk.includes("tick") && child.exitCode === null) seenWhileRunning = true;
      },
    });
    expect(seenWhileRunning).toBe(true);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/timed_out/);
    expect(res.stderr).toMatch(/RUN_TIMED_OUT/);
  });

  for (const inProcess of [false, true]) {
    it(`cancels the run on Ctrl-C (SIGINT) instead of leaving it to be resumed (${inProcess ? "one process" : "launcher and child"})`, async () => {
      const workflowsDir = tempDir("bifrost-wf-");
      writeFiles(workflowsDir, { "waits.ts": workflowSource("waits", `ctx.log.info("tick"); await new Promise(() => {});`) });
      const res = await bifrost(["run", "waits"], { ...env, BIFROST_WORKFLOWS_DIR: workflowsDir }, {
        inProcess,
        onStdout: (chunk, child) => {
          if (chunk.includes("tick")) child.kill("SIGINT");
        },
      });
      expect(res.code).toBe(130);
      expect(res.stderr).toMatch(/cancelled in/);
      expect(res.stderr).toMatch(/RUN_CANCELLED: the run was cancelled/);
      const id = /run (\S+) of waits started/.exec(res.stderr)?.[1];
      const shown = JSON.parse((await bifrost(["runs", "show", id!, "--json"], env)).stdout);
      expect(shown).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" } });
    });
  }

  it("hands the run back on SIGTERM and exits 143", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "waits.ts": workflowSource("waits", `ctx.log.info("tick"); await new Promise(() => {});`) });
    const res = await bifrost(["run", "waits"], { ...env, BIFROST_WORKFLOWS_DIR: workflowsDir, BIFROST_SHUTDOWN_GRACE_MS: "100" }, {
      onStdout: (chunk, child) => {
        if (chunk.includes("tick")) child.kill("SIGTERM");
      },
    });
    expect(res.stderr).toMatch(/SIGTERM: stopping/);
    expect(res.stderr).not.toMatch(/error INTERNAL/);
    expect(res.code).toBe(143);
  });

  it("starts the engine: the first-start admin key, HTTP trigger, logs, and a clean SIGTERM shutdown", async () => {
    const engine = await startEngine({ ...env, BIFROST_DATA_DIR: tempDir() });
    expect(engine.stderr()).toMatch(/3 workflow\(s\)/);
    // A fresh data directory: the engine made an admin key and printed it, with how to use it.
    const key = /^ {4}(bfk_\S+)$/m.exec(engine.stderr())?.[1];
    expect(key).toEqual(expect.stringMatching(/^bfk_key_[0-9a-f]{16}_/));
    expect(engine.stderr()).toContain(`curl -H "Authorization: Bearer ${key}" ${engine.url}/api/workflows`);
    expect(engine.stderr()).toContain(`BIFROST_API_KEY=${key}`);
    expect(engine.stderr()).toMatch(/bifrost keys create --role/);
    expect((await fetch(`${engine.url}/api/workflows/hello/runs`, { method: "POST" })).status).toBe(401);
    const res = await fetch(`${engine.url}/api/workflows/hello/runs`, { method: "POST", headers: { "content-type": "application/json", ...bearer(key!) }, body: JSON.stringify({ params: { name: "HTTP" }, wait: 20_000 }) });
    const run = (await res.json()) as { id: string; status: string; result: unknown };
    expect(run).toMatchObject({ status: "succeeded", result: { greeting: "Hello, HTTP!" } });
    const logs = (await (await fetch(`${engine.url}/api/runs/${run.id}/logs`, { headers: bearer(key!) })).json()) as { items: { msg: string }[] };
    expect(logs.items.map((l) => l.msg)).toEqual(["Hello, HTTP!"]);
    engine.child.kill("SIGTERM");
    expect(await engine.exited).toBe(0);
    await engine.outputClosed;
    expect(isAlive(engine.enginePid)).toBe(false);
  });

  it("never leaves the engine running when the bifrost process is killed with SIGKILL", async () => {
    const engine = await startEngine(env);
    // Started as a child of the launcher here (plain `node bin/bifrost.js`).
    expect(engine.enginePid).not.toBe(engine.child.pid);
    engine.child.kill("SIGKILL");
    await engine.exited;
    // The engine stops on its own: the pipe it shares with the launcher closes when it exits.
    await engine.outputClosed;
    await waitUntilGone(engine.enginePid);
    expect(await portRefuses(engine.url)).toBe(true);
  });

  it("runs the engine in the launcher's own process when node already has the flags it needs", async () => {
    const engine = await startEngine(env, { inProcess: true });
    expect(engine.enginePid).toBe(engine.child.pid);
    engine.child.kill("SIGKILL");
    await engine.outputClosed;
    expect(await portRefuses(engine.url)).toBe(true);
  });
});

describe("bifrost run when its launcher is killed", () => {
  it("stops the embedded engine too", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "waits.ts": workflowSource("waits", `ctx.log.info("tick"); await new Promise(() => {});`) });
    const launcher = launch(["run", "waits"], { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: workflowsDir, BIFROST_SHUTDOWN_GRACE_MS: "100" });
    const closed = new Promise<void>((resolve) => launcher.stdout!.on("close", resolve));
    const enginePid = await new Promise<number>((resolve) => {
      launcher.stdout!.on("data", (d: Buffer) => {
        // The launcher's only child is the CLI with its embedded engine.
        if (d.toString().includes("tick")) resolve(descendants(launcher.pid!)[0]!);
      });
    });
    expect(enginePid).toEqual(expect.any(Number));
    trackPid(enginePid);
    launcher.kill("SIGKILL");
    await closed;
    await waitUntilGone(enginePid);
  });
});
