// A real OAuth server for the tests: oidc-provider 8.8.1 on 127.0.0.1, behind a small node:http front
// that counts every token request, serves per-tenant URLs, a protected test API and failure modes.
// Tests drive the authorization-code flow through devInteractions with fetch (see authorize/deny).
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Provider, { errors, type Adapter, type AdapterPayload, type ClientMetadata, type Configuration } from "oidc-provider";

export type OAuthGrantType = "authorization_code" | "client_credentials" | "refresh_token";

export interface OAuthTestClient {
  clientId: string;
  clientSecret: string;
  scopes: string[];
  grantTypes: OAuthGrantType[];
  redirectUris: string[];
  /** Unset: the token endpoint accepts client_secret_basic and client_secret_post alike. Set: only that one. */
  tokenEndpointAuthMethod?: "client_secret_basic" | "client_secret_post";
}

export interface TokenRequestRecord {
  at: number;
  grantType: string;
  clientId: string | null;
  tenant: string | null;
  /** the refresh token presented (test-only plaintext), for rotation checks */
  refreshToken: string | null;
  scope: string | null;
  /** 0 while the answer is pending (slow mode) or when the connection was destroyed (reset mode). */
  status: number;
}

export interface AuthorizationRequestRecord {
  at: number;
  tenant: string | null;
  clientId: string | null;
  scope: string | null;
  redirectUri: string | null;
  state: string | null;
  codeChallengeMethod: string | null;
}

export interface ApiRequestRecord {
  at: number;
  /** the bearer token presented, or null */
  token: string | null;
  status: number;
}

/**
 * normal; fail5xx: the token endpoint answers 503 with an HTML body; down: the whole server stops
 * listening (ECONNREFUSED) until the next mode change; reset: token requests are recorded, then their
 * connection is destroyed; slow: token requests are recorded and held until `release()` or a mode change.
 */
export type OAuthServerMode = "normal" | "fail5xx" | "down" | "reset" | "slow";

export interface OAuthTestServer {
  /** http://127.0.0.1:PORT */
  issuer: string;
  authorizationUrl: string;
  tokenUrl: string;
  /** Token and authorization URLs with a `{entity_id}` placeholder, served at /tenants/<id>/... and recorded as `tenant` */
  templatedTokenUrl: string;
  templatedAuthorizationUrl: string;
  /** GET: 200 `{ sub, client_id, scope }` for a valid access token, 401 invalid_token, 403 insufficient_scope for `?requireScope=a b` */
  apiUrl: string;
  /** every scope the server knows (invalid_scope fires for these when the client lacks them; others are dropped) */
  scopes: string[];
  tokenRequests: TokenRequestRecord[];
  authorizationRequests: AuthorizationRequestRecord[];
  apiRequests: ApiRequestRecord[];
  /** every access token, refresh token and client secret the server ever issued/knows: tests search outputs for them */
  secrets(): string[];
  setMode(mode: OAuthServerMode): Promise<void>;
  /** answers the token requests slow mode holds */
  release(): void;
  /** the lifetime of access tokens issued from now on, both grants */
  setAccessTokenTtl(seconds: number): void;
  /** revoke every grant and refresh token so the next refresh answers invalid_grant; `accessTokens` also kills issued access tokens (api 401) */
  revokeAll(options?: { accessTokens?: boolean }): Promise<void>;
  /** follow an authorization URL through devInteractions login + consent; returns the redirect Location to the redirect_uri without calling it */
  authorize(authorizationRequestUrl: string, opts?: { login?: string }): Promise<string>;
  /** the same, but the user declines at consent: returns the redirect with error=access_denied */
  deny(authorizationRequestUrl: string, opts?: { login?: string }): Promise<string>;
  /** waits (event-based) until tokenRequests.length >= n */
  waitForTokenRequests(n: number): Promise<void>;
  close(): Promise<void>;
}

export interface OAuthServerOptions {
  clients: OAuthTestClient[];
  /** default 3600 */
  accessTokenTtlSeconds?: number;
  /** default true */
  rotateRefreshTokens?: boolean;
  /** extra known scopes (e.g. one no client may have, for invalid_scope); the clients' scopes are always known */
  scopes?: string[];
}

const OIDC_SCOPES = ["openid", "offline_access"];

// oidc-provider prints dev-only notices (dev keys, devInteractions, our pre-read body) through console;
// they say nothing a test needs, so drop just those lines, once per process.
let consoleFiltered = false;
function silenceProviderNotices(): void {
  if (consoleFiltered) return;
  consoleFiltered = true;
  for (const level of ["warn", "info"] as const) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      if (typeof args[0] === "string" && args[0].includes("oidc-provider ")) return;
      original(...args);
    };
  }
}

export async function startOAuthServer(options: OAuthServerOptions): Promise<OAuthTestServer> {
  silenceProviderNotices();
  let ttl = options.accessTokenTtlSeconds ?? 3600;
  const rotate = options.rotateRefreshTokens ?? true;
  const apiScopes = [...new Set([...options.clients.flatMap((c) => c.scopes), ...(options.scopes ?? [])])].filter((s) => !OIDC_SCOPES.includes(s));
  const knownScopes = [...OIDC_SCOPES, ...apiScopes];
  const clientsById = new Map(options.clients.map((c) => [c.clientId, c]));

  const events = new EventEmitter();
  const tokenRequests: TokenRequestRecord[] = [];
  const authorizationRequests: AuthorizationRequestRecord[] = [];
  const apiRequests: ApiRequestRecord[] = [];
  const issued = new Set<string>();
  let mode: OAuthServerMode = "normal";
  let held: (() => void)[] = [];
  let closed = false;

  // In-memory store we can enumerate: revokeAll() and secrets() need to see every token.
  const store = new Map<string, { payload: AdapterPayload; expiresAt: number | null }>();
  const adapter = (name: string): Adapter => {
    const key = (id: string) => `${name}:${id}`;
    const live = (id: string) => {
      const entry = store.get(key(id));
      if (entry && entry.expiresAt !== null && entry.expiresAt <= Date.now()) store.delete(key(id));
      return store.get(key(id))?.payload;
    };
    return {
      async upsert(id, payload, expiresIn) {
        if (["AccessToken", "ClientCredentials", "RefreshToken"].includes(name)) issued.add(id);
        store.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : null });
      },
      async find(id) {
        return live(id);
      },
      async findByUid(uid) {
        for (const [k, v] of store) if (k.startsWith(`${name}:`) && v.payload.uid === uid) return live(k.slice(name.length + 1));
        return undefined;
      },
      async findByUserCode() {
        return undefined;
      },
      async consume(id) {
        const entry = store.get(key(id));
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        store.delete(key(id));
      },
      async revokeByGrantId(grantId) {
        for (const [k, v] of store) if (k.startsWith(`${name}:`) && v.payload.grantId === grantId) store.delete(k);
      },
    };
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" }).end(`test oauth server: ${String(err)}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const resource = `${issuer}/api`;

  const clients: ClientMetadata[] = options.clients.map((c) => ({
    client_id: c.clientId,
    client_secret: c.clientSecret,
    grant_types: c.grantTypes,
    redirect_uris: c.redirectUris,
    response_types: c.grantTypes.includes("authorization_code") ? ["code"] : [],
    scope: [...new Set([...OIDC_SCOPES, ...c.scopes])].join(" "),
    token_endpoint_auth_method: c.tokenEndpointAuthMethod ?? "client_secret_post",
  }));

  const configuration: Configuration = {
    adapter,
    clients,
    scopes: knownScopes,
    cookies: { keys: [randomBytes(16).toString("hex")] },
    pkce: { methods: ["S256"], required: () => true },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      // Without a resource, oidc-provider keeps only OIDC scopes in access tokens; one default resource
      // (the test API) makes both grants carry the requested API scopes.
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== resource) throw new errors.InvalidTarget();
          return { scope: apiScopes.join(" "), accessTokenFormat: "opaque", accessTokenTTL: ttl };
        },
      },
    },
    ttl: { AccessToken: () => ttl, ClientCredentials: () => ttl },
    // Real providers (Microsoft with offline_access, HaloPSA always) hand out refresh tokens without
    // OIDC's prompt=consent rule, which oidc-provider enforces for offline_access: key on the grant type.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    rotateRefreshToken: () => rotate,
    expiresWithSession: async () => false,
  };
  const provider = new Provider(issuer, configuration);
  const callback = provider.callback();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", issuer);
    let path = url.pathname;
    let tenant: string | null = null;
    const tenantPath = /^\/tenants\/([^/]+)(\/(?:token|auth))$/.exec(path);
    if (tenantPath) {
      tenant = decodeURIComponent(tenantPath[1]!);
      path = tenantPath[2]!;
      req.url = `${path}${url.search}`;
    }
    if (path === "/api/me" && req.method === "GET") return api(req, res, url);
    if (path === "/token" && req.method === "POST") return token(req, res, tenant);
    if (path === "/auth" && req.method === "GET") {
      const q = (name: string) => url.searchParams.get(name);
      authorizationRequests.push({ at: Date.now(), tenant, clientId: q("client_id"), scope: q("scope"), redirectUri: q("redirect_uri"), state: q("state"), codeChallengeMethod: q("code_challenge_method") });
    }
    callback(req, res);
  }

  async function token(req: IncomingMessage, res: ServerResponse, tenant: string | null): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    const form = /^application\/x-www-form-urlencoded/i.test(req.headers["content-type"] ?? "");
    const params = new URLSearchParams(form ? body.toString() : "");
    const basic = parseBasic(req.headers.authorization);
    const clientId = basic?.id ?? params.get("client_id");
    const record: TokenRequestRecord = {
      at: Date.now(),
      grantType: params.get("grant_type") ?? "",
      clientId,
      tenant,
      refreshToken: params.get("refresh_token"),
      scope: params.get("scope"),
      status: 0,
    };
    tokenRequests.push(record);
    events.emit("token");

    if (mode === "reset") {
      req.socket.destroy();
      return;
    }
    if (mode === "fail5xx") {
      record.status = 503;
      res.writeHead(503, { "content-type": "text/html" }).end("<html><body><h1>503 Service Unavailable</h1><p>The service is temporarily down.</p></body></html>");
      return;
    }
    if (mode === "slow") {
      await new Promise<void>((resolve) => held.push(resolve));
      if (closed) return;
    }

    // Accept Basic for clients registered without a fixed method: oidc-provider insists on one per client.
    const client = clientId === null ? undefined : clientsById.get(clientId);
    // A client pinned to one method is refused the other, as providers that enforce it do
    // (oidc-provider 8 takes either for a secret).
    const pinned = client?.tokenEndpointAuthMethod;
    if ((pinned === "client_secret_basic" && !basic) || (pinned === "client_secret_post" && basic)) {
      record.status = 401;
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "invalid_client", error_description: `client authentication must use ${pinned === "client_secret_basic" ? "HTTP Basic" : "the request body"}` }));
      return;
    }
    if (form && basic && client && !client.tokenEndpointAuthMethod && !params.has("client_secret")) {
      params.set("client_id", basic.id);
      params.set("client_secret", basic.secret);
      delete req.headers.authorization;
      body = Buffer.from(params.toString());
    }
    // The stream is consumed; oidc-provider then reads req.body instead.
    (req as IncomingMessage & { body?: Buffer }).body = body;
    res.on("finish", () => {
      record.status = res.statusCode;
    });
    callback(req, res);
  }

  async function api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const presented = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1] ?? null;
    const record: ApiRequestRecord = { at: Date.now(), token: presented, status: 0 };
    apiRequests.push(record);
    const answer = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(value));
    };
    const found = presented === null ? undefined : ((await provider.AccessToken.find(presented)) ?? (await provider.ClientCredentials.find(presented)));
    if (!found) {
      return answer(401, { error: "invalid_token" }, { "www-authenticate": `Bearer realm="test-api", error="invalid_token", error_description="${presented === null ? "no access token" : "access token unknown or expired"}"` });
    }
    const granted = new Set((found.scope ?? "").split(" ").filter(Boolean));
    const required = url.searchParams.getAll("requireScope").flatMap((s) => s.split(" ")).filter(Boolean);
    const missing = required.filter((s) => !granted.has(s));
    if (missing.length) {
      return answer(403, { error: "insufficient_scope", missing }, { "www-authenticate": `Bearer realm="test-api", error="insufficient_scope", scope="${required.join(" ")}"` });
    }
    const sub = "accountId" in found && typeof found.accountId === "string" ? found.accountId : null;
    answer(200, { sub, client_id: found.clientId, scope: found.scope ?? "" });
  }

  const releaseHeld = () => {
    const waiting = held;
    held = [];
    for (const resolve of waiting) resolve();
  };
  const stopListening = async () => {
    if (!server.listening) return;
    const done = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await done;
  };

  async function drive(authorizationRequestUrl: string, login: string, decline: boolean): Promise<string> {
    const jar = new Map<string, string>();
    let next = new URL(authorizationRequestUrl);
    let method: "GET" | "POST" = "GET";
    let form: URLSearchParams | undefined;
    for (let hop = 0; hop < 20; hop++) {
      if (next.origin !== issuer) return next.href;
      const res = await fetch(next, {
        method,
        redirect: "manual",
        headers: {
          cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; "),
          ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        },
        ...(form ? { body: form.toString() } : {}),
      });
      for (const line of res.headers.getSetCookie()) {
        const [pair, ...attrs] = line.split(";");
        const eq = pair!.indexOf("=");
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        const expired = attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split("=")[1]!) <= Date.now());
        if (expired || value === "") jar.delete(name);
        else jar.set(name, value);
      }
      const location = res.headers.get("location");
      if (location) {
        await res.arrayBuffer();
        next = new URL(location, next);
        method = "GET";
        form = undefined;
        continue;
      }
      const html = await res.text();
      const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
      if (res.status !== 200 || !prompt) throw new Error(`test oauth server: ${next.pathname} answered ${res.status}: ${html.replace(/<(head|style)[\s\S]*?<\/\1>/gi, " ").replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 300)}`);
      if (prompt === "consent" && decline) {
        next = new URL(`${next.pathname}/abort`, issuer);
        continue;
      }
      method = "POST";
      form = new URLSearchParams(prompt === "login" ? { prompt, login, password: "test" } : { prompt });
    }
    throw new Error("test oauth server: too many redirects while authorizing");
  }

  return {
    issuer,
    authorizationUrl: `${issuer}/auth`,
    tokenUrl: `${issuer}/token`,
    templatedTokenUrl: `${issuer}/tenants/{entity_id}/token`,
    templatedAuthorizationUrl: `${issuer}/tenants/{entity_id}/auth`,
    apiUrl: `${issuer}/api/me`,
    scopes: knownScopes,
    tokenRequests,
    authorizationRequests,
    apiRequests,
    secrets: () => [...issued, ...options.clients.map((c) => c.clientSecret)],
    async setMode(next) {
      mode = next;
      if (next !== "slow") releaseHeld();
      if (next === "down") await stopListening();
      else if (!server.listening) await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    },
    release: releaseHeld,
    setAccessTokenTtl(seconds) {
      ttl = seconds;
    },
    async revokeAll(revokeOptions = {}) {
      const kinds = ["Grant", "RefreshToken", "AuthorizationCode", ...(revokeOptions.accessTokens ? ["AccessToken", "ClientCredentials"] : [])];
      for (const k of [...store.keys()]) if (kinds.includes(k.slice(0, k.indexOf(":")))) store.delete(k);
    },
    authorize: (u, opts = {}) => drive(u, opts.login ?? "test-user", false),
    deny: (u, opts = {}) => drive(u, opts.login ?? "test-user", true),
    waitForTokenRequests(n) {
      return new Promise<void>((resolve) => {
        const check = () => {
          if (tokenRequests.length < n) return;
          events.off("token", check);
          resolve();
        };
        events.on("token", check);
        check();
      });
    },
    async close() {
      closed = true;
      releaseHeld();
      await stopListening();
    },
  };
}

function parseBasic(header: string | undefined): { id: string; secret: string } | null {
  const encoded = /^Basic\s+(\S+)$/i.exec(header ?? "")?.[1];
  if (!encoded) return null;
  const decoded = Buffer.from(encoded, "base64").toString();
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
  const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
  return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
}
