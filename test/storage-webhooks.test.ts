import { describe, expect, it } from "vitest";
import type { Storage } from "../storage/types.js";
import { forEachDialect } from "./dialects.js";

/** The webhook-secret and key-check repositories, run against every dialect like test/storage.test.ts. */
forEachDialect((dialect, withStorage) => {

  describe(`${dialect}: webhook secrets`, () => {
    it("keeps the first secret of a workflow when two are created at once", withStorage(async (s) => {
      expect(await s.webhookSecrets.get("hook")).toBeUndefined();
      const [a, b] = await Promise.all([
        s.webhookSecrets.createIfAbsent({ workflow: "hook", sealed: "sealed-a", createdAt: 1 }),
        s.webhookSecrets.createIfAbsent({ workflow: "hook", sealed: "sealed-b", createdAt: 2 }),
      ]);
      expect(a).toEqual(b);
      expect(await s.webhookSecrets.get("hook")).toEqual(a);
      expect(a).toMatchObject({ workflow: "hook", rotatedAt: null, previousSealed: null, previousUntil: null });
    }));

    it("replaces a secret on rotation and only for a workflow that has one", withStorage(async (s) => {
      await s.webhookSecrets.createIfAbsent({ workflow: "hook", sealed: "old", createdAt: 1 });
      expect(await s.webhookSecrets.replace("hook", "new", 5, null)).toEqual({ workflow: "hook", sealed: "new", createdAt: 1, rotatedAt: 5, previousSealed: null, previousUntil: null });
      // With a grace, the replaced secret becomes the previous one in the same write.
      expect(await s.webhookSecrets.replace("hook", "newer", 6, 100)).toEqual({ workflow: "hook", sealed: "newer", createdAt: 1, rotatedAt: 6, previousSealed: "new", previousUntil: 100 });
      expect(await s.webhookSecrets.replace("other", "new", 5, null)).toBeUndefined();
      expect(await s.webhookSecrets.get("other")).toBeUndefined();
    }));

    it("records the key fingerprint once", withStorage(async (s) => {
      expect(await s.secretKeyCheck.get()).toBeUndefined();
      expect(await s.secretKeyCheck.remember("aa", 1)).toBe("aa");
      expect(await s.secretKeyCheck.remember("bb", 2)).toBe("aa");
      expect(await s.secretKeyCheck.get()).toBe("aa");
    }));
  });
});
