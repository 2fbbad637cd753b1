/**
 * What each route needs. Routes declare it in `config.access`; the authentication plugin (a later
 * issue) enforces it from the API key's role. Until then every route is open, which is why the
 * engine binds to 127.0.0.1 by default.
 */
export type Access = "public" | "read" | "trigger" | "admin";

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Access;
  }
}
