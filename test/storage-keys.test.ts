import { describe, expect, it } from "vitest";
import type { NewApiKey, Storage } from "../storage/types.js";
import { forEachDialect } from "./dialects.js";

let n = 0;
function newKey(overrides: Partial<NewApiKey> = {}): NewApiKey {
  n += 1;
  return { id: `key_${String(n).padStart(16, "0")}`, name: `key ${n}`, role: "operator", org: null, hash: "ab".repeat(32), createdAt: 1_000 + n, ...overrides };
}

/** The API-key repository, run against every dialect like test/storage.test.ts. */
forEachDialect((dialect, withStorage) => {

  describe(`${dialect}: api keys`, () => {
    it("creates, reads and lists keys oldest first", withStorage(async (s) => {
      const a = newKey({ role: "admin" });
      const b = newKey({ role: "viewer", org: "contoso" });
      await s.keys.create(b);
      await s.keys.create(a);
      expect(await s.keys.get(b.id)).toEqual({ ...b, lastUsedAt: null, revokedAt: null });
      expect(await s.keys.get("key_missing")).toBeUndefined();
      expect((await s.keys.list()).map((k) => k.id)).toEqual([a.id, b.id]);
      await expect(s.keys.create({ ...a, name: "same id" })).rejects.toThrow();
    }));

    it("creates a first key only while there is none, revoked ones included", withStorage(async (s) => {
      const first = newKey({ role: "admin" });
      expect(await s.keys.createFirst(first)).toBe(true);
      expect(await s.keys.createFirst(newKey({ role: "admin" }))).toBe(false);
      expect((await s.keys.list()).map((k) => k.id)).toEqual([first.id]);
      await s.keys.revoke(first.id, 5_000);
      expect(await s.keys.createFirst(newKey({ role: "admin" }))).toBe(false);
    }));

    it("creates one first key when many starts race for it", withStorage(async (s) => {
      const results = await Promise.all(Array.from({ length: 8 }, () => s.keys.createFirst(newKey({ role: "admin" }))));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await s.keys.list()).toHaveLength(1);
    }));

    it("revokes once (the first time is kept) and records use", withStorage(async (s) => {
      const key = newKey();
      await s.keys.create(key);
      await s.keys.touch(key.id, 2_000);
      expect(await s.keys.get(key.id)).toMatchObject({ lastUsedAt: 2_000, revokedAt: null });
      expect(await s.keys.revoke(key.id, 3_000)).toMatchObject({ id: key.id, revokedAt: 3_000 });
      expect(await s.keys.revoke(key.id, 4_000)).toMatchObject({ id: key.id, revokedAt: 3_000 });
      expect(await s.keys.revoke("key_missing", 4_000)).toBeUndefined();
    }));
  });
});
