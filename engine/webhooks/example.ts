import { SIGNATURE_HEADER } from "./signature.js";

/** Single-quotes a value for a POSIX shell. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/**
 * A shell snippet that signs a body with openssl and sends it with curl: what an admin pastes to
 * try a webhook (GET /api/workflows/:name/webhook, `bifrost webhooks show`). Pure.
 */
export function curlExample(url: string, secret: string, body = "{}"): string {
  return [
    `body=${shellQuote(body)}`,
    `sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac ${shellQuote(secret)} | sed 's/^.* //')`,
    `curl -X POST ${shellQuote(url)} -H 'Content-Type: application/json' -H "${SIGNATURE_HEADER}: sha256=$sig" --data-binary "$body"`,
  ].join("\n");
}
