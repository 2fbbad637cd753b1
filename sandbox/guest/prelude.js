// Evaluated inside each isolate before the workflow module. It receives the one host bridge (a
// function taking an op name and JSON, resolving to a JSON envelope), keeps it in this closure and
// returns the entry point the host calls. Nothing here may hand a host object to user code: every
// value that crosses is a JSON string.
(function bifrostPrelude(host) {
  "use strict";
  // WebAssembly memory escapes memoryLimit, and Atomics.wait can park a sandbox thread.
  for (const name of ["WebAssembly", "SharedArrayBuffer", "Atomics"]) delete globalThis[name];

  const LEVELS = ["debug", "info", "warn", "error"];
  const pending = new Set();
  let def;
  let currentSteps = [];
  let abortState = { aborted: false, reason: undefined, listeners: [] };

  function serializeError(err) {
    if (err instanceof Error) {
      const out = { name: err.name, message: String(err.message), stack: typeof err.stack === "string" ? err.stack : undefined };
      if (typeof err.code === "string") out.code = err.code;
      return out;
    }
    return { name: "Error", message: typeof err === "string" ? err : safeString(err) };
  }

  function safeString(value) {
    try {
      return JSON.stringify(value) ?? String(value);
    } catch {
      return String(value);
    }
  }

  function bifrostError(code, message) {
    const err = new Error(message);
    err.name = "BifrostError";
    err.code = code;
    return err;
  }

  function toJson(value, what) {
    try {
      return JSON.stringify(value === undefined ? null : value);
    } catch (err) {
      throw bifrostError("RESULT_NOT_SERIALIZABLE", `${what} is not JSON-serializable: ${err && err.message}`);
    }
  }

  async function call(op, args) {
    const raw = await host.apply(undefined, [op, toJson(args, `arguments of ${op}`)], {
      arguments: { copy: true },
      result: { promise: true, copy: true },
    });
    const envelope = JSON.parse(raw);
    if (envelope.ok) return envelope.value;
    throw bifrostError(envelope.error.code, envelope.error.message);
  }

  function send(op, args) {
    const p = call(op, args).catch(() => {});
    pending.add(p);
    p.finally(() => pending.delete(p));
  }

  // The host enforces the real limits; cutting here first keeps huge lines from being copied out.
  const MAX_MESSAGE = 16 * 1024;
  const MAX_DATA = 128 * 1024;

  function log(level, message, data) {
    let msg = typeof message === "string" ? message : safeString(message);
    if (msg.length > MAX_MESSAGE) msg = msg.slice(0, MAX_MESSAGE);
    const line = { level, msg };
    if (data !== undefined) {
      let json;
      try {
        json = JSON.stringify(data);
      } catch {
        json = JSON.stringify(safeString(data));
      }
      line.data = json === undefined ? null : json.length > MAX_DATA ? { truncated: true, bytes: json.length } : JSON.parse(json);
    }
    const step = currentSteps[currentSteps.length - 1];
    if (step !== undefined) line.step = step;
    send("log", line);
  }

  function makeLog() {
    const out = {};
    for (const level of LEVELS) out[level] = (message, data) => log(level, message, data);
    return Object.freeze(out);
  }

  function makeSignal() {
    return Object.freeze({
      get aborted() {
        return abortState.aborted;
      },
      get reason() {
        return abortState.reason;
      },
      addEventListener(type, fn) {
        if (type === "abort" && typeof fn === "function") abortState.listeners.push(fn);
      },
      removeEventListener(type, fn) {
        abortState.listeners = abortState.listeners.filter((l) => l !== fn);
      },
      throwIfAborted() {
        if (abortState.aborted) throw bifrostError("RUN_ABORTED", String(abortState.reason));
      },
    });
  }

  function makeCtx(input) {
    const usedSteps = new Set();
    async function step(name, fn) {
      if (typeof name !== "string" || name.length === 0 || name.length > 200) {
        throw bifrostError("STEP_INVALID", "ctx.step(name, fn): name must be a non-empty string of at most 200 characters");
      }
      if (typeof fn !== "function") throw bifrostError("STEP_INVALID", `ctx.step("${name}", fn): fn must be a function`);
      if (usedSteps.has(name)) {
        throw bifrostError("STEP_INVALID", `step name "${name}" is used twice in one run; give each step a unique name`);
      }
      usedSteps.add(name);
      const begun = await call("step.begin", { name });
      if (begun.done) return begun.result;
      currentSteps.push(name);
      try {
        const value = await fn();
        const json = toJson(value, `the result of step "${name}"`);
        await call("step.end", { name, ok: true, result: JSON.parse(json) });
        return JSON.parse(json);
      } catch (err) {
        await call("step.end", { name, ok: false, error: serializeError(err) }).catch(() => {});
        throw err;
      } finally {
        currentSteps = currentSteps.filter((s) => s !== name);
      }
    }

    async function chunks(name, items, options, fn) {
      if (typeof fn !== "function" && typeof options === "function") {
        fn = options;
        options = {};
      }
      if (!Array.isArray(items)) throw bifrostError("STEP_INVALID", `ctx.chunks("${name}"): items must be an array`);
      const size = options && options.size !== undefined ? options.size : 100;
      if (!Number.isInteger(size) || size < 1) throw bifrostError("STEP_INVALID", `ctx.chunks("${name}"): size must be a positive integer`);
      const results = [];
      for (let i = 0, index = 0; i < items.length; i += size, index++) {
        const batch = items.slice(i, i + size);
        const chunkIndex = index;
        results.push(await step(`${name}#${chunkIndex}`, () => fn(batch, chunkIndex)));
      }
      return results;
    }

    return Object.freeze({
      run: Object.freeze({ ...input.run }),
      log: makeLog(),
      step,
      chunks,
      deadline: new Date(input.deadline),
      signal: makeSignal(),
    });
  }

  const text = (args) => args.map((x) => (typeof x === "string" ? x : safeString(x))).join(" ");
  const CONSOLE_LEVELS = { log: "info", info: "info", debug: "debug", warn: "warn", error: "error" };
  const sandboxConsole = {};
  for (const [method, level] of Object.entries(CONSOLE_LEVELS)) sandboxConsole[method] = (...args) => log(level, text(args));
  globalThis.console = Object.freeze(sandboxConsole);

  function load() {
    if (def !== undefined) return def;
    const factory = globalThis.__bifrost_factory;
    delete globalThis.__bifrost_factory;
    if (typeof factory !== "function") throw bifrostError("WORKFLOW_INVALID", "the workflow module was not loaded");
    const module = { exports: {} };
    factory(module, module.exports);
    const exported = module.exports && module.exports.__esModule ? module.exports.default : module.exports.default ?? module.exports;
    if (exported === null || typeof exported !== "object" || typeof exported.run !== "function") {
      throw bifrostError("WORKFLOW_INVALID", "the module must `export default workflow({ name, run(ctx, params) { ... } })`");
    }
    def = exported;
    return def;
  }

  async function flush() {
    while (pending.size > 0) await Promise.all([...pending]);
  }

  async function invoke(kind, inputJson) {
    try {
      if (kind === "abort") {
        if (!abortState.aborted) {
          abortState.aborted = true;
          abortState.reason = JSON.parse(inputJson);
          for (const fn of abortState.listeners) {
            try {
              fn({ type: "abort" });
            } catch {}
          }
        }
        return JSON.stringify({ ok: true, value: null });
      }
      const workflow = load();
      if (kind === "meta") {
        const meta = {};
        for (const key of Object.keys(workflow)) if (typeof workflow[key] !== "function") meta[key] = workflow[key];
        return JSON.stringify({ ok: true, value: JSON.parse(toJson(meta, "the workflow definition")) });
      }
      const input = JSON.parse(inputJson);
      const value = await workflow.run(makeCtx(input), input.params);
      const json = toJson(value, "the run result");
      await flush();
      return `{"ok":true,"value":${json}}`;
    } catch (err) {
      await flush();
      return JSON.stringify({ ok: false, error: serializeError(err) });
    }
  }

  return invoke;
});
