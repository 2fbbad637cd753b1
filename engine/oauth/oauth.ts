import { BifrostError } from "../../common/errors.js";
import { checkProviderConfig } from "./config-checks.js";
import { OAuthConnections, type OAuthConnectionsOptions } from "./connections.js";
import { diagnose } from "./diagnose.js";
import { probeUrl } from "./probe.js";
import { openClientSecret, parseProviderInput, providerView, secretContext, toProviderRecord } from "./providers.js";
import type { Diagnosis, OAuthCheck, ProviderView } from "./types.js";

export interface OAuthOptions extends Pick<OAuthConnectionsOptions, "storage" | "secrets" | "logger" | "now" | "owner" | "publicUrl"> {
  /** Whether BIFROST_PUBLIC_URL was set (the redirect URI's domain is only checked against a real one). */
  publicUrlSet: boolean;
  connections?: Partial<Pick<OAuthConnectionsOptions, "refreshSkewMs" | "leaseMs" | "leasePollMs" | "stateTtlMs">>;
  /** Reachability probes of the doctor (tests may inject). */
  probe?: typeof probeUrl;
}

/**
 * OAuth for the API and CLI: providers (validated, the client secret sealed and write-only,
 * checked when saved), connections (connections.ts) and the doctor.
 */
export class OAuth {
  readonly connections: OAuthConnections;

  constructor(private readonly o: OAuthOptions) {
    const { storage, secrets, logger, now, owner, publicUrl } = o;
    this.connections = new OAuthConnections({ storage, secrets, logger, now, owner, publicUrl, ...o.connections });
  }

  private get env() {
    return { publicUrl: this.o.publicUrl, publicUrlSet: this.o.publicUrlSet };
  }

  /** Creates or replaces a provider; a missing clientSecret keeps the stored one. Returns the checks that failed as warnings. */
  async putProvider(name: string, body: unknown): Promise<{ provider: ProviderView; created: boolean; warnings: OAuthCheck[] }> {
    const fields = parseProviderInput(name, body);
    const existing = await this.o.storage.oauth.getProvider(name);
    const secret = fields.clientSecret === undefined ? (existing ? openClientSecret(this.o.secrets, existing) : null) : fields.clientSecret;
    const sealed = secret === null ? null : this.o.secrets.seal(secret, secretContext(name));
    const record = await this.o.storage.oauth.putProvider(toProviderRecord(name, fields, sealed, existing, this.o.now()));
    const view = providerView(record, this.o.publicUrl);
    const warnings = checkProviderConfig({ name, grantType: view.grantType, authorizationUrl: view.authorizationUrl, tokenUrl: view.tokenUrl, clientId: view.clientId, clientSecret: secret, scopes: view.scopes, redirectUri: view.redirectUri }, this.env).filter((c) => !c.ok);
    return { provider: view, created: existing === undefined, warnings };
  }

  async getProvider(name: string): Promise<ProviderView> {
    const record = await this.o.storage.oauth.getProvider(name);
    if (!record) throw new BifrostError("OAUTH_PROVIDER_NOT_FOUND", `there is no OAuth provider "${name}"`);
    return providerView(record, this.o.publicUrl);
  }

  async listProviders(): Promise<ProviderView[]> {
    return (await this.o.storage.oauth.listProviders()).map((r) => providerView(r, this.o.publicUrl));
  }

  /** Removes a provider with its connections. */
  async removeProvider(name: string): Promise<void> {
    if (!(await this.o.storage.oauth.removeProvider(name))) throw new BifrostError("OAUTH_PROVIDER_NOT_FOUND", `there is no OAuth provider "${name}"`);
  }

  /** The troubleshooting checklist for `org`'s connection (its own, else the global one). */
  async diagnose(name: string, org: string | null): Promise<Diagnosis> {
    const record = await this.o.storage.oauth.getProvider(name);
    if (!record) throw new BifrostError("OAUTH_PROVIDER_NOT_FOUND", `there is no OAuth provider "${name}"`);
    const conn = await this.connections.resolve(name, org);
    const entity = conn?.entityId ?? this.connections.entityFor(record, org, null);
    const filled = (template: string | null) => {
      if (template === null) return null;
      try {
        return template.includes("{entity_id}") && entity === null ? null : template.replaceAll("{entity_id}", encodeURIComponent(entity ?? ""));
      } catch {
        return null;
      }
    };
    return diagnose({
      provider: providerView(record, this.o.publicUrl),
      clientSecret: openClientSecret(this.o.secrets, record),
      org,
      connection: conn && this.connections.view(conn),
      env: this.env,
      now: this.o.now(),
      refreshSkewMs: this.connections.refreshSkew,
      urls: { authorization: filled(record.authorizationUrl), token: filled(record.tokenUrl) },
      probe: this.o.probe ?? probeUrl,
    });
  }
}
