import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { tempDir, workflowSource, writeFiles } from "./helpers.js";
import { spawnTracked } from "./processes.js";

const BIN = fileURLToPath(new URL("../bin/bifrost.js", import.meta.url));

// isolated-vm frees a memory-limited isolate on its own thread after the run is decided; the CLI
// exiting during that free used to segfault (exit 139), though the run was recorded correctly.
describe("bifrost run after a run that hit the memory limit", () => {
  it.each([
    ["through the launcher's child", [BIN]],
    ["in one process", ["--no-node-snapshot", BIN]],
  ])("exits 1 with the run's error, %s", async (_how, node) => {
    const dataDir = tempDir();
    const workflowsDir = tempDir("bifrost-wf-");
    // Many small objects: a full 128 MB heap takes isolated-vm a while to free.
    writeFiles(workflowsDir, { "bomb.ts": workflowSource("bomb", `const hog = []; for (;;) hog.push({ a: Math.random(), b: [1, 2, 3] });`) });
    for (let i = 0; i < 2; i++) {
      const child = spawnTracked(process.execPath, [...node, "run", "bomb"], {
        env: { ...process.env, NO_COLOR: "1", BIFROST_DATA_DIR: dataDir, BIFROST_WORKFLOWS_DIR: workflowsDir },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
      expect({ code, signal, stderr }).toMatchObject({ code: 1, signal: null, stderr: expect.stringContaining("SANDBOX_MEMORY_LIMIT: the run exceeded the sandbox memory limit of 128 MB") });
    }
  });
});
