import { describe, expect, it } from "vitest";
import type { OAuthProviderRecord, OAuthTokens, Storage } from "../storage/types.js";
import { forEachDialect } from "./dialects.js";

const provider = (name: string, at = 1): OAuthProviderRecord => ({
  name,
  grantType: "authorization_code",
  authorizationUrl: "https://login.example/authorize",
  tokenUrl: "https://login.example/{entity_id}/token",
  clientId: "client",
  clientSecretSealed: "sealed-secret",
  scopes: ["a", "offline_access"],
  redirectUri: null,
  clientAuth: "client_secret_post",
  createdAt: at,
  updatedAt: at,
});

const tokens = (n: number, refresh: string | null = `rt-${n}`): OAuthTokens => ({
  accessTokenSealed: `at-${n}`,
  refreshTokenSealed: refresh,
  tokenType: "bearer",
  expiresAt: 1000 * n,
  scopes: ["a"],
});

async function connected(s: Storage, org: string | null = "acme") {
  await s.oauth.putProvider(provider("p"));
  return s.oauth.connect("p", org, "tenant-1", tokens(1), 10);
}

/** The OAuth repository, run against every dialect like test/storage.test.ts. */
forEachDialect((dialect, withStorage) => {
  describe(`${dialect}: OAuth providers`, () => {
    it("creates, replaces (keeping createdAt), lists and removes providers with their connections", withStorage(async (s) => {
      await s.oauth.putProvider(provider("b", 1));
      await s.oauth.putProvider(provider("a", 2));
      const replaced = await s.oauth.putProvider({ ...provider("b", 9), clientId: "other", scopes: ["x"] });
      expect(replaced).toMatchObject({ name: "b", clientId: "other", scopes: ["x"], createdAt: 1, updatedAt: 9 });
      expect((await s.oauth.listProviders()).map((p) => p.name)).toEqual(["a", "b"]);
      await s.oauth.connect("b", null, null, tokens(1), 10);
      expect(await s.oauth.removeProvider("b")).toBe(true);
      expect(await s.oauth.removeProvider("b")).toBe(false);
      expect(await s.oauth.getConnection("b", null)).toBeUndefined();
    }));
  });

  describe(`${dialect}: OAuth connections`, () => {
    it("keeps an org's connection apart from the global one, and a reconnect replaces tokens and clears failures", withStorage(async (s) => {
      await connected(s, "acme");
      await s.oauth.connect("p", null, null, tokens(5), 11);
      await s.oauth.recordFailure("p", "acme", { status: "needs_reauth", failure: { category: "token_expired" }, nextRetryAt: null }, 12);
      expect(await s.oauth.getConnection("p", "acme")).toMatchObject({ status: "needs_reauth", failureCount: 1, lastFailure: { category: "token_expired" }, generation: 1 });
      const again = await s.oauth.connect("p", "acme", "tenant-2", tokens(2), 20);
      expect(again).toMatchObject({ org: "acme", entityId: "tenant-2", accessTokenSealed: "at-2", status: "healthy", failureCount: 0, lastFailure: null, generation: 2, createdAt: 10 });
      expect(await s.oauth.getConnection("p", null)).toMatchObject({ org: null, accessTokenSealed: "at-5" });
      expect((await s.oauth.listConnections({ org: null })).map((c) => c.org)).toEqual([null]);
      expect(await s.oauth.listConnections({ provider: "p" })).toHaveLength(2);
    }));

    it("lets one holder at a time take the refresh lease, and a lapsed lease be taken over", withStorage(async (s) => {
      await connected(s);
      expect(await s.oauth.takeRefreshLease("p", "acme", "one", 100, 50)).toMatchObject({ refreshOwner: "one" });
      expect(await s.oauth.takeRefreshLease("p", "acme", "two", 100, 60)).toBeUndefined();
      expect(await s.oauth.takeRefreshLease("p", "acme", "two", 300, 101)).toMatchObject({ refreshOwner: "two" });
      // "one" lost its lease: its late result is refused, so the token "two" saves is the one kept.
      expect(await s.oauth.finishRefresh("p", "acme", "one", { tokens: tokens(7) }, 102)).toBe(false);
      expect(await s.oauth.finishRefresh("p", "acme", "two", { tokens: tokens(8) }, 103)).toBe(true);
      expect(await s.oauth.getConnection("p", "acme")).toMatchObject({ accessTokenSealed: "at-8", refreshTokenSealed: "rt-8", refreshOwner: null, generation: 2, lastRefreshAt: 103 });
    }));

    it("stores a rotated refresh token with its access token, and keeps the old one when none came back", withStorage(async (s) => {
      await connected(s);
      await s.oauth.takeRefreshLease("p", "acme", "one", 100, 50);
      await s.oauth.finishRefresh("p", "acme", "one", { tokens: tokens(2, null) }, 60);
      expect(await s.oauth.getConnection("p", "acme")).toMatchObject({ accessTokenSealed: "at-2", refreshTokenSealed: "rt-1" });
    }));

    it("records a failed refresh under the lease and finds connections due for refresh", withStorage(async (s) => {
      await connected(s);
      await s.oauth.connect("p", "beta", null, tokens(50), 10);
      expect(await s.oauth.dueForRefresh(2000, 0, 10)).toEqual([{ provider: "p", org: "acme" }]);
      await s.oauth.takeRefreshLease("p", "acme", "one", 100, 50);
      expect(await s.oauth.finishRefresh("p", "acme", "one", { status: "refresh_failed", failure: { category: "provider_unavailable" }, nextRetryAt: 500 }, 60)).toBe(true);
      expect(await s.oauth.getConnection("p", "acme")).toMatchObject({ status: "refresh_failed", failureCount: 1, nextRetryAt: 500, accessTokenSealed: "at-1" });
      expect(await s.oauth.dueForRefresh(0, 400, 10)).toEqual([]);
      expect(await s.oauth.dueForRefresh(0, 500, 10)).toEqual([{ provider: "p", org: "acme" }]);
    }));
  });

  describe(`${dialect}: OAuth states`, () => {
    it("consumes a state once, and tells used, expired and unknown states apart", withStorage(async (s) => {
      const state = { id: "h1", provider: "p", org: "acme", entityId: null, codeVerifierSealed: "v", redirectUri: "http://localhost/cb", createdAt: 1, expiresAt: 100, usedAt: null };
      await s.oauth.createState(state);
      await s.oauth.createState({ ...state, id: "h2", org: null });
      const [first, second] = await Promise.all([s.oauth.consumeState("h1", 50), s.oauth.consumeState("h1", 50)]);
      expect([first.ok, second.ok].sort()).toEqual([false, true]);
      expect(first.ok ? first.state : second.ok ? second.state : undefined).toMatchObject({ provider: "p", org: "acme", usedAt: 50 });
      expect(await s.oauth.consumeState("h1", 60)).toEqual({ ok: false, reason: "used" });
      expect(await s.oauth.consumeState("h2", 100)).toEqual({ ok: false, reason: "expired" });
      expect(await s.oauth.consumeState("nope", 1)).toEqual({ ok: false, reason: "unknown" });
      expect(await s.oauth.pruneStates(101)).toBe(2);
    }));
  });
});
