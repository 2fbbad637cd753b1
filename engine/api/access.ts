/**
 * What each route needs. Routes declare it in `config.access`; engine/api/auth.ts enforces it from
 * the API key's role (engine/auth/roles.ts) and refuses to start with a route that declares none.
 * "webhook": a signed call (X-Bifrost-Signature, verified by the route) needs no key; an unsigned
 * one needs a key that may trigger.
 */
export type Access = "public" | "read" | "trigger" | "admin" | "webhook";

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Access;
  }
}
