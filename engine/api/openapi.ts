import { readFileSync } from "node:fs";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { documentRoute } from "./route-docs.js";

const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

/**
 * The OpenAPI 3.1 document, generated from the route schemas (@fastify/swagger), at /openapi.json,
 * and a page that renders it at /docs (@fastify/swagger-ui, which serves its assets from its own
 * package: nothing is fetched from elsewhere). Both need no key. Call before any route is added.
 */
export async function installOpenApi(app: FastifyInstance): Promise<void> {
  // Before swagger's own onRoute hook, so that it reads the documented schema.
  app.addHook("onRoute", documentRoute);
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Bifrost",
        version,
        description: "Workflow engine API. Every error reply is `{ error: { code, message, fix, details? } }` with a code from the README's error-code table.",
      },
      components: {
        securitySchemes: {
          apiKey: { type: "http", scheme: "bearer", description: "An API key: `Authorization: Bearer bfk_…` (see the README's \"Keys and orgs\")" },
          webhookSignature: { type: "apiKey", in: "header", name: "X-Bifrost-Signature", description: "sha256=<hex HMAC-SHA256 of the raw body> under the workflow's webhook secret" },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { docExpansion: "list", deepLinking: false } });
  app.get("/openapi.json", { config: { access: "public" } }, async () => app.swagger());
}
