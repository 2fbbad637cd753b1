import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { canonicalJson, replayConflict } from "../../engine/idempotency/replay.js";
import { validateDefinition } from "../../engine/registry/definition.js";
import { newWebhookSecret, sign, verifySignature } from "../../engine/webhooks/signature.js";

describe("webhook signatures", () => {
  const secret = "whsec_test";
  const body = Buffer.from('{"a":1}');

  it("are the hex HMAC-SHA256 of the raw bytes under the secret's text", () => {
    expect(sign(secret, body)).toBe(`sha256=${createHmac("sha256", "whsec_test").update('{"a":1}').digest("hex")}`);
    expect(verifySignature(secret, body, sign(secret, body))).toEqual({ ok: true });
    expect(verifySignature(secret, body, sign(secret, body).toUpperCase().replace("SHA256=", "sha256="))).toEqual({ ok: true });
  });

  it("tell a missing, a garbled and a wrong signature apart", () => {
    expect(verifySignature(secret, body, undefined)).toEqual({ ok: false, reason: "missing" });
    expect(verifySignature(secret, body, "")).toEqual({ ok: false, reason: "missing" });
    for (const garbled of ["sha256=", "sha256=abc", `sha512=${"a".repeat(64)}`, `sha256=${"g".repeat(64)}`, ` ${sign(secret, body)}`, `${sign(secret, body)} `]) {
      expect(verifySignature(secret, body, garbled)).toEqual({ ok: false, reason: "garbled" });
    }
    expect(verifySignature(secret, Buffer.from('{"a":2}'), sign(secret, body))).toEqual({ ok: false, reason: "mismatch" });
    expect(verifySignature("whsec_other", body, sign(secret, body))).toEqual({ ok: false, reason: "mismatch" });
  });

  it("new secrets are 256 random bits", () => {
    const a = newWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(newWebhookSecret()).not.toBe(a);
  });
});

describe("idempotent replays", () => {
  it("compare params whatever their key order, at every depth", () => {
    expect(canonicalJson({ b: 2, a: { d: [1, { f: 1, e: 2 }], c: null } })).toBe(canonicalJson({ a: { c: null, d: [1, { e: 2, f: 1 }] }, b: 2 }));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
    expect(canonicalJson({ a: "1" })).not.toBe(canonicalJson({ a: 1 }));
    expect(canonicalJson({ "a,b": 1 })).not.toBe(canonicalJson({ a: 1, b: 1 }));
  });

  it("name what differs: the org first, then the params", () => {
    expect(replayConflict({ params: { a: 1, b: 2 }, org: "x" }, { params: { b: 2, a: 1 }, org: "x" })).toBeUndefined();
    expect(replayConflict({ params: { a: 1 }, org: "x" }, { params: { a: 2 }, org: "x" })).toBe("params");
    expect(replayConflict({ params: { a: 1 }, org: "x" }, { params: { a: 1 }, org: null })).toBe("org");
    expect(replayConflict({ params: { a: 1 }, org: null }, { params: { a: 2 }, org: "y" })).toBe("org");
  });
});

describe("webhook: in a definition", () => {
  it("is true or false, false by default", () => {
    expect(validateDefinition({ name: "a" })).toMatchObject({ ok: true, definition: { webhook: false } });
    expect(validateDefinition({ name: "a", webhook: true })).toMatchObject({ ok: true, definition: { webhook: true } });
    expect(validateDefinition({ name: "a", webhook: "yes" })).toEqual({ ok: false, problems: ['webhook: "yes" must be true or false'] });
  });
});
