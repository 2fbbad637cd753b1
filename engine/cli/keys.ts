import { BifrostError } from "../../common/errors.js";
import type { Storage } from "../../storage/types.js";
import { createKey, keyView, revokeKey, type CreatedKey } from "../auth/key-store.js";
import { isRole, ROLES } from "../auth/roles.js";
import { dim, table, yellow } from "./format.js";

/**
 * `bifrost keys create|list|revoke` against the data directory. A created key is printed once, on
 * stdout alone (so `KEY=$(bifrost keys create --role operator)` captures just the key); what it is
 * goes to stderr. Nothing here prints a stored hash.
 */

export interface KeyOptions {
  role?: string | undefined;
  org?: string | undefined;
  name?: string | undefined;
  json: boolean;
}

const out = (text: string) => process.stdout.write(`${text}\n`);
const err = (text: string) => process.stderr.write(`${text}\n`);

function usage(message: string): never {
  throw new BifrostError("CLI_USAGE", message);
}

export async function keysCommand(storage: Storage, sub: string | undefined, rest: string[], options: KeyOptions): Promise<number> {
  // Keys are never managed over HTTP: say so rather than let a client setting suggest otherwise.
  if (process.env.BIFROST_URL) err(dim("note: bifrost keys works on the data directory (BIFROST_DATA_DIR), not on the server at BIFROST_URL"));
  switch (sub) {
    case "create":
      if (rest.length > 0) usage(`keys create takes no arguments (got "${rest[0]}"); name the key with --name`);
      return create(storage, options);
    case "list":
    case undefined:
      return list(storage, options);
    case "revoke": {
      const id = rest[0];
      if (!id) usage("missing argument: bifrost keys revoke <key-id> (the ids are in `bifrost keys list`)");
      return revoke(storage, id, options);
    }
    default:
      return usage(`unknown command "keys ${sub}"; try create, list or revoke`);
  }
}

async function create(storage: Storage, options: KeyOptions): Promise<number> {
  const { role } = options;
  if (role === undefined) usage(`keys create needs --role: one of ${ROLES.join(", ")}`);
  if (!isRole(role)) usage(`--role must be one of ${ROLES.join(", ")}`);
  if (role === "admin" && options.org !== undefined) usage("--role admin cannot have --org: an admin key manages the workflows and secrets every org shares; give an org an operator or viewer key");
  const created = await createKey(storage, { role, org: options.org ?? null, name: options.name ?? null }, Date.now());
  if (options.json) out(JSON.stringify({ ...keyView(created.record), key: created.key }, null, 2));
  else {
    out(created.key);
    err(dim(`${describe(created)}; shown only this once (only its hash is stored). Use it as "Authorization: Bearer <key>" or BIFROST_API_KEY.`));
  }
  return 0;
}

function describe({ record }: CreatedKey): string {
  return `created ${record.id} "${record.name}": role ${record.role}, ${record.org === null ? "every org" : `org ${record.org}`}`;
}

async function list(storage: Storage, options: KeyOptions): Promise<number> {
  const items = (await storage.keys.list()).map(keyView);
  if (options.json) {
    out(JSON.stringify({ items }, null, 2));
    return 0;
  }
  if (items.length === 0) {
    out("no API keys (bifrost start creates an admin key on its first start; or run bifrost keys create --role admin)");
    return 0;
  }
  out(
    table([
      ["ID", "ROLE", "ORG", "NAME", "CREATED", "LAST USED", "REVOKED"],
      ...items.map((k) => [k.id, k.role, k.org ?? "-", k.name, k.createdAt, k.lastUsedAt ?? "never", k.revokedAt ? yellow(k.revokedAt) : "-"]),
    ]),
  );
  return 0;
}

async function revoke(storage: Storage, id: string, options: KeyOptions): Promise<number> {
  const now = Date.now();
  const record = await revokeKey(storage, id, now);
  if (options.json) out(JSON.stringify(keyView(record), null, 2));
  else if (record.revokedAt === now) out(`revoked ${record.id} "${record.name}": requests with it are refused from now on`);
  else out(`${record.id} "${record.name}" was already revoked at ${new Date(record.revokedAt ?? now).toISOString()}`);
  return 0;
}

/** What `bifrost start` prints, once, on stderr when it created the first admin key. */
export function firstKeyText(created: CreatedKey, url: string): string {
  const base = url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:");
  return [
    "",
    "First start: created an admin API key. It is shown only this once (only its hash is stored):",
    "",
    `    ${created.key}`,
    "",
    `  use it:     curl -H "Authorization: Bearer ${created.key}" ${base}/api/workflows`,
    `  CLI client: export BIFROST_URL=${base} BIFROST_API_KEY=${created.key}`,
    "  more keys:  bifrost keys create --role admin|operator|viewer [--org ORG] [--name NAME]   (and bifrost keys list, bifrost keys revoke <id>)",
    "",
  ].join("\n");
}
