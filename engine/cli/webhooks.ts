import { BifrostError } from "../../common/errors.js";
import { hookOrg, readGrace, webhookView } from "../api/routes/webhooks.js";
import type { Engine } from "../engine.js";
import { clientFromEnv, type ApiClient } from "./client.js";
import { dim } from "./format.js";

/**
 * `bifrost webhooks show|rotate <workflow>`: a workflow's webhook secret, embedded on the data
 * directory, or from a server when BIFROST_URL and BIFROST_API_KEY are set (an admin key). The
 * secret alone goes to stdout (`SECRET=$(bifrost webhooks show hook)`); how to use it to stderr.
 */

type WebhookView = ReturnType<typeof webhookView>;

const out = (text: string) => process.stdout.write(`${text}\n`);
const err = (text: string) => process.stderr.write(`${text}\n`);

function usage(message: string): never {
  throw new BifrostError("CLI_USAGE", message);
}

export async function webhooksCommand(sub: string | undefined, rest: string[], options: { json: boolean; grace?: string | undefined; org?: string | undefined }, openEngine: () => Promise<Engine>): Promise<number> {
  if (sub !== "show" && sub !== "rotate") usage(sub === undefined ? "webhooks needs a command: bifrost webhooks show|rotate <workflow>" : `unknown command "webhooks ${sub}"; try show or rotate`);
  const name = rest[0];
  if (!name) usage(`missing argument: bifrost webhooks ${sub} <workflow>`);
  if (rest.length > 1) usage(`webhooks ${sub} takes one workflow name (got ${rest.length})`);
  if (options.grace !== undefined && sub !== "rotate") usage("--grace goes with webhooks rotate");
  const grace = readGrace(options.grace);
  const org = hookOrg(options.org);
  const client = clientFromEnv();
  const view = client ? await fromServer(client, sub, name, options.grace, org) : await embedded(openEngine, sub, name, grace, org);
  if (options.json) out(JSON.stringify(view, null, 2));
  else {
    out(view.secret);
    const old = view.previousValidUntil ? `the old one keeps working until ${view.previousValidUntil}. ` : sub === "rotate" ? "the old one no longer works. " : "";
    err(dim(`${sub === "rotate" ? "new secret" : "secret"} of the webhook of ${view.workflow}${view.org === null ? "" : ` for org ${view.org}`}${view.rotatedAt ? ` (rotated ${view.rotatedAt})` : ""}; ${old}Senders sign each body with it:`));
    err(dim(`  POST ${view.url}`));
    err(dim(`  ${view.header}: sha256=<hex HMAC-SHA256 of the raw body>`));
    err(dim("Try it:"));
    err(dim(view.example));
  }
  return 0;
}

async function fromServer(client: ApiClient, sub: "show" | "rotate", name: string, grace: string | undefined, org: string | null): Promise<WebhookView> {
  const path = `/api/workflows/${encodeURIComponent(name)}/webhook`;
  const query = { ...(org !== null && { org }), ...(sub === "rotate" && grace !== undefined && { grace }) };
  return sub === "show" ? client.get<WebhookView>(path, query) : (await client.request<WebhookView>("POST", `${path}/rotate`, { query })).body;
}

async function embedded(openEngine: () => Promise<Engine>, sub: "show" | "rotate", name: string, grace: number | undefined, org: string | null): Promise<WebhookView> {
  const engine = await openEngine();
  try {
    return webhookView(sub === "show" ? await engine.webhooks.info(name, org) : await engine.webhooks.rotate(name, grace, org));
  } finally {
    await engine.stop(0);
  }
}
