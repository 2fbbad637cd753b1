import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { tempDir, workflowSource, writeFiles } from "./helpers.js";

const BIN = fileURLToPath(new URL("../bin/bifrost.js", import.meta.url));
const EXAMPLES = fileURLToPath(new URL("../workflows", import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function bifrost(args: string[], env: Record<string, string>, onStdout?: (chunk: string, child: ReturnType<typeof spawn>) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(d.toString(), child);
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("bifrost CLI", () => {
  const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: EXAMPLES };

  it("runs a workflow, prints its logs and result, and records the run", async () => {
    const res = await bifrost(["run", "hello", "--params", '{"name":"Ada"}'], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/INFO {2}Hello, Ada! \{"trigger":"cli"\}/);
    const result = JSON.parse(res.stdout.slice(res.stdout.indexOf("{\n")));
    expect(result).toMatchObject({ greeting: "Hello, Ada!" });
    expect(res.stderr).toMatch(/succeeded in/);

    const list = await bifrost(["runs", "list", "--json"], env);
    const runs = JSON.parse(list.stdout) as { id: string; workflow: string; trigger: string; status: string }[];
    expect(runs[0]).toMatchObject({ id: result.runId, workflow: "hello", trigger: "cli", status: "succeeded" });

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

  it("reports bad input with a stable code and exit status 2", async () => {
    const cases: [string[], string][] = [
      [["run", "hello", "--params", '{"name":""}'], "INVALID_PARAMS"],
      [["run", "hello", "--params", "{oops"], "INVALID_JSON"],
      [["run", "nope"], "WORKFLOW_NOT_FOUND"],
      [["runs", "show", "00000000-0000-7000-8000-000000000000"], "RUN_NOT_FOUND"],
      [["frobnicate"], "CLI_USAGE"],
      [["run", "hello", "--bogus"], "CLI_USAGE"],
    ];
    for (const [args, code] of cases) {
      const res = await bifrost(args, env);
      expect({ args, code: res.code, err: res.stderr.match(/error ([A-Z_]+)/)?.[1] }).toEqual({ args, code: 2, err: code });
    }
  });

  it("lists workflows, and modules that did not load", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "ok.ts": workflowSource("ok", "return 1;"), "bad.ts": "export default workflow({" });
    const res = await bifrost(["workflows", "list"], { ...env, BIFROST_WORKFLOWS_DIR: workflowsDir });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^NAME +SCHEDULE/m);
    expect(res.stdout).toMatch(/^ok +- +[0-9a-f]{16}/m);
    expect(res.stderr).toMatch(/not loaded: bad\.ts:1:\d+/);
    const json = JSON.parse((await bifrost(["workflows", "list", "--json"], env)).stdout);
    expect(json.items.map((w: { name: string }) => w.name)).toEqual(["always_fails", "device_report", "hello"]);
  });

  it("streams log lines while the run is still going", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "ticker.ts": workflowSource("ticker", `ctx.log.info("tick"); await new Promise(() => {});`, `\n  timeout: "2s",`) });
    let seenWhileRunning = false;
    const res = await bifrost(["run", "ticker"], { ...env, BIFROST_WORKFLOWS_DIR: workflowsDir }, (chunk, child) => {
      if (chunk.includes("tick") && child.exitCode === null) seenWhileRunning = true;
    });
    expect(seenWhileRunning).toBe(true);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/timed_out/);
    expect(res.stderr).toMatch(/RUN_TIMED_OUT/);
  });

  it("cancels the run on Ctrl-C (SIGINT) instead of leaving it to be resumed", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "waits.ts": workflowSource("waits", `ctx.log.info("tick"); await new Promise(() => {});`) });
    const res = await bifrost(["run", "waits"], { ...env, BIFROST_WORKFLOWS_DIR: workflowsDir }, (chunk, child) => {
      if (chunk.includes("tick")) child.kill("SIGINT");
    });
    expect(res.code).toBe(130);
    expect(res.stderr).toMatch(/cancelled in/);
    expect(res.stderr).toMatch(/RUN_CANCELLED: the run was cancelled/);
    const id = /run (\S+) of waits started/.exec(res.stderr)?.[1];
    const shown = JSON.parse((await bifrost(["runs", "show", id!, "--json"], env)).stdout);
    expect(shown).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" } });
  });

  it("starts the engine: HTTP trigger, logs, and a clean SIGTERM shutdown", async () => {
    const child = spawn(process.execPath, [BIN, "start"], { env: { ...process.env, ...env, BIFROST_PORT: "0", LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        // The banner is two lines that may arrive in separate chunks.
        const m = /listening on (http:\/\/[^\s]+)/.exec(stderr);
        if (m && /workflow\(s\)/.test(stderr)) resolve(m[1]!);
      });
      child.on("exit", (code) => reject(new Error(`start exited with ${code}: ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(stderr).toMatch(/3 workflow\(s\)/);
    const res = await fetch(`${url}/api/workflows/hello/runs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ params: { name: "HTTP" }, wait: 20_000 }) });
    const run = (await res.json()) as { id: string; status: string; result: unknown };
    expect(run).toMatchObject({ status: "succeeded", result: { greeting: "Hello, HTTP!" } });
    const logs = (await (await fetch(`${url}/api/runs/${run.id}/logs`)).json()) as { items: { msg: string }[] };
    expect(logs.items.map((l) => l.msg)).toEqual(["Hello, HTTP!"]);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
