import { BifrostError } from "../../common/errors.js";
import type { Storage, WebhookSecretRecord } from "../../storage/types.js";
import type { EngineEvents } from "../events.js";
import type { Logger } from "../logger.js";
import type { RegisteredWorkflow } from "../registry/registry.js";
import type { SecretBox } from "../secrets/key.js";
import { curlExample } from "./example.js";
import { newWebhookSecret, SIGNATURE_HEADER, verifySignature, type SignatureCheck } from "./signature.js";

export interface WebhookDeps {
  storage: Storage;
  secrets: SecretBox;
  events: EngineEvents;
  logger: Logger;
  now: () => number;
  publicUrl: string;
  /** The registered workflow of that name, as the engine sees it now (another process may have registered it). */
  lookup: (name: string) => Promise<RegisteredWorkflow | undefined>;
  /** The registered workflow as this process knows it, without asking storage. */
  known: (name: string) => RegisteredWorkflow | undefined;
}

/** What an admin sees of a workflow's webhook: the only place the secret is ever shown. */
export interface WebhookInfo {
  workflow: string;
  /** null: the org-less hook; else the hook of that org (its URL carries `?org=`). */
  org: string | null;
  url: string;
  header: string;
  secret: string;
  example: string;
  createdAt: number;
  rotatedAt: number | null;
  /** Until when the secret the last rotation replaced is still accepted (null: it is not). */
  previousValidUntil: number | null;
}

/** How long a rotated-out secret keeps working unless the rotation says otherwise. */
export const DEFAULT_ROTATION_GRACE_MS = 24 * 3_600_000;
/** The longest grace a rotation may give the old secret. */
export const MAX_ROTATION_GRACE_MS = 7 * 24 * 3_600_000;

/**
 * Webhook secrets: one per workflow that declares `webhook: true`, created when such a workflow is
 * first registered (or first asked for), kept sealed in storage, shown to admins, rotatable. A
 * secret stays with its workflow name until rotated, also across unregistering and registering again.
 */
export class Webhooks {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly deps: WebhookDeps) {
    deps.events.on("workflow:registered", ({ name }) => {
      if (!deps.known(name)?.definition.webhook) return;
      const creating = this.stored(name, null).then(
        () => undefined,
        (err: unknown) => deps.logger.error({ err, workflow: name }, "could not create the webhook secret; it is created when first used"),
      );
      this.pending.add(creating);
      void creating.finally(() => this.pending.delete(creating));
    });
  }

  /** Resolves once secrets of workflows registered so far are stored. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** The workflow, if it accepts webhooks; WEBHOOK_NOT_FOUND (the same for an unknown workflow) otherwise. */
  async requireWebhook(name: string): Promise<RegisteredWorkflow> {
    const workflow = await this.deps.lookup(name);
    if (workflow?.definition.webhook) return workflow;
    throw new BifrostError("WEBHOOK_NOT_FOUND", `No webhook for workflow "${name}": no registered workflow of that name declares webhook: true`, { details: { workflow: name } });
  }

  /**
   * Checks the signature against the secret of the workflow's hook for `org` (null: the org-less
   * hook), and against the one a rotation replaced while its grace lasts. An org's secret exists
   * once an admin asked for it: a call for an org without one is refused, and creates nothing.
   */
  async verify(name: string, body: Buffer, header: string | undefined, org: string | null = null): Promise<SignatureCheck> {
    await this.requireWebhook(name);
    const record = org === null ? await this.stored(name, null) : await this.deps.storage.webhookSecrets.get(name, org);
    // No secret for that org: checked against a throwaway one, so the caller hears the same reasons
    // (missing, garbled, mismatch) in the same time as for an org that has one.
    if (!record) return verifySignature(newWebhookSecret(), body, header);
    const check = verifySignature(this.open(record), body, header);
    if (check.ok || check.reason !== "mismatch" || record.previousSealed === null || (record.previousUntil ?? 0) <= this.deps.now()) return check;
    return verifySignature(this.deps.secrets.open(record.previousSealed, contextOf(name, org)), body, header);
  }

  /** The hook's secret for `org` (created for that org on first asking), with how to use it. */
  async info(name: string, org: string | null = null): Promise<WebhookInfo> {
    await this.requireWebhook(name);
    return this.view(await this.stored(name, org));
  }

  /**
   * Replaces the secret. The old one keeps working for `graceMs` (default a day) so that senders
   * can switch without refused calls; 0 ends it at once (a leaked secret).
   */
  async rotate(name: string, graceMs: number = DEFAULT_ROTATION_GRACE_MS, org: string | null = null): Promise<WebhookInfo> {
    if (!Number.isInteger(graceMs) || graceMs < 0 || graceMs > MAX_ROTATION_GRACE_MS) throw new BifrostError("VALIDATION_FAILED", "grace: a duration from 0 (the old secret stops working at once) to 7d");
    await this.requireWebhook(name);
    await this.stored(name, org);
    const now = this.deps.now();
    const replaced = await this.deps.storage.webhookSecrets.replace(name, org, this.seal(name, org, newWebhookSecret()), now, graceMs === 0 ? null : now + graceMs);
    if (!replaced) throw new BifrostError("INTERNAL", `the webhook secret of "${name}" disappeared while it was rotated`);
    this.deps.events.emit("webhook:secret", { workflow: name, reason: "rotated" });
    this.deps.logger.info({ workflow: name, org, graceMs }, "webhook secret rotated");
    return this.view(replaced);
  }

  /** The stored secret of the hook for `org`, created first if there is none yet. */
  private async stored(name: string, org: string | null): Promise<WebhookSecretRecord> {
    const existing = await this.deps.storage.webhookSecrets.get(name, org);
    if (existing) return existing;
    const createdAt = this.deps.now();
    const sealed = this.seal(name, org, newWebhookSecret());
    const record = await this.deps.storage.webhookSecrets.createIfAbsent({ workflow: name, org, sealed, createdAt });
    if (record.sealed === sealed) {
      this.deps.events.emit("webhook:secret", { workflow: name, reason: "created" });
      this.deps.logger.info({ workflow: name, org }, "webhook secret created");
    }
    return record;
  }

  private seal(name: string, org: string | null, secret: string): string {
    return this.deps.secrets.seal(secret, contextOf(name, org));
  }

  private open(record: WebhookSecretRecord): string {
    return this.deps.secrets.open(record.sealed, contextOf(record.workflow, record.org));
  }

  private view(record: WebhookSecretRecord): WebhookInfo {
    const secret = this.open(record);
    const url = `${this.deps.publicUrl}/api/hooks/${record.workflow}${record.org === null ? "" : `?org=${encodeURIComponent(record.org)}`}`;
    const previousValidUntil = record.previousSealed !== null && record.previousUntil !== null && record.previousUntil > this.deps.now() ? record.previousUntil : null;
    return { workflow: record.workflow, org: record.org, url, header: SIGNATURE_HEADER, secret, example: curlExample(url, secret), createdAt: record.createdAt, rotatedAt: record.rotatedAt, previousValidUntil };
  }
}

/**
 * Bound into each sealed secret: a sealed value copied to another workflow's (or org's) row does
 * not open. The org-less hook keeps the context its secrets were sealed with before orgs had hooks.
 */
function contextOf(name: string, org: string | null): string {
  return org === null ? `webhook_secret:${name}` : `webhook_secret:${name}:org:${org}`;
}
