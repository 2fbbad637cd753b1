import type { FastifyInstance, FastifyRequest } from "fastify";
import { BifrostError } from "../../common/errors.js";
import { capString } from "../../common/json-bounds.js";
import { authenticate, dueForTouch } from "../auth/key-store.js";
import { KEY_LENGTH } from "../auth/keys.js";
import { leastRoleFor, roleAllows, type Principal } from "../auth/roles.js";
import type { Engine } from "../engine.js";
import type { Access } from "./access.js";

/**
 * API keys on every route: `config.access` says what a route needs (./access.ts), the key's role
 * whether the caller may (../auth/roles.ts). Missing, malformed, unknown and revoked keys are 401
 * UNAUTHENTICATED with `WWW-Authenticate: Bearer`; a role that may not act is 403 FORBIDDEN. It runs
 * in onRequest, before the body is read: a caller without a key costs no parsing. Unmatched paths
 * pass to the 404 handler (there is nothing there to protect).
 */

declare module "fastify" {
  interface FastifyRequest {
    /** Who made the request; null on public routes (and on signed webhook calls until the route sets it). */
    principal: Principal | null;
  }
}

const LEVELS: readonly Access[] = ["public", "read", "trigger", "admin", "webhook"];
const REALM = 'Bearer realm="bifrost"';
/** Longest Authorization value read: the scheme, a space and one key (with room for stray spaces). */
const MAX_HEADER = KEY_LENGTH + 32;

/** Every route of the app (HEAD routes included) with the access it declares. */
export function declaredRoutes(app: FastifyInstance): { method: string; url: string; access: Access | undefined }[] {
  return app.routeTable.list().map((e) => ({ method: e.method, url: e.url, access: e.route.config?.access }));
}

/** The org an org key is limited to; undefined for a key (or a signed webhook) that sees every org. */
export function orgScope(request: FastifyRequest): string | undefined {
  return request.principal?.org ?? undefined;
}

/** The token of `Authorization: Bearer <token>` (scheme in any case, RFC 6750); undefined otherwise. */
function bearerToken(header: string): string | undefined {
  if (header.length > MAX_HEADER) return undefined;
  const space = header.indexOf(" ");
  if (space < 0 || header.slice(0, space).toLowerCase() !== "bearer") return undefined;
  const token = header.slice(space + 1).trim();
  return token.length > 0 && !token.includes(" ") ? token : undefined;
}

export function installAuth(app: FastifyInstance, engine: Engine): void {
  app.decorateRequest("principal", null);

  // Fail closed: a route that declares no access (or an unknown one) stops the server from
  // starting. Checked once every route exists, so that a plugin's own onRoute hook may still set
  // the access of the routes it adds (e.g. documentation pages).
  app.addHook("onReady", async () => {
    const open = declaredRoutes(app).filter((r) => !LEVELS.includes(r.access as Access));
    if (open.length > 0) {
      const names = open.map((r) => `${r.method} ${r.url}`).join(", ");
      throw new BifrostError("INTERNAL", `Routes without a valid config.access: ${names}; every route must declare public, read, trigger, admin or webhook`);
    }
  });

  const touching = new Set<Promise<void>>();
  app.addHook("onClose", async () => {
    await Promise.allSettled([...touching]);
  });

  app.addHook("onRequest", async (request, reply) => {
    if (request.is404) return;
    const access = request.routeOptions.config.access;
    if (access === "public") return;
    // A signed webhook call is the route's to verify; anything else needs a key like a trigger.
    if (access === "webhook" && request.headers["x-bifrost-signature"] !== undefined) return;
    if (access === undefined || !LEVELS.includes(access)) throw new BifrostError("INTERNAL", `Route ${request.routeOptions.url ?? ""} declares no access`);

    const unauthenticated = (message: string, invalidToken: boolean) => {
      void reply.header("www-authenticate", invalidToken ? `${REALM}, error="invalid_token"` : REALM);
      return new BifrostError("UNAUTHENTICATED", message);
    };
    const header = request.headers.authorization;
    if (header === undefined || header === "") throw unauthenticated("This route needs an API key: send Authorization: Bearer <key>", false);
    const token = bearerToken(header);
    if (token === undefined) throw unauthenticated("The Authorization header is not of the form Bearer <key>", true);
    const result = await authenticate(engine.storage, token);
    if (!result.ok) {
      const message =
        result.reason === "malformed"
          ? "The bearer token is not a Bifrost API key (they look like bfk_key_<16 hex digits>_<secret>)"
          : result.reason === "revoked"
            ? `API key ${result.keyId ?? ""} has been revoked`
            : "The API key is not valid: no key has that id and secret";
      throw unauthenticated(message, true);
    }
    const { key } = result;
    if (!roleAllows(key.role, access)) {
      const needed = leastRoleFor(access);
      throw new BifrostError("FORBIDDEN", `API key ${key.id} has the role ${key.role}; ${request.method} ${capString(request.routeOptions.url ?? "", 100)} needs ${needed}${needed === "admin" ? "" : " or above"}`, {
        details: { role: key.role, needs: needed },
      });
    }
    request.principal = { keyId: key.id, role: key.role, org: key.org };
    const now = engine.now();
    if (dueForTouch(key, now)) {
      // Not awaited: a request must not wait for (or fail on) a bookkeeping write.
      const touch = engine.storage.keys.touch(key.id, now).catch((err: unknown) => request.log.debug({ err }, "could not record an API key's last use"));
      touching.add(touch);
      void touch.finally(() => touching.delete(touch));
    }
  });
}
