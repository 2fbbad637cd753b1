import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { sign } from "../engine/webhooks/signature.js";
import { bearer, createTestKey, memoryLogger, openTestEngine, tempDir, workflowSource, writeFiles } from "./helpers.js";

/**
 * Webhooks over a real listening server: signatures (valid, wrong, garbled, missing), a body that
 * fails the schema, keys instead of signatures, the secret shown to admins only, rotation, and the
 * secret in no log line, no other reply and not in the clear in the database file.
 */

let server: RunningServer;
let dataDir: string;
let logLines: () => string[];
const keys: Record<"admin" | "operator" | "viewer", string> = { admin: "", operator: "", viewer: "" };
/** Every reply the tests received, except the two that are meant to carry the secret. */
const otherReplies: string[] = [];
const secretsSeen = new Set<string>();
/** The webhook's current secret, as the admin route shows it (rotation updates it). */
let cachedSecret = "";
const current = () => cachedSecret;

beforeAll(async () => {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, {
    "hook.ts": workflowSource(
      "hook",
      `ctx.log.info("hooked", { name: params.name }); return { got: params };`,
      `\n  webhook: true,\n  params: { type: "object", properties: { name: { type: "string" }, n: { type: "integer", default: 1 } }, required: ["name"], additionalProperties: false },`,
    ),
    "plain.ts": workflowSource("plain", "return 1;"),
  });
  dataDir = tempDir();
  const memory = memoryLogger();
  logLines = memory.lines;
  server = await startServer(loadConfig({}, { dataDir, workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memory.logger });
  for (const role of ["admin", "operator", "viewer"] as const) keys[role] = await createTestKey(server.engine, role);
  cachedSecret = await secret();
});

afterAll(async () => {
  await server?.close();
});

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

async function call(method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string>; secretReply?: boolean } = {}): Promise<Reply> {
  const res = await fetch(server.url + path, { method, headers: options.headers ?? {}, ...(options.body !== undefined && { body: options.body }) });
  const text = await res.text();
  if (!options.secretReply) otherReplies.push(`${JSON.stringify(Object.fromEntries(res.headers))}\n${text}`);
  const isJson = (res.headers.get("content-type") ?? "").startsWith("application/json");
  return { status: res.status, headers: res.headers, text, body: isJson && text ? (JSON.parse(text) as Reply["body"]) : {} };
}

async function webhookInfo(role: keyof typeof keys = "admin"): Promise<Reply> {
  const reply = await call("GET", "/api/workflows/hook/webhook", { headers: bearer(keys[role]), secretReply: role === "admin" });
  if (reply.status === 200) secretsSeen.add(reply.body.secret as string);
  return reply;
}

async function secret(): Promise<string> {
  const reply = await webhookInfo();
  expect(reply.status).toBe(200);
  return reply.body.secret as string;
}

const json = { "content-type": "application/json" };
const signed = (secretText: string, body: string, extra: Record<string, string> = {}) => ({ ...json, "x-bifrost-signature": sign(secretText, Buffer.from(body)), ...extra });

async function hookRuns(): Promise<number> {
  return (await server.engine.listRuns({ workflow: "hook", limit: 1000 })).length;
}

/** Asserts a refused call started nothing. */
async function refusedWith(code: string, status: number, send: () => Promise<Reply>): Promise<Reply> {
  const before = await hookRuns();
  const reply = await send();
  expect({ status: reply.status, code: reply.body.error?.code }).toEqual({ status, code });
  expect(await hookRuns()).toBe(before);
  return reply;
}

describe("webhooks", () => {
  it("creates the secret when the webhook workflow is registered, and only for webhook workflows", async () => {
    expect(await server.engine.storage.webhookSecrets.get("hook", null)).toMatchObject({ workflow: "hook", org: null, rotatedAt: null });
    expect(await server.engine.storage.webhookSecrets.get("plain", null)).toBeUndefined();
    expect((await call("GET", "/api/workflows/hook", { headers: bearer(keys.viewer) })).body.webhook).toBe(true);
    expect((await call("GET", "/api/workflows/plain", { headers: bearer(keys.viewer) })).body.webhook).toBe(false);
  });

  it("shows the secret to admins only, with the header and an example", async () => {
    const info = await webhookInfo();
    expect(info.status).toBe(200);
    expect(info.headers.get("cache-control")).toBe("no-store");
    expect(info.body).toEqual({
      workflow: "hook",
      org: null,
      url: expect.stringMatching(/\/api\/hooks\/hook$/),
      header: "X-Bifrost-Signature",
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/),
      example: expect.stringContaining("openssl dgst -sha256 -hmac"),
      createdAt: expect.any(String),
      rotatedAt: null,
      previousValidUntil: null,
    });
    expect((await webhookInfo("operator")).body.error?.code).toBe("FORBIDDEN");
    expect((await webhookInfo("viewer")).status).toBe(403);
    expect((await call("GET", "/api/workflows/hook/webhook")).status).toBe(401);
    expect((await call("GET", "/api/workflows/plain/webhook", { headers: bearer(keys.admin) })).body.error?.code).toBe("WEBHOOK_NOT_FOUND");
  });

  it("a valid signature starts a run with the body as params and trigger webhook", async () => {
    const body = JSON.stringify({ name: "Ada" });
    const reply = await call("POST", "/api/hooks/hook", { body, headers: signed(await secret(), body) });
    expect(reply.status).toBe(202);
    expect(Object.keys(reply.body).sort()).toEqual(["id", "status"]);
    const run = await server.engine.waitForRun(reply.body.id as string, 20_000);
    expect(run).toMatchObject({ workflow: "hook", trigger: "webhook", org: null, status: "succeeded", params: { name: "Ada", n: 1 }, result: { got: { name: "Ada", n: 1 } } });
  });

  it("a wrong signature, a body changed after signing, and a signature of another secret are 401 and start nothing", async () => {
    const body = JSON.stringify({ name: "Eve" });
    const current = await secret();
    await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook", { body, headers: signed("whsec_not-the-secret", body) }));
    const tampered = JSON.stringify({ name: "Mallory" });
    const reply = await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook", { body: tampered, headers: signed(current, body) }));
    expect(reply.body.error?.message).toContain("does not match");
    // One bit off in the signature itself.
    const good = sign(current, Buffer.from(body));
    const flipped = good.slice(0, -1) + (good.endsWith("0") ? "1" : "0");
    await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook", { body, headers: { ...json, "x-bifrost-signature": flipped } }));
  });

  it("a garbled signature is 401 saying what the header must look like", async () => {
    const body = JSON.stringify({ name: "Eve" });
    const hex = sign(await secret(), Buffer.from(body)).slice("sha256=".length);
    for (const garbled of [hex, `sha1=${hex}`, `sha256=${hex.slice(1)}`, `sha256=${hex}0`, `sha256=${"z".repeat(64)}`, `SHA256 ${hex}`, "sha256=", `sha256=${hex}, sha256=${hex}`, "x".repeat(8000)]) {
      const reply = await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook", { body, headers: { ...json, "x-bifrost-signature": garbled } }));
      expect(reply.body.error?.message).toContain("sha256=<64 hex digits>");
    }
  });

  it("a missing signature without a key is 401 and starts nothing", async () => {
    const body = JSON.stringify({ name: "Eve" });
    await refusedWith("UNAUTHENTICATED", 401, () => call("POST", "/api/hooks/hook", { body, headers: json }));
    const empty = await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook", { body, headers: { ...json, "x-bifrost-signature": "" } }));
    expect(empty.body.error?.message).toContain("neither");
  });

  it("the signature is checked before the body is read: unsigned garbage is 401, signed garbage 400", async () => {
    const garbage = '{"name": ';
    await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook", { body: garbage, headers: signed("whsec_wrong", garbage) }));
    await refusedWith("INVALID_JSON", 400, () => call("POST", "/api/hooks/hook", { body: garbage, headers: signed(current(), garbage) }));
    const badUtf8 = Buffer.from([0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]);
    const headers = { ...json, "x-bifrost-signature": sign(current(), badUtf8) };
    const reply = await refusedWith("INVALID_JSON", 400, () => call("POST", "/api/hooks/hook", { body: badUtf8, headers }));
    expect(reply.body.error?.message).toContain("UTF-8");
  });

  it("a signed body that fails the params schema is 400 INVALID_PARAMS and starts nothing", async () => {
    for (const body of [JSON.stringify({ nam: "typo" }), JSON.stringify({ name: 5 }), JSON.stringify({ name: "x", extra: true }), "[]", "{}"]) {
      const reply = await refusedWith("INVALID_PARAMS", 400, () => call("POST", "/api/hooks/hook", { body, headers: signed(current(), body) }));
      expect(reply.body.error?.message).toBeTruthy();
    }
  });

  it("a workflow without webhook: true, or none at all, is 404 whoever asks", async () => {
    const body = "{}";
    for (const name of ["plain", "nothing-here"]) {
      await refusedWith("WEBHOOK_NOT_FOUND", 404, () => call("POST", `/api/hooks/${name}`, { body, headers: signed(current(), body) }));
      await refusedWith("WEBHOOK_NOT_FOUND", 404, () => call("POST", `/api/hooks/${name}`, { body, headers: { ...json, ...bearer(keys.operator) } }));
    }
    expect((await server.engine.listRuns({ workflow: "plain", limit: 10 })).length).toBe(0);
  });

  it("a key that may trigger works instead of a signature; a viewer key does not", async () => {
    const body = JSON.stringify({ name: "Key" });
    const reply = await call("POST", "/api/hooks/hook", { body, headers: { ...json, ...bearer(keys.operator) } });
    expect(reply.status).toBe(202);
    expect(await server.engine.waitForRun(reply.body.id as string, 20_000)).toMatchObject({ trigger: "webhook", status: "succeeded" });
    await refusedWith("FORBIDDEN", 403, () => call("POST", "/api/hooks/hook", { body, headers: { ...json, ...bearer(keys.viewer) } }));
    // An org key's webhook run is in its org.
    const orgKey = await createTestKey(server.engine, "operator", "contoso");
    const orgRun = await call("POST", "/api/hooks/hook", { body, headers: { ...json, ...bearer(orgKey) } });
    expect((await server.engine.waitForRun(orgRun.body.id as string, 20_000)).org).toBe("contoso");
  });

  it("an Idempotency-Key header replays a redelivery, and refuses the key for another body", async () => {
    const body = JSON.stringify({ name: "Once" });
    const first = await call("POST", "/api/hooks/hook", { body, headers: signed(current(), body, { "idempotency-key": "delivery-1" }) });
    expect(first.status).toBe(202);
    const again = await call("POST", "/api/hooks/hook", { body, headers: signed(current(), body, { "idempotency-key": "delivery-1" }) });
    expect({ status: again.status, id: again.body.id, replayed: again.headers.get("idempotent-replayed") }).toEqual({ status: 202, id: first.body.id, replayed: "true" });
    const other = JSON.stringify({ name: "Twice" });
    await refusedWith("IDEMPOTENCY_CONFLICT", 409, () => call("POST", "/api/hooks/hook", { body: other, headers: signed(current(), other, { "idempotency-key": "delivery-1" }) }));
  });

  it("the example from the API signs with openssl and is accepted", async () => {
    const info = await webhookInfo();
    const example = (info.body.example as string).replace(info.body.url as string, `${server.url}/api/hooks/hook`).replace("body='{}'", `body='{"name":"shell"}'`);
    const { stdout } = await promisify(execFile)("bash", ["-c", example], { encoding: "utf8" });
    const reply = JSON.parse(stdout) as { id: string };
    expect(await server.engine.waitForRun(reply.id, 20_000)).toMatchObject({ trigger: "webhook", params: { name: "shell" } });
  });

  it("rotation keeps the old secret working for its grace (default a day) beside the new one", async () => {
    const before = await secret();
    expect((await call("POST", "/api/workflows/hook/webhook/rotate", { headers: bearer(keys.operator) })).status).toBe(403);
    const rotated = await call("POST", "/api/workflows/hook/webhook/rotate", { headers: bearer(keys.admin), secretReply: true });
    expect(rotated.status).toBe(200);
    const after = rotated.body.secret as string;
    secretsSeen.add(after);
    cachedSecret = after;
    expect(after).not.toBe(before);
    const until = Date.parse(rotated.body.previousValidUntil as string) - Date.parse(rotated.body.rotatedAt as string);
    expect(until).toBe(24 * 3_600_000);
    const body = JSON.stringify({ name: "Both" });
    expect((await call("POST", "/api/hooks/hook", { body, headers: signed(before, body) })).status).toBe(202);
    expect((await call("POST", "/api/hooks/hook", { body, headers: signed(after, body) })).status).toBe(202);
  });

  it("rotation with grace=0 replaces the secret at once: the old one is refused, the new one accepted", async () => {
    const before = await secret();
    await refusedWith("VALIDATION_FAILED", 400, () => call("POST", "/api/workflows/hook/webhook/rotate?grace=soon", { headers: bearer(keys.admin) }));
    await refusedWith("VALIDATION_FAILED", 400, () => call("POST", "/api/workflows/hook/webhook/rotate?grace=8d", { headers: bearer(keys.admin) }));
    expect(await secret()).toBe(before);
    const rotated = await call("POST", "/api/workflows/hook/webhook/rotate?grace=0", { headers: bearer(keys.admin), secretReply: true });
    expect(rotated.status).toBe(200);
    const after = rotated.body.secret as string;
    secretsSeen.add(after);
    expect(after).not.toBe(before);
    expect(rotated.body).toMatchObject({ rotatedAt: expect.any(String), previousValidUntil: null });
    expect(await secret()).toBe(after);
    cachedSecret = after;
    const body = JSON.stringify({ name: "Rotated" });
    await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook", { body, headers: signed(before, body) }));
    expect((await call("POST", "/api/hooks/hook", { body, headers: signed(after, body) })).status).toBe(202);
  });

  it("an org's hook has its own secret: its runs belong to the org, and no other secret signs for it", async () => {
    const info = await call("GET", "/api/workflows/hook/webhook?org=acme", { headers: bearer(keys.admin), secretReply: true });
    expect(info.status).toBe(200);
    const acme = info.body.secret as string;
    secretsSeen.add(acme);
    expect(info.body).toMatchObject({ workflow: "hook", org: "acme", url: expect.stringMatching(/\/api\/hooks\/hook\?org=acme$/) });
    expect(acme).not.toBe(current());
    const body = JSON.stringify({ name: "Acme" });
    const accepted = await call("POST", "/api/hooks/hook?org=acme", { body, headers: signed(acme, body) });
    expect(accepted.status).toBe(202);
    expect(await server.engine.waitForRun(accepted.body.id as string, 20_000)).toMatchObject({ org: "acme", trigger: "webhook" });
    // The org-less secret does not sign for acme, acme's does not sign org-less calls or another org's.
    await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook?org=acme", { body, headers: signed(current(), body) }));
    await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook", { body, headers: signed(acme, body) }));
    await refusedWith("WEBHOOK_SIGNATURE_INVALID", 401, () => call("POST", "/api/hooks/hook?org=beta", { body, headers: signed(acme, body) }));
    // An org nobody asked a secret for gets none from an unsigned caller's attempt.
    expect(await server.engine.storage.webhookSecrets.get("hook", "beta")).toBeUndefined();
    await refusedWith("VALIDATION_FAILED", 400, () => call("POST", "/api/hooks/hook?org=not%20an%20org", { body, headers: signed(acme, body) }));
    // Rotating acme's secret leaves the org-less one alone.
    const rotated = await call("POST", "/api/workflows/hook/webhook/rotate?org=acme&grace=0", { headers: bearer(keys.admin), secretReply: true });
    secretsSeen.add(rotated.body.secret as string);
    expect(rotated.body).toMatchObject({ org: "acme", previousValidUntil: null });
    expect(await secret()).toBe(current());
  });

  it("with an API key instead of a signature, an org key acts in its own org and a global key in the ?org given", async () => {
    const acmeKey = await createTestKey(server.engine, "operator", "acme");
    const body = JSON.stringify({ name: "Keyed" });
    await refusedWith("FORBIDDEN", 403, () => call("POST", "/api/hooks/hook?org=beta", { body, headers: { ...json, ...bearer(acmeKey) } }));
    const own = await call("POST", "/api/hooks/hook?org=acme", { body, headers: { ...json, ...bearer(acmeKey) } });
    expect(await server.engine.waitForRun(own.body.id as string, 20_000)).toMatchObject({ org: "acme" });
    const global = await call("POST", "/api/hooks/hook?org=beta", { body, headers: { ...json, ...bearer(keys.operator) } });
    expect(await server.engine.waitForRun(global.body.id as string, 20_000)).toMatchObject({ org: "beta" });
  });

  it("the secret appears in no log line, no other reply, and not in the clear in the database", async () => {
    // Make the engine log and answer a good deal first: runs, failures, listings.
    await call("GET", "/api/runs?workflow=hook&limit=200", { headers: bearer(keys.viewer) });
    await call("GET", "/api/workflows", { headers: bearer(keys.viewer) });
    await call("GET", "/openapi.json");
    await call("GET", "/metrics", { headers: bearer(keys.viewer) });
    const runs = await server.engine.listRuns({ workflow: "hook", limit: 200 });
    for (const run of runs.slice(0, 5)) await call("GET", `/api/runs/${run.id}/logs`, { headers: bearer(keys.viewer) });
    expect(secretsSeen.size).toBeGreaterThanOrEqual(2);
    const lines = logLines();
    expect(lines.length).toBeGreaterThan(10);
    const files = readdirSync(dataDir).filter((f) => f.startsWith("bifrost.db"));
    const database = files.map((f) => readFileSync(join(dataDir, f)).toString("latin1")).join("\n");
    expect(database).toContain("webhook_secrets");
    for (const s of secretsSeen) {
      expect(lines.filter((l) => l.includes(s))).toEqual([]);
      expect(otherReplies.filter((r) => r.includes(s))).toEqual([]);
      expect(database.includes(s)).toBe(false);
      expect(database.includes(s.slice("whsec_".length))).toBe(false);
    }
  });
});

describe("webhook rotation grace on the engine's clock", () => {
  it("the old secret works until its grace ends, and not a moment after", async () => {
    const clock = { offset: 0 };
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "hook.ts": workflowSource("hook", `return params;`, `\n  webhook: true,`) });
    const { engine } = await openTestEngine({ workflowsDir, deps: { now: () => Date.now() + clock.offset } });
    try {
      const old = (await engine.webhooks.info("hook")).secret;
      const rotated = await engine.webhooks.rotate("hook", 3_600_000);
      const body = Buffer.from("{}");
      expect(await engine.webhooks.verify("hook", body, sign(old, body))).toEqual({ ok: true });
      expect(await engine.webhooks.verify("hook", body, sign(rotated.secret, body))).toEqual({ ok: true });
      clock.offset += 3_600_000;
      expect(await engine.webhooks.verify("hook", body, sign(old, body))).toEqual({ ok: false, reason: "mismatch" });
      expect(await engine.webhooks.verify("hook", body, sign(rotated.secret, body))).toEqual({ ok: true });
      expect((await engine.webhooks.info("hook")).previousValidUntil).toBeNull();
    } finally {
      await engine.stop(0);
    }
  });
});
