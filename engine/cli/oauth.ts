import { BifrostError } from "../../common/errors.js";
import { isOrg } from "../auth/org.js";
import { connectionApiView, providerApiView, type ConnectionApiView, type ProviderApiView } from "../api/oauth-views.js";
import type { Engine } from "../engine.js";
import type { Diagnosis, OAuthCheck } from "../oauth/types.js";
import { formatDuration } from "../duration.js";
import { clientFromEnv, type ApiClient, type Query } from "./client.js";
import { dim, green, red, table, yellow } from "./format.js";
import { formatDiagnosis } from "./oauth-format.js";

/**
 * `bifrost oauth providers|connect|connections|diagnose`: embedded on the data directory (the
 * engine is opened, never started), or against a server when BIFROST_URL and BIFROST_API_KEY are
 * set. Both print the API's views. A client secret is only ever read (from --client-secret or,
 * better, stdin) and sent; nothing here prints one, and no view holds a token.
 */

export interface OAuthCliOptions {
  json: boolean;
  org?: string | undefined;
  provider?: string | undefined;
  "entity-id"?: string | undefined;
  "grant-type"?: string | undefined;
  "authorization-url"?: string | undefined;
  "token-url"?: string | undefined;
  "client-id"?: string | undefined;
  "client-secret"?: string | undefined;
  "client-secret-stdin"?: boolean | undefined;
  scopes?: string | undefined;
  "redirect-uri"?: string | undefined;
  "client-auth"?: string | undefined;
}

type Saved = { provider: ProviderApiView; warnings: OAuthCheck[]; created: boolean };
type Connected = { connection: ConnectionApiView } | { url: string; expiresAt: string; redirectUri: string };

/** What the commands need, from a server or from the engine on the data directory. */
interface Backend {
  embedded: boolean;
  putProvider(name: string, body: Record<string, unknown>): Promise<Saved>;
  listProviders(): Promise<ProviderApiView[]>;
  getProvider(name: string): Promise<ProviderApiView>;
  removeProvider(name: string): Promise<void>;
  connect(provider: string, org: string | null, entityId: string | null): Promise<Connected>;
  listConnections(filter: { provider?: string; org?: string }): Promise<ConnectionApiView[]>;
  refresh(provider: string, org: string | null): Promise<ConnectionApiView>;
  removeConnection(provider: string, org: string | null): Promise<void>;
  diagnose(provider: string, org: string | null): Promise<Diagnosis>;
}

const out = (text: string) => process.stdout.write(`${text}\n`);
const err = (text: string) => process.stderr.write(`${text}\n`);

function usage(message: string): never {
  throw new BifrostError("CLI_USAGE", message);
}

export async function oauthCommand(sub: string | undefined, rest: string[], options: OAuthCliOptions, openEngine: () => Promise<Engine>): Promise<number> {
  const run = (fn: (b: Backend) => Promise<number>) => withBackend(openEngine, fn);
  const org = orgOption(options.org);
  switch (sub) {
    case "providers":
      return providersCommand(rest, options, run);
    case "connect": {
      const provider = one(rest, "bifrost oauth connect <provider> [--org O] [--entity-id E]");
      return run(async (b) => printConnected(provider, org, await b.connect(provider, org, options["entity-id"] ?? null), b.embedded, options.json));
    }
    case "connections":
      return connectionsCommand(rest, options, org, run);
    case "diagnose": {
      const provider = one(rest, "bifrost oauth diagnose <provider> [--org O] [--json]");
      return run(async (b) => {
        const d = await b.diagnose(provider, org);
        if (options.json) out(JSON.stringify(d, null, 2));
        else process.stdout.write(formatDiagnosis(d, `OAuth provider ${provider}, ${org === null ? "global connection" : `org ${org}`}`));
        return d.ok ? 0 : 1;
      });
    }
    default:
      return usage(sub === undefined ? "oauth needs a command: providers, connect, connections or diagnose" : `unknown command "oauth ${sub}"; try providers, connect, connections or diagnose`);
  }
}

async function providersCommand(rest: string[], options: OAuthCliOptions, run: (fn: (b: Backend) => Promise<number>) => Promise<number>): Promise<number> {
  const [verb, ...args] = rest;
  switch (verb) {
    case "add": {
      const name = one(args, "bifrost oauth providers add <name> --grant-type G --token-url U --client-id ID [...]");
      const body = await providerBody(options);
      return run(async (b) => {
        const saved = await b.putProvider(name, body);
        if (options.json) out(JSON.stringify({ provider: saved.provider, warnings: saved.warnings }, null, 2));
        else {
          out(providerText(saved.provider));
          err(dim(`${saved.created ? "added" : "replaced"} provider ${saved.provider.name}${saved.created ? "" : " (its connections are kept)"}`));
          for (const w of saved.warnings) err(`${yellow("warning")}: ${w.message}${w.fix ? `\n  fix: ${w.fix}` : ""}`);
        }
        return 0;
      });
    }
    case "list":
    case undefined:
      if (args.length > 0) usage(`oauth providers list takes no arguments (got "${args[0]}")`);
      return run(async (b) => {
        const items = await b.listProviders();
        if (options.json) out(JSON.stringify({ items }, null, 2));
        else if (items.length === 0) out("no OAuth providers; add one with `bifrost oauth providers add <name> ...`");
        else out(table([["NAME", "GRANT", "CLIENT ID", "SECRET", "SCOPES", "REDIRECT URI"], ...items.map((p) => [p.name, p.grantType, p.clientId, p.clientSecretSet ? "set" : "not set", p.scopes.join(" ") || "-", p.redirectUri])]));
        return 0;
      });
    case "show": {
      const name = one(args, "bifrost oauth providers show <name>");
      return run(async (b) => {
        const p = await b.getProvider(name);
        out(options.json ? JSON.stringify(p, null, 2) : providerText(p));
        return 0;
      });
    }
    case "remove": {
      const name = one(args, "bifrost oauth providers remove <name>");
      return run(async (b) => {
        await b.removeProvider(name);
        if (options.json) out(JSON.stringify({ removed: { provider: name } }));
        else err(dim(`removed provider ${name} and its connections`));
        return 0;
      });
    }
    default:
      return usage(`unknown command "oauth providers ${verb}"; try add, list, show or remove`);
  }
}

async function connectionsCommand(rest: string[], options: OAuthCliOptions, org: string | null, run: (fn: (b: Backend) => Promise<number>) => Promise<number>): Promise<number> {
  const [verb, ...args] = rest;
  switch (verb) {
    case "list":
    case undefined:
      if (args.length > 0) usage(`oauth connections list takes no arguments (got "${args[0]}"); filter with --provider and --org`);
      return run(async (b) => {
        const items = await b.listConnections({ ...(options.provider !== undefined && { provider: options.provider }), ...(org !== null && { org }) });
        if (options.json) out(JSON.stringify({ items }, null, 2));
        else out(items.length === 0 ? "no OAuth connections" : connectionTable(items, Date.now()));
        return 0;
      });
    case "refresh": {
      const provider = one(args, "bifrost oauth connections refresh <provider> [--org O]");
      return run(async (b) => {
        const connection = await b.refresh(provider, org);
        out(options.json ? JSON.stringify({ connection }, null, 2) : connectionTable([connection], Date.now()));
        return 0;
      });
    }
    case "remove": {
      const provider = one(args, "bifrost oauth connections remove <provider> [--org O]");
      return run(async (b) => {
        await b.removeConnection(provider, org);
        if (options.json) out(JSON.stringify({ removed: { provider, org } }));
        else err(dim(`removed the ${provider} connection ${org === null ? "that is global" : `of org ${org}`} and its tokens (the provider keeps its grant until it expires or is revoked there)`));
        return 0;
      });
    }
    default:
      return usage(`unknown command "oauth connections ${verb}"; try list, refresh or remove`);
  }
}

function one(args: string[], synopsis: string): string {
  const [value, extra] = args;
  if (!value) usage(`missing argument: ${synopsis}`);
  if (extra !== undefined) usage(`too many arguments (got "${extra}"): ${synopsis}`);
  return value;
}

function orgOption(org: string | undefined): string | null {
  if (org === undefined) return null;
  if (!isOrg(org)) usage(`--org ${JSON.stringify(org.slice(0, 40))} is not an org name: letters, digits, '_', '.', ':' or '-', starting with a letter or digit, at most 128 characters`);
  return org;
}

/** The provider's fields from the options; the secret from stdin when asked (keeps it out of `ps` and shell history). */
async function providerBody(o: OAuthCliOptions): Promise<Record<string, unknown>> {
  if (o["client-secret"] !== undefined && o["client-secret-stdin"]) usage("give the client secret once: --client-secret S or --client-secret-stdin");
  if (o["token-url"] === undefined) usage("oauth providers add needs --token-url");
  if (o["client-id"] === undefined) usage("oauth providers add needs --client-id");
  const secret = o["client-secret-stdin"] ? await readSecret() : o["client-secret"];
  return {
    ...(o["grant-type"] !== undefined && { grantType: o["grant-type"] }),
    ...(o["authorization-url"] !== undefined && { authorizationUrl: o["authorization-url"] }),
    tokenUrl: o["token-url"],
    clientId: o["client-id"],
    ...(secret !== undefined && { clientSecret: secret }),
    ...(o.scopes !== undefined && { scopes: o.scopes.trim() === "" ? [] : o.scopes.trim().split(/\s+/) }),
    ...(o["redirect-uri"] !== undefined && { redirectUri: o["redirect-uri"] }),
    ...(o["client-auth"] !== undefined && { clientAuth: o["client-auth"] === "basic" ? "client_secret_basic" : o["client-auth"] === "post" ? "client_secret_post" : o["client-auth"] }),
  };
}

/** stdin up to its end, without the line ending `echo` or a password manager adds. */
async function readSecret(): Promise<string> {
  if (process.stdin.isTTY) err(dim("client secret (then Enter and Ctrl-D):"));
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > 8192) usage("--client-secret-stdin: the secret on stdin is longer than 8 KB");
    chunks.push(chunk as Buffer);
  }
  const secret = Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
  if (secret === "") usage("--client-secret-stdin: stdin was empty");
  return secret;
}

function providerText(p: ProviderApiView): string {
  return [
    `${p.name}  ${dim(p.grantType)}`,
    ...(p.authorizationUrl === null ? [] : [`  authorization URL: ${p.authorizationUrl}`]),
    `  token URL:         ${p.tokenUrl}`,
    `  client id:         ${p.clientId}`,
    `  client secret:     ${p.clientSecretSet ? "set" : "not set"}${p.clientAuth === "client_secret_basic" ? dim(" (sent as HTTP Basic)") : ""}`,
    `  scopes:            ${p.scopes.join(" ") || "-"}`,
    `  redirect URI:      ${p.redirectUri}${p.redirectUriDefault ? dim(" (default: BIFROST_PUBLIC_URL + /api/oauth/callback)") : ""}`,
  ].join("\n");
}

const STATUS_COLOR = { healthy: green, expiring: yellow, refresh_failed: yellow, needs_reauth: red } as const;

/** "in 59m", "2h ago": when the access token expires, from now. */
export function expiryText(expiresAt: string | null, now: number): string {
  if (expiresAt === null) return "no token";
  const left = Date.parse(expiresAt) - now;
  return left > 0 ? `expires in ${formatDuration(Math.max(1000, Math.round(left / 1000) * 1000))}` : `expired ${formatDuration(Math.max(1000, Math.round(-left / 1000) * 1000))} ago`;
}

export function connectionTable(items: ConnectionApiView[], now: number): string {
  return table([
    ["PROVIDER", "ORG", "STATUS", "TOKEN", "SCOPES", "LAST FAILURE"],
    ...items.map((c) => [
      c.provider,
      c.org ?? "(global)",
      (STATUS_COLOR[c.status] ?? yellow)(c.status),
      expiryText(c.expiresAt, now),
      c.scopes.join(" ") || "-",
      c.lastFailure ? `${c.lastFailure.category}${c.lastFailure.code ? ` (${c.lastFailure.code})` : ""}: ${c.lastFailure.message} — fix: ${c.lastFailure.fix}` : "-",
    ]),
  ]);
}

function printConnected(provider: string, org: string | null, result: Connected, embedded: boolean, json: boolean): number {
  if ("connection" in result) {
    out(json ? JSON.stringify({ connection: result.connection }, null, 2) : connectionTable([result.connection], Date.now()));
    if (!json) err(dim(`connected ${provider} ${org === null ? "globally" : `for org ${org}`} with client credentials`));
    return 0;
  }
  if (json) {
    out(JSON.stringify({ url: result.url, expiresAt: result.expiresAt }, null, 2));
    return 0;
  }
  out(result.url);
  err(dim(`Open the URL above in a browser and sign in to ${provider}; the link works once, until ${result.expiresAt}.`));
  err(dim(`The provider then sends the browser to ${result.redirectUri}: that address must reach this engine's server, which completes the connection and shows what happened.`));
  if (embedded) err(yellow("The engine must be running on this data directory (`bifrost start`) for the callback to complete."));
  return 0;
}

async function withBackend(openEngine: () => Promise<Engine>, fn: (b: Backend) => Promise<number>): Promise<number> {
  const client = clientFromEnv();
  if (client) return fn(serverBackend(client));
  const engine = await openEngine();
  try {
    return await fn(engineBackend(engine));
  } finally {
    await engine.stop(0);
  }
}

const orgQuery = (org: string | null): Query => (org === null ? {} : { org });
const enc = encodeURIComponent;

function serverBackend(client: ApiClient): Backend {
  return {
    embedded: false,
    async putProvider(name, body) {
      const reply = await client.request<{ provider: ProviderApiView; warnings: OAuthCheck[] }>("PUT", `/api/oauth/providers/${enc(name)}`, { body });
      return { ...reply.body, created: reply.status === 201 };
    },
    listProviders: async () => (await client.get<{ items: ProviderApiView[] }>("/api/oauth/providers")).items,
    getProvider: (name) => client.get<ProviderApiView>(`/api/oauth/providers/${enc(name)}`),
    removeProvider: async (name) => void (await client.request("DELETE", `/api/oauth/providers/${enc(name)}`)),
    async connect(provider, org, entityId) {
      const p = await client.get<ProviderApiView>(`/api/oauth/providers/${enc(provider)}`);
      const query = { ...orgQuery(org), ...(entityId !== null && { entityId }) };
      if (p.grantType === "client_credentials") return (await client.request<{ connection: ConnectionApiView }>("POST", `/api/oauth/connections/${enc(provider)}/connect`, { query })).body;
      const link = await client.get<{ url: string; expiresAt: string }>(`/api/oauth/providers/${enc(provider)}/authorize`, { ...query, redirect: false });
      return { ...link, redirectUri: p.redirectUri };
    },
    listConnections: async (filter) => (await client.get<{ items: ConnectionApiView[] }>("/api/oauth/connections", filter)).items,
    refresh: async (provider, org) => (await client.request<{ connection: ConnectionApiView }>("POST", `/api/oauth/connections/${enc(provider)}/refresh`, { query: orgQuery(org) })).body.connection,
    removeConnection: async (provider, org) => void (await client.request("DELETE", `/api/oauth/connections/${enc(provider)}`, { query: orgQuery(org) })),
    diagnose: (provider, org) => client.get<Diagnosis>(`/api/oauth/providers/${enc(provider)}/diagnose`, orgQuery(org)),
  };
}

function engineBackend(engine: Engine): Backend {
  const { oauth } = engine;
  return {
    embedded: true,
    async putProvider(name, body) {
      const saved = await oauth.putProvider(name, body);
      return { provider: providerApiView(saved.provider), warnings: saved.warnings, created: saved.created };
    },
    listProviders: async () => (await oauth.listProviders()).map(providerApiView),
    getProvider: async (name) => providerApiView(await oauth.getProvider(name)),
    removeProvider: (name) => oauth.removeProvider(name),
    async connect(provider, org, entityId) {
      const p = await oauth.getProvider(provider);
      if (p.grantType === "client_credentials") return { connection: connectionApiView(await oauth.connections.connectClientCredentials(provider, org, entityId)) };
      const link = await oauth.connections.startAuthorization(provider, org, entityId);
      return { url: link.url, expiresAt: new Date(link.expiresAt).toISOString(), redirectUri: p.redirectUri };
    },
    listConnections: async (filter) => (await oauth.connections.list(filter)).map(connectionApiView),
    refresh: async (provider, org) => connectionApiView(await oauth.connections.refreshConnection(provider, org)),
    removeConnection: (provider, org) => oauth.connections.remove(provider, org),
    diagnose: (provider, org) => oauth.diagnose(provider, org),
  };
}
