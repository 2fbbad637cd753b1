import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES } from "../common/errors.js";
import { buildApp } from "../engine/api/app.js";
import { declaredRoutes } from "../engine/api/auth.js";
import { createKey, revokeKey } from "../engine/auth/key-store.js";
import { generateKey, parseKey } from "../engine/auth/keys.js";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { openStorage } from "../storage/index.js";
import { bearer, createTestKey, memoryLogger, openTestEngine, tempDir, workflowSource, writeFiles } from "./helpers.js";

/**
 * API keys, roles and orgs over a real listening server: who may call what, what an org key can
 * see, and that keys are kept only as hashes.
 */

const WORKFLOWS = {
  "echo.ts": workflowSource("echo", `ctx.log.info("run in " + ctx.run.org); return { org: ctx.run.org, params };`),
};
const MISSING_RUN = "00000000-0000-7000-8000-000000000000";

let server: RunningServer;
let dataDir: string;
let log: () => string[];
const keys: Record<string, string> = {};

beforeAll(async () => {
  dataDir = tempDir();
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, WORKFLOWS);
  const memory = memoryLogger();
  log = memory.lines;
  server = await startServer(loadConfig({}, { dataDir, workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memory.logger });
  const e = server.engine;
  keys.admin = await createTestKey(e, "admin");
  keys.operator = await createTestKey(e, "operator");
  keys.viewer = await createTestKey(e, "viewer");
  keys.contosoOperator = await createTestKey(e, "operator", "contoso");
  keys.contosoViewer = await createTestKey(e, "viewer", "contoso");
  keys.fabrikamOperator = await createTestKey(e, "operator", "fabrikam");
});

afterAll(async () => {
  await server?.close();
});

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON replies, read field by field
  body: any;
}

async function call(method: string, path: string, options: { key?: string | undefined; headers?: Record<string, string>; body?: unknown } = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...(options.key === undefined ? {} : bearer(options.key)), ...options.headers };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(server.url + path, { method, headers, ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }) });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, text, body };
}

function expectError(reply: Reply, code: "UNAUTHENTICATED" | "FORBIDDEN" | "RUN_NOT_FOUND"): void {
  expect({ status: reply.status, code: reply.body?.error?.code }).toEqual({ status: ERROR_CODES[code].status, code });
  expect(Object.keys(reply.body.error).slice(0, 3)).toEqual(["code", "message", "fix"]);
}

const trigger = async (key: string, body: Record<string, unknown> = {}) => call("POST", "/api/workflows/echo/runs", { key, body: { wait: 20_000, ...body } });

describe("every route needs a key unless it is public", () => {
  /** Placeholders that name nothing, so a request that gets past authentication changes nothing. */
  const concrete = (url: string) => url.replace(/:name|:workflow/g, "no_such_workflow").replace(/:id/g, MISSING_RUN).replace(/\*$/, "x");
  const routes = () => declaredRoutes(server.app).filter((r) => r.method !== "OPTIONS");

  it("knows every route and each declares an access level", () => {
    const list = routes();
    expect(list.map((r) => `${r.method} ${r.url}`)).toEqual(expect.arrayContaining(["GET /health", "GET /api/workflows", "GET /api/workflows/:name", "POST /api/workflows/:name/runs", "GET /api/runs", "GET /api/runs/:id", "GET /api/runs/:id/logs"]));
    expect(list.filter((r) => r.access === undefined)).toEqual([]);
  });

  it("answers 401 in the error shape, with WWW-Authenticate, to a request without a key", async () => {
    for (const route of routes().filter((r) => r.access !== "public")) {
      const reply = await call(route.method, concrete(route.url));
      expect({ route, status: reply.status, www: reply.headers.get("www-authenticate") }).toEqual({ route, status: 401, www: 'Bearer realm="bifrost"' });
      if (route.method !== "HEAD") expectError(reply, "UNAUTHENTICATED");
    }
    expect((await call("GET", "/health")).status).toBe(200);
  });

  it("lets each role do exactly what its level allows on every route", async () => {
    const allows: Record<string, string[]> = { viewer: ["read"], operator: ["read", "trigger", "webhook"], admin: ["read", "trigger", "webhook", "admin"] };
    for (const role of ["viewer", "operator", "admin"] as const) {
      for (const route of routes().filter((r) => r.access !== "public")) {
        const reply = await call(route.method, concrete(route.url), { key: keys[role] });
        const allowed = allows[role]!.includes(route.access!);
        // Allowed calls reach the route (here a 404 or 400 about the placeholders), never 401/403.
        expect({ role, route, status: reply.status === 401 || reply.status === 403 ? reply.status : "reached" }).toEqual({ role, route, status: allowed ? "reached" : 403 });
        if (!allowed && route.method !== "HEAD") {
          expectError(reply, "FORBIDDEN");
          expect(reply.body.error.details).toEqual({ role, needs: route.access === "admin" ? "admin" : "operator" });
        }
      }
    }
  });

  it("refuses malformed, unknown, wrong and revoked keys with 401 invalid_token", async () => {
    const real = await createKey(server.engine.storage, { role: "admin" }, Date.now());
    const other = generateKey();
    const wrongSecret = `${real.key.slice(0, -4)}${real.key.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    const cases: [string, Record<string, string>, RegExp][] = [
      ["Basic scheme", { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }, /not of the form Bearer <key>/],
      ["no token", { authorization: "Bearer" }, /not of the form Bearer <key>/],
      ["two tokens", { authorization: `Bearer ${real.key} ${real.key}` }, /not of the form Bearer <key>/],
      ["huge header", { authorization: `Bearer ${"x".repeat(8000)}` }, /not of the form Bearer <key>/],
      ["not a Bifrost key", { authorization: "Bearer hunter2" }, /not a Bifrost API key/],
      ["unknown id", bearer(other.key), /not valid/],
      ["known id, wrong secret", bearer(wrongSecret), /not valid/],
    ];
    for (const [what, headers, message] of cases) {
      const reply = await call("GET", "/api/runs", { headers });
      expect({ what, status: reply.status, www: reply.headers.get("www-authenticate") }).toEqual({ what, status: 401, www: 'Bearer realm="bifrost", error="invalid_token"' });
      expectError(reply, "UNAUTHENTICATED");
      expect({ what, message: reply.body.error.message }).toEqual({ what, message: expect.stringMatching(message) });
    }
    // The scheme is case-insensitive (RFC 6750), and the real key works...
    expect((await call("GET", "/api/runs", { headers: { authorization: `bearer ${real.key}` } })).status).toBe(200);
    // ...until it is revoked: from the next request on.
    await revokeKey(server.engine.storage, real.record.id, Date.now());
    const revoked = await call("GET", "/api/runs", { key: real.key });
    expectError(revoked, "UNAUTHENTICATED");
    expect(revoked.body.error.message).toBe(`API key ${real.record.id} has been revoked`);
  });

  it("checks the key before reading the body", async () => {
    const res = await fetch(`${server.url}/api/workflows/echo/runs`, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
    expect(res.status).toBe(401);
  });
});

describe("roles", () => {
  it("a viewer reads but cannot trigger; an operator and an admin trigger", async () => {
    expect((await call("GET", "/api/workflows", { key: keys.viewer })).status).toBe(200);
    const refused = await trigger(keys.viewer!);
    expectError(refused, "FORBIDDEN");
    expect(refused.body.error.message).toMatch(/has the role viewer; POST \/api\/workflows\/:name\/runs needs operator or above/);
    for (const key of [keys.operator!, keys.admin!]) expect(await trigger(key)).toMatchObject({ status: 200, body: { status: "succeeded" } });
  });
});

describe("orgs", () => {
  const runs: Record<string, string> = {};

  beforeAll(async () => {
    runs.contoso = (await trigger(keys.contosoOperator!)).body.id;
    runs.fabrikam = (await trigger(keys.fabrikamOperator!)).body.id;
    runs.none = (await trigger(keys.operator!)).body.id;
    runs.contoso2 = (await trigger(keys.operator!, { org: "contoso" })).body.id;
  });

  it("a run takes its key's org by default, and ctx.run.org is that org inside the workflow", async () => {
    const run = (await call("GET", `/api/runs/${runs.contoso}`, { key: keys.admin })).body;
    expect(run).toMatchObject({ org: "contoso", status: "succeeded", result: { org: "contoso" } });
    const logs = (await call("GET", `/api/runs/${runs.contoso}/logs`, { key: keys.contosoViewer })).body;
    expect(logs.items.map((l: { msg: string }) => l.msg)).toEqual(["run in contoso"]);
    expect((await call("GET", `/api/runs/${runs.none}`, { key: keys.admin })).body).toMatchObject({ org: null, result: { org: null } });
    expect((await call("GET", `/api/runs/${runs.contoso2}`, { key: keys.admin })).body).toMatchObject({ org: "contoso", result: { org: "contoso" } });
    // Naming its own org explicitly is the same as leaving it out.
    expect(await trigger(keys.contosoOperator!, { org: "contoso" })).toMatchObject({ status: 200, body: { org: "contoso", result: { org: "contoso" } } });
  });

  it("an org key cannot start a run in another org: 403, and nothing is queued", async () => {
    const before = (await call("GET", "/api/runs?limit=200", { key: keys.admin })).body.items.length;
    const refused = await trigger(keys.contosoOperator!, { org: "fabrikam" });
    expectError(refused, "FORBIDDEN");
    expect(refused.body.error).toMatchObject({ message: 'This API key is limited to org "contoso" and cannot start a run in org "fabrikam"', details: { org: "fabrikam", keyOrg: "contoso" } });
    expect((await call("GET", "/api/runs?limit=200", { key: keys.admin })).body.items.length).toBe(before);
  });

  it("an org key lists only its org's runs; asking for another org is an empty page", async () => {
    const all = (await call("GET", "/api/runs?limit=200", { key: keys.viewer })).body.items as { id: string; org: string | null }[];
    expect(all.map((r) => r.id)).toEqual(expect.arrayContaining(Object.values(runs)));
    const own = (await call("GET", "/api/runs?limit=200", { key: keys.contosoViewer })).body.items as { id: string; org: string | null }[];
    expect(own.length).toBeGreaterThanOrEqual(2);
    expect(own.every((r) => r.org === "contoso")).toBe(true);
    expect(own.map((r) => r.id)).toEqual(all.filter((r) => r.org === "contoso").map((r) => r.id));
    expect((await call("GET", "/api/runs?org=contoso&limit=200", { key: keys.contosoViewer })).body.items).toEqual(own);
    expect((await call("GET", "/api/runs?org=fabrikam", { key: keys.contosoViewer })).body).toEqual({ items: [], nextCursor: null });
    // Pages of an org key stay inside its org.
    const page1 = (await call("GET", "/api/runs?limit=1", { key: keys.contosoViewer })).body;
    const page2 = (await call("GET", `/api/runs?limit=200&cursor=${page1.nextCursor}`, { key: keys.contosoViewer })).body;
    expect([...page1.items, ...page2.items].map((r: { id: string }) => r.id)).toEqual(own.map((r) => r.id));
  });

  it("another org's run (or one without an org) answers 404 exactly as a run that does not exist", async () => {
    // Every route about one run (record, logs, and whatever acts on a run), with a key that may call it.
    const perRun = declaredRoutes(server.app).filter((r) => r.url.startsWith("/api/runs/:id") && r.method !== "HEAD");
    expect(perRun.map((r) => `${r.method} ${r.url}`)).toEqual(expect.arrayContaining(["GET /api/runs/:id", "GET /api/runs/:id/logs"]));
    const ask = (method: string, url: string, id: string) => call(method, url.replace(":id", id), { key: keys.contosoOperator });
    const shape = (r: Reply) => ({ status: r.status, contentType: r.headers.get("content-type"), text: r.text });
    for (const id of [runs.fabrikam!, runs.none!]) {
      for (const { method, url } of perRun) {
        const reply = await ask(method, url, id);
        expectError(reply, "RUN_NOT_FOUND");
        const missing = shape(await ask(method, url, MISSING_RUN));
        expect({ route: `${method} ${url}`, ...shape(reply) }).toEqual({ route: `${method} ${url}`, ...missing, text: missing.text.replaceAll(MISSING_RUN, id) });
      }
      const stream = await call("GET", `/api/runs/${id}/logs`, { key: keys.contosoViewer, headers: { accept: "text/event-stream" } });
      expectError(stream, "RUN_NOT_FOUND");
      // The same key reads its own org's run; a key without an org reads them all.
      expect((await call("GET", `/api/runs/${id}`, { key: keys.viewer })).status).toBe(200);
    }
    expect((await call("GET", `/api/runs/${runs.contoso}`, { key: keys.contosoViewer })).status).toBe(200);
  });
});

describe("keys at rest", () => {
  it("are stored only as hashes: neither the key nor its secret is in the database files or the log, and use is recorded", async () => {
    const ownDir = tempDir();
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, WORKFLOWS);
    const memory = memoryLogger();
    const own = await startServer(loadConfig({}, { dataDir: ownDir, workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memory.logger });
    const first = await own.engine.createFirstAdminKey();
    const created = await createKey(own.engine.storage, { role: "operator", org: "contoso" }, Date.now());
    try {
      expect(first).toBeDefined();
      for (const key of [first!.key, created.key]) {
        const res = await fetch(`${own.url}/api/workflows/echo/runs`, { method: "POST", headers: { ...bearer(key), "content-type": "application/json" }, body: JSON.stringify({ wait: 20_000 }) });
        expect(res.status).toBe(200);
      }
    } finally {
      // Closing waits for the writes that record each key's last use.
      await own.close();
    }
    const files = readdirSync(ownDir).filter((f) => f.startsWith("bifrost.db"));
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(ownDir, f))));
    for (const { key, record } of [first!, created]) {
      const secret = parseKey(key)!.secret;
      expect(secret.length).toBe(43);
      // The file holds the hash (so this looked in the right place), but not the key or its secret.
      expect(bytes.includes(Buffer.from(record.hash))).toBe(true);
      expect(bytes.includes(Buffer.from(key))).toBe(false);
      expect(bytes.includes(Buffer.from(secret))).toBe(false);
      for (const line of [...memory.lines(), ...log()]) expect(line.includes(secret)).toBe(false);
    }
    const storage = await openStorage({ dataDir: ownDir });
    try {
      for (const { record } of [first!, created]) expect((await storage.keys.get(record.id))?.lastUsedAt).toEqual(expect.any(Number));
    } finally {
      await storage.close();
    }
  });
});

describe("first start", () => {
  it("creates one admin key on an empty database, and none once any key exists", async () => {
    const { engine, dataDir: dir, logLines } = await openTestEngine({ workflows: WORKFLOWS });
    try {
      const first = await engine.createFirstAdminKey();
      expect(first?.record).toMatchObject({ role: "admin", org: null, revokedAt: null });
      expect(first?.key).toMatch(/^bfk_key_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      expect(await engine.createFirstAdminKey()).toBeUndefined();
      expect(logLines().some((l) => l.includes(first!.key))).toBe(false);
      // Revoking it does not make the next start create another: the table is not empty.
      await revokeKey(engine.storage, first!.record.id, Date.now());
    } finally {
      await engine.stop(0);
    }
    const again = await openTestEngine({ workflows: WORKFLOWS, dataDir: dir });
    try {
      expect(await again.engine.createFirstAdminKey()).toBeUndefined();
    } finally {
      await again.engine.stop(0);
    }
  });
});

describe("routes without an access level", () => {
  it("stop the server from starting (fail closed), naming them", async () => {
    const { engine } = await openTestEngine({ workflows: WORKFLOWS });
    try {
      const app = await buildApp({ engine });
      app.get("/api/open", async () => "open to all");
      app.get("/api/typo", { config: { access: "everyone" as never } }, async () => "open to all");
      await expect(app.ready()).rejects.toThrow(/Routes without a valid config\.access: GET \/api\/open, HEAD \/api\/open, GET \/api\/typo, HEAD \/api\/typo/);
      await app.close().catch(() => {});
    } finally {
      await engine.stop(0);
    }
  });

  it("may get one from the onRoute hook of the plugin that adds them (e.g. documentation pages)", async () => {
    const { engine } = await openTestEngine({ workflows: WORKFLOWS });
    try {
      const app = await buildApp({ engine });
      await app.register(async (child) => {
        child.addHook("onRoute", (route) => {
          route.config = { ...route.config, access: "public" };
        });
        child.get("/docs-page", async () => "docs");
      });
      await app.ready();
      expect((await app.inject({ method: "GET", url: "/docs-page" })).body).toBe("docs");
      await app.close();
    } finally {
      await engine.stop(0);
    }
  });
});
