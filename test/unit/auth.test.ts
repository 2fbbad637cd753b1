import { describe, expect, it } from "vitest";
import { BifrostError } from "../../common/errors.js";
import { validateKeyInput } from "../../engine/auth/key-store.js";
import { generateKey, hashKey, KEY_LENGTH, keyMatches, parseKey } from "../../engine/auth/keys.js";
import { inScope, triggerOrg } from "../../engine/auth/org.js";
import { leastRoleFor, roleAllows, ROLES } from "../../engine/auth/roles.js";

describe("API key format", () => {
  it("generates distinct keys of 256 random bits that parse back into id and secret", () => {
    const keys = Array.from({ length: 50 }, generateKey);
    expect(new Set(keys.map((k) => k.key)).size).toBe(50);
    expect(new Set(keys.map((k) => k.id)).size).toBe(50);
    for (const k of keys) {
      expect(k.key).toHaveLength(KEY_LENGTH);
      expect(k.key).toMatch(/^bfk_key_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(k.secret, "base64url")).toHaveLength(32);
      expect(parseKey(k.key)).toEqual({ id: k.id, secret: k.secret });
      expect(k.hash).toBe(hashKey(k.key));
      expect(k.hash).not.toContain(k.secret);
    }
  });

  it("refuses anything that is not exactly a key", () => {
    const { key } = generateKey();
    const bad = [
      "",
      "bfk_",
      key.slice(0, -1),
      `${key}x`,
      `BFK_${key.slice(4)}`,
      key.replace("bfk_key_", "bfk_kex_"),
      `${key.slice(0, 24)}-${key.slice(25)}`, // the separator after the id
      `${key.slice(0, 8)}${"G".repeat(16)}${key.slice(24)}`, // id not hex
      `${key.slice(0, -1)}=`, // not base64url
      `${key.slice(0, -1)} `,
    ];
    for (const text of bad) expect({ text, parsed: parseKey(text) }).toEqual({ text, parsed: undefined });
  });

  it("matches a key against its stored hash only", () => {
    const a = generateKey();
    const b = generateKey();
    expect(keyMatches(a.key, a.hash)).toBe(true);
    expect(keyMatches(b.key, a.hash)).toBe(false);
    expect(keyMatches(a.key, "")).toBe(false);
    expect(keyMatches(a.key, "zz")).toBe(false);
    expect(keyMatches(a.key, a.hash.slice(0, 62))).toBe(false);
  });
});

describe("roles", () => {
  it("nest admin ⊇ operator ⊇ viewer over the access levels", () => {
    const table = Object.fromEntries(ROLES.map((role) => [role, (["public", "read", "trigger", "webhook", "admin"] as const).filter((a) => roleAllows(role, a))]));
    expect(table).toEqual({
      admin: ["public", "read", "trigger", "webhook", "admin"],
      operator: ["public", "read", "trigger", "webhook"],
      viewer: ["public", "read"],
    });
    expect([leastRoleFor("read"), leastRoleFor("trigger"), leastRoleFor("webhook"), leastRoleFor("admin")]).toEqual(["viewer", "operator", "operator", "admin"]);
  });
});

describe("org scope", () => {
  it("limits an org key to its org, and a global key to nothing", () => {
    expect(inScope({ org: "a" }, { org: "a" })).toBe(true);
    expect(inScope({ org: "b" }, { org: "a" })).toBe(false);
    expect(inScope({ org: null }, { org: "a" })).toBe(false);
    expect(inScope({ org: null }, {})).toBe(true);
    expect(inScope({ org: "b" }, undefined)).toBe(true);
  });

  it("gives a triggered run the key's org unless the caller names one it may use", () => {
    expect(triggerOrg(undefined, undefined)).toBeNull();
    expect(triggerOrg(undefined, null)).toBeNull();
    expect(triggerOrg(undefined, "b")).toBe("b");
    expect(triggerOrg("a", undefined)).toBe("a");
    expect(triggerOrg("a", null)).toBe("a");
    expect(triggerOrg("a", "a")).toBe("a");
    expect(() => triggerOrg("a", "b")).toThrow(expect.objectContaining({ code: "FORBIDDEN", status: 403 }));
  });
});

describe("key input", () => {
  const refused = (input: Parameters<typeof validateKeyInput>[0]) => {
    try {
      validateKeyInput(input);
    } catch (err) {
      return err instanceof BifrostError ? err.code : "not a BifrostError";
    }
    return "accepted";
  };

  it("names keys by default and refuses bad roles, orgs, names and org-limited admins", () => {
    expect(validateKeyInput({ role: "viewer", org: "contoso" })).toEqual({ role: "viewer", org: "contoso", name: "viewer key for contoso" });
    expect(validateKeyInput({ role: "admin" })).toEqual({ role: "admin", org: null, name: "admin key" });
    expect(refused({ role: "root" as never })).toBe("VALIDATION_FAILED");
    expect(refused({ role: "operator", org: "bad org" })).toBe("VALIDATION_FAILED");
    expect(refused({ role: "operator", org: "x".repeat(129) })).toBe("VALIDATION_FAILED");
    expect(refused({ role: "admin", org: "contoso" })).toBe("VALIDATION_FAILED");
    expect(refused({ role: "operator", name: "" })).toBe("VALIDATION_FAILED");
    expect(refused({ role: "operator", name: "a\nb" })).toBe("VALIDATION_FAILED");
    expect(refused({ role: "operator", name: "x".repeat(101) })).toBe("VALIDATION_FAILED");
    expect(refused({ role: "operator", name: "CI deploys" })).toBe("accepted");
  });
});
