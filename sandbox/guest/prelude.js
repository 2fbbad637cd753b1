// Evaluated inside each isolate before the workflow module. It receives the one host bridge (a
// function taking an op name and JSON, resolving to a JSON envelope), keeps it in this closure and
// returns the entry point the host calls. Nothing here may hand a host object to user code: every
// value that crosses is a JSON string.
//
// The host trusts nothing that comes from here: workflow code shares this realm and can replace
// built-ins. So this file decides no engine outcome. It cuts values to the host's bounds first (so
// huge values are never copied out), and it reports what only it can see (a value JSON cannot
// encode) through host ops that can record nothing but that one fault.
(function bifrostPrelude(host) {
  "use strict";
  // WebAssembly memory escapes memoryLimit, and Atomics.wait can park a sandbox thread.
  for (const name of ["WebAssembly", "SharedArrayBuffer", "Atomics"]) delete globalThis[name];

  // Taken before workflow code runs, so that replacing them cannot bend what is sent to the host.
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const freeze = Object.freeze;
  const defineProperty = Object.defineProperty;

  // Mirrors of the host's bounds (sandbox/bounds.ts); the host enforces its own copy.
  const VALUE_DEPTH = 64;
  const BRIDGE_CHARS = 4 * 1024 * 1024;
  const MAX_LOG_MESSAGE = 16 * 1024;
  const MAX_LOG_DATA = 128 * 1024;
  const MAX_ERROR_MESSAGE = 8 * 1024;
  const MAX_STACK = 16 * 1024;
  const MAX_NAME = 200;
  const MAX_STEP_NAME = 200;
  const MAX_URL = 16 * 1024;
  const MAX_STATE_KEY = 128;

  const LEVELS = ["debug", "info", "warn", "error"];
  const pending = new Set();
  let def;
  let currentSteps = [];
  let abortState = { aborted: false, reason: undefined, listeners: [] };
  let logBudget = Infinity;
  let logDropped = 0;

  // One character over the bound, so the host still sees that a value was cut (and marks it).
  function cut(value, max) {
    return value.length > max ? value.slice(0, max + 1) : value;
  }

  function safeString(value) {
    try {
      const json = stringify(value);
      return typeof json === "string" ? json : String(value);
    } catch {
      try {
        return String(value);
      } catch {
        return "[a value that cannot be shown]";
      }
    }
  }

  function serializeError(err) {
    try {
      if (err instanceof Error) {
        const out = { name: cut(String(err.name), MAX_NAME), message: cut(String(err.message), MAX_ERROR_MESSAGE) };
        const stack = err.stack;
        if (typeof stack === "string") out.stack = cut(stack, MAX_STACK);
        if (typeof err.code === "string") out.code = cut(err.code, MAX_NAME);
        if (typeof err.fault === "string") out.fault = cut(err.fault, 64);
        return out;
      }
      return { name: "Error", message: cut(typeof err === "string" ? err : safeString(err), MAX_ERROR_MESSAGE) };
    } catch {
      return { name: "Error", message: "the workflow threw a value that cannot be read" };
    }
  }

  /** An error raised here from a host reply; `fault` names the fault the host recorded. */
  function hostError(error) {
    const err = new Error(typeof error.message === "string" ? error.message : "the host call failed");
    err.name = "BifrostError";
    err.code = typeof error.code === "string" ? error.code : "INTERNAL";
    if (typeof error.fault === "string") err.fault = error.fault;
    // OAuth failures say what kind they are and how to fix them (the host's words).
    if (typeof error.category === "string") err.category = error.category;
    if (typeof error.fix === "string") err.fix = error.fix;
    return err;
  }

  /** Nesting depth of JSON text, strings skipped; stops counting past `limit`. */
  function textDepth(text, limit) {
    let depth = 0;
    let inString = false;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (inString) {
        if (c === 0x5c) i++;
        else if (c === 0x22) inString = false;
      } else if (c === 0x22) inString = true;
      else if (c === 0x5b || c === 0x7b) {
        if (++depth > limit) return depth;
      } else if (c === 0x5d || c === 0x7d) depth--;
    }
    return 0;
  }

  async function callJson(op, argsJson) {
    const raw = await host.apply(undefined, [op, argsJson], {
      arguments: { copy: true },
      result: { promise: true, copy: true },
    });
    const envelope = parse(raw);
    if (envelope.ok) return envelope.value;
    throw hostError(envelope.error);
  }

  function call(op, args) {
    return callJson(op, stringify(args));
  }

  function send(op, argsJson) {
    const p = callJson(op, argsJson).catch(() => {});
    pending.add(p);
    p.finally(() => pending.delete(p));
  }

  /**
   * JSON of a value the workflow hands back (a step or run result), within the host's bounds. What
   * breaks them is reported to the host, which records the fault and answers with the error thrown.
   */
  async function resultJson(value, what, name) {
    let json;
    try {
      json = stringify(value === undefined ? null : value);
    } catch (err) {
      await call("value.notSerializable", { what, name, reason: cut(String(err && err.message), MAX_ERROR_MESSAGE) });
    }
    if (typeof json !== "string") json = "null"; // a function or symbol: JSON has no encoding, like undefined
    if (json.length > BRIDGE_CHARS) await call("value.tooLarge", { what, name, length: json.length });
    if (textDepth(json, VALUE_DEPTH) > VALUE_DEPTH) await call("value.notSerializable", { what, name, reason: `nested deeper than ${VALUE_DEPTH} levels` });
    return json;
  }

  function logData(data) {
    let json;
    try {
      json = stringify(data);
    } catch {
      json = stringify(safeString(data));
    }
    if (typeof json !== "string") return "null";
    if (json.length > MAX_LOG_DATA) return stringify({ truncated: true, bytes: json.length });
    if (textDepth(json, VALUE_DEPTH) > VALUE_DEPTH) return stringify({ truncated: true, reason: `RESULT_NOT_SERIALIZABLE: nested deeper than ${VALUE_DEPTH} levels` });
    return json;
  }

  function log(level, message, data) {
    // Past the run's log budget a line is only counted: a flood never leaves the sandbox.
    if (logBudget <= 0) {
      logDropped += 1;
      return;
    }
    logBudget -= 1;
    const msg = cut(typeof message === "string" ? message : safeString(message), MAX_LOG_MESSAGE);
    let json = `{"level":${stringify(level)},"msg":${stringify(msg)}`;
    if (data !== undefined) json += `,"data":${logData(data)}`;
    const step = currentSteps[currentSteps.length - 1];
    if (step !== undefined) json += `,"step":${stringify(step)}`;
    send("log", `${json}}`);
  }

  function makeLog() {
    const out = {};
    for (const level of LEVELS) out[level] = (message, data) => log(level, message, data);
    return freeze(out);
  }

  function makeSignal() {
    return freeze({
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
        // Only a message for the workflow: whether the run stopped at the engine's request is the host's to know.
        if (abortState.aborted) throw hostError({ code: "RUN_ABORTED", message: String(abortState.reason) });
      },
    });
  }

  /** The error a ctx.http answer the workflow did not want becomes; the host recorded it under `fault`. */
  function httpError(error) {
    const err = hostError(error);
    err.name = "HttpError";
    err.status = error.status;
    err.body = error.body;
    if (typeof error.category === "string") err.category = error.category;
    if (typeof error.fix === "string") err.fix = error.fix;
    return err;
  }

  // Requests run on the host, which validates and bounds every argument; this only cuts the
  // strings it can see so that a huge one is never copied out.
  function makeHttp() {
    async function request(method, url, options) {
      const args = {
        method: typeof method === "string" ? cut(method, 16) : method,
        url: typeof url === "string" ? cut(url, MAX_URL) : url,
        options: options === undefined ? null : options,
      };
      const reply = await call("http.request", args);
      if (reply.error) throw httpError(reply.error);
      return reply.response;
    }
    const verb = (name) => (url, options) => request(name, url, options);
    return freeze({ request, get: verb("GET"), post: verb("POST"), put: verb("PUT"), patch: verb("PATCH"), delete: verb("DELETE"), head: verb("HEAD") });
  }

  // ctx.state: the host validates keys and values and enforces the size limit. This only keeps a
  // value the bridge could not carry from being copied out, and says why instead.
  function makeState() {
    const key = (k) => (typeof k === "string" ? cut(k, MAX_STATE_KEY) : null);
    async function set(k, value) {
      let json;
      try {
        json = stringify(value);
      } catch (err) {
        return void (await call("state.set", { key: key(k), invalid: cut(String(err && err.message), MAX_ERROR_MESSAGE) }));
      }
      if (typeof json !== "string") return void (await call("state.set", { key: key(k) }));
      if (json.length > BRIDGE_CHARS) return void (await call("state.set", { key: key(k), length: json.length }));
      if (textDepth(json, VALUE_DEPTH) > VALUE_DEPTH) return void (await call("state.set", { key: key(k), invalid: `nested deeper than ${VALUE_DEPTH} levels` }));
      await callJson("state.set", `{"key":${stringify(key(k))},"value":${json}}`);
    }
    return freeze({
      async get(k) {
        const reply = await call("state.get", { key: key(k) });
        return reply.found ? reply.value : undefined;
      },
      set,
      async delete(k) {
        return (await call("state.delete", { key: key(k) })) === true;
      },
    });
  }

  // ctx.oauth: the host resolves the run's org connection (else the global one), refreshes it when
  // it expires within the refresh skew, and hands back a copy of the token.
  function makeOAuth() {
    async function getConnection(provider) {
      const c = await call("oauth.getConnection", { provider: typeof provider === "string" ? cut(provider, 128) : null });
      const expiresAt = new Date(c.expiresAt);
      const header = `${String(c.tokenType).toLowerCase() === "bearer" ? "Bearer" : c.tokenType} ${c.accessToken}`;
      return freeze({
        provider: c.provider,
        accessToken: c.accessToken,
        tokenType: c.tokenType,
        expiresAt,
        expiresIn: Math.max(0, Math.floor((c.expiresAt - Date.now()) / 1000)),
        scopes: freeze([...c.scopes]),
        isExpired: () => Date.now() >= c.expiresAt,
        getAuthHeader: () => header,
      });
    }
    return freeze({ getConnection });
  }

  // Step names are validated by the host (step.begin); only a bounded prefix is ever sent.
  function stepName(name) {
    return typeof name === "string" ? cut(name, MAX_STEP_NAME) : null;
  }

  function makeCtx(input) {
    // The host validates `options` ({ retry }) and decides every retry: after a failure it answers
    // { retry: true } once it is time for the next try here (a longer pause ends the invocation).
    async function step(name, fn, options) {
      for (;;) {
        const begun = await call("step.begin", { name: stepName(name), hasFn: typeof fn === "function", options: options === undefined ? null : options });
        if (begun.done) return begun.result;
        currentSteps.push(name);
        let again = false;
        try {
          const value = await fn();
          const json = await resultJson(value, "step", name);
          await callJson("step.end", `{"name":${stringify(name)},"ok":true,"result":${json}}`);
          return parse(json);
        } catch (err) {
          const ended = await call("step.end", { name, ok: false, error: serializeError(err) }).catch(() => null);
          again = ended !== null && typeof ended === "object" && ended.retry === true;
          if (!again) throw err;
        } finally {
          currentSteps = currentSteps.filter((s) => s !== name);
        }
      }
    }

    async function chunks(name, items, options, fn) {
      if (typeof fn !== "function" && typeof options === "function") {
        fn = options;
        options = {};
      }
      const size = options && options.size !== undefined ? options.size : 100;
      const retry = options && options.retry !== undefined ? { retry: options.retry } : undefined;
      const isArray = Array.isArray(items);
      await call("chunks.check", { name: stepName(name), items: isArray, count: isArray ? items.length : null, size: typeof size === "number" ? size : null, hasFn: typeof fn === "function", options: retry === undefined ? null : retry });
      const results = [];
      for (let i = 0, index = 0; i < items.length; i += size, index++) {
        const batch = items.slice(i, i + size);
        const chunkIndex = index;
        results.push(await step(`${name}#${chunkIndex}`, () => fn(batch, chunkIndex), retry));
      }
      return results;
    }

    // The host parses and bounds both arguments; a Date is sent as its epoch milliseconds.
    async function sleep(duration) {
      await call("sleep", { for: typeof duration === "string" ? cut(duration, 64) : duration === undefined ? null : duration });
    }
    async function sleepUntil(date) {
      const until = date instanceof Date ? date.getTime() : typeof date === "string" ? cut(date, 64) : date === undefined ? null : date;
      await call("sleep", { until });
    }

    return freeze({
      run: freeze({ ...input.run }),
      log: makeLog(),
      http: makeHttp(),
      oauth: makeOAuth(),
      state: makeState(),
      step,
      chunks,
      sleep,
      sleepUntil,
      deadline: new Date(input.deadline),
      signal: makeSignal(),
    });
  }

  const text = (args) => args.map((x) => (typeof x === "string" ? x : safeString(x))).join(" ");
  const CONSOLE_LEVELS = { log: "info", info: "info", debug: "debug", warn: "warn", error: "error" };
  const sandboxConsole = {};
  for (const [method, level] of Object.entries(CONSOLE_LEVELS)) sandboxConsole[method] = (...args) => log(level, text(args));
  globalThis.console = freeze(sandboxConsole);

  // Names a newcomer reaches for. Each is built here, from nothing of the host's, and says what to
  // use instead rather than "is not defined".
  function unavailable(name, instead) {
    const fn = function () {
      throw new TypeError(`${name}() is not available in a Bifrost workflow: ${instead}`);
    };
    defineProperty(fn, "name", { value: name });
    return freeze(fn);
  }
  const TIMERS = "use await ctx.sleep(duration) or await ctx.sleepUntil(date) (a wait of a second or more is durable: the run waits in the queue, not in the sandbox); the sandbox has no timers";
  const GLOBALS = {
    fetch: "use ctx.http.get(url, options) or ctx.http.request(method, url, options): requests run on the host, with retries and rate limits handled",
    setTimeout: TIMERS,
    setInterval: TIMERS,
    setImmediate: TIMERS,
    clearTimeout: TIMERS,
    clearInterval: TIMERS,
    require: "import npm packages with `import` instead (they are bundled with the module); Node built-ins are not available",
  };
  for (const [name, instead] of Object.entries(GLOBALS)) {
    defineProperty(globalThis, name, { value: unavailable(name, instead), writable: true, configurable: true });
  }
  // process.env is where settings and secrets used to live. NODE_ENV stays readable: bundled npm
  // packages commonly branch on it.
  const env = new Proxy(freeze({}), {
    get(_target, key) {
      if (key === "NODE_ENV") return "production";
      throw new TypeError(`process.env is not available in a Bifrost workflow: use ctx.config.get(key) and ctx.secrets.get(key) (coming in a later release)`);
    },
  });
  defineProperty(globalThis, "process", {
    value: freeze({ env, exit: unavailable("process.exit", "return from run() or throw an error to end the run") }),
    writable: true,
    configurable: true,
  });

  function load() {
    if (def !== undefined) return def;
    const factory = globalThis.__bifrost_factory;
    delete globalThis.__bifrost_factory;
    if (typeof factory !== "function") throw new Error("the workflow module was not loaded");
    const module = { exports: {} };
    factory(module, module.exports);
    const exported = module.exports && module.exports.__esModule ? module.exports.default : module.exports.default ?? module.exports;
    if (exported === null || typeof exported !== "object" || typeof exported.run !== "function") {
      throw new Error("the module must `export default workflow({ name, run(ctx, params) { ... } })`");
    }
    def = exported;
    return def;
  }

  async function flush() {
    while (pending.size > 0) await Promise.all([...pending]);
  }

  async function endOfInvocation() {
    await flush();
    if (logDropped > 0) {
      const dropped = logDropped;
      logDropped = 0;
      await call("log.dropped", { count: dropped }).catch(() => {});
    }
  }

  async function handle(kind, inputJson) {
    try {
      if (kind === "abort") {
        if (!abortState.aborted) {
          abortState.aborted = true;
          abortState.reason = parse(inputJson);
          for (const fn of abortState.listeners) {
            try {
              fn({ type: "abort" });
            } catch {}
          }
        }
        return stringify({ ok: true, value: null });
      }
      const workflow = load();
      if (kind === "meta") {
        const meta = {};
        for (const key of Object.keys(workflow)) if (typeof workflow[key] !== "function") meta[key] = workflow[key];
        let json;
        try {
          json = stringify(meta);
        } catch (err) {
          throw new Error(`the workflow definition is not JSON-serializable: ${err && err.message}`);
        }
        return `{"ok":true,"value":${json}}`;
      }
      const input = parse(inputJson);
      if (typeof input.logBudget === "number") logBudget = input.logBudget;
      const value = await workflow.run(makeCtx(input), input.params);
      const json = await resultJson(value, "run", null);
      await endOfInvocation();
      return `{"ok":true,"value":${json}}`;
    } catch (err) {
      await endOfInvocation().catch(() => {});
      return stringify({ ok: false, error: serializeError(err) });
    }
  }

  async function invoke(kind, inputJson) {
    try {
      return await handle(kind, inputJson);
    } catch {
      return '{"ok":false,"error":{"name":"Error","message":"the workflow broke the sandbox prelude (did it replace built-ins?)"}}';
    }
  }

  return invoke;
});
