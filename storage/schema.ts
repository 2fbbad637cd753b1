import type { Generated } from "kysely";

/** Kysely table types. JSON columns are TEXT holding JSON; times are epoch milliseconds. */
export interface WorkflowsTable {
  name: string;
  version: string;
  source_kind: string;
  file: string | null;
  source: string;
  code: string;
  source_map: string;
  meta: string;
  registered_at: number;
  updated_at: number;
}

/** A version's bundle, kept while it is current or a queued or running run needs it. */
export interface WorkflowVersionsTable {
  name: string;
  version: string;
  code: string;
  source_map: string;
  meta: string;
  created_at: number;
  source_kind: string;
  file: string | null;
  source: string;
}

export interface RunsTable {
  id: string;
  workflow: string;
  workflow_version: string | null;
  org: string | null;
  trigger: string;
  status: string;
  params: string | null;
  result: string | null;
  error: string | null;
  attempt: number;
  idempotency_key: string | null;
  queued_at: number;
  run_at: number;
  started_at: number | null;
  finished_at: number | null;
  scheduled_for: number | null;
  lease_owner: string | null;
  lease_until: number | null;
  /** Incremented by every claim: a fencing token, so writes of an owner that lost the run fail. */
  lease_token: Generated<number>;
  /** When a cancel was asked for while the run was running (0005_run_control). */
  cancel_requested_at: number | null;
  /** The run this one retries (0005_run_control). */
  retry_of: string | null;
}

export interface StepsTable {
  run_id: string;
  name: string;
  status: string;
  result: string | null;
  error: string | null;
  attempts: number;
  started_at: number;
  finished_at: number | null;
}

/** The size of each ctx.chunks call of a run (0010_chunk_progress). */
export interface RunChunksTable {
  run_id: string;
  name: string;
  total: number;
  started_at: number;
}

export interface LogsTable {
  run_id: string;
  seq: number;
  ts: number;
  level: number;
  msg: string;
  data: string | null;
  step: string | null;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  role: string;
  org: string | null;
  /** SHA-256 (hex) of the whole key; the key itself is never stored. */
  key_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface WebhookSecretsTable {
  workflow: string;
  /** "" = the org-less hook. */
  org: string;
  /** Sealed (engine/secrets/seal.ts), never the secret itself. */
  secret: string;
  created_at: number;
  rotated_at: number | null;
  /** Sealed: the secret the last rotation replaced, accepted until previous_until. */
  previous_secret: string | null;
  previous_until: number | null;
}

export interface SecretKeyCheckTable {
  id: string;
  fingerprint: string;
  created_at: number;
}

/** Schedule state per (workflow, org); org "" is "no org" (0007_schedules). */
export interface SchedulesTable {
  workflow: string;
  org: string;
  cron: string;
  timezone: string;
  next_fire_at: number | null;
  last_fire_at: number | null;
  last_run_id: string | null;
  /** 0 or 1 (portable across dialects). */
  paused: number;
  paused_at: number | null;
  pending_for: number | null;
  created_at: number;
  updated_at: number;
  changed_at: number;
}

export interface OAuthProvidersTable {
  name: string;
  grant_type: string;
  authorization_url: string | null;
  token_url: string;
  client_id: string;
  /** Sealed. */
  client_secret: string | null;
  scopes: string;
  redirect_uri: string | null;
  /** "client_secret_post" | "client_secret_basic". */
  client_auth: string;
  created_at: number;
  updated_at: number;
}

export interface OAuthConnectionsTable {
  provider: string;
  /** "" = the global connection. */
  org: string;
  entity_id: string | null;
  /** Sealed. */
  access_token: string | null;
  /** Sealed. */
  refresh_token: string | null;
  token_type: string | null;
  expires_at: number | null;
  scopes: string;
  status: string;
  connected_at: number | null;
  last_refresh_at: number | null;
  last_failure: string | null;
  failure_count: Generated<number>;
  next_retry_at: number | null;
  refresh_owner: string | null;
  refresh_until: number | null;
  generation: Generated<number>;
  created_at: number;
  updated_at: number;
}

export interface OAuthStatesTable {
  id: string;
  provider: string;
  org: string;
  entity_id: string | null;
  /** Sealed. */
  code_verifier: string;
  redirect_uri: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** ctx.state values per (workflow, org); org_key "" is "no org" (0009_workflow_state). */
export interface WorkflowStateTable {
  workflow: string;
  org_key: string;
  key: string;
  /** JSON text, bounded by the engine before it is written. */
  value: string;
  updated_at: number;
  /** The run whose ctx.state.set wrote it. */
  updated_by_run: string | null;
}

export interface Database {
  workflow_state: WorkflowStateTable;
  oauth_providers: OAuthProvidersTable;
  oauth_connections: OAuthConnectionsTable;
  oauth_states: OAuthStatesTable;
  schedules: SchedulesTable;
  webhook_secrets: WebhookSecretsTable;
  secret_key_check: SecretKeyCheckTable;
  api_keys: ApiKeysTable;
  workflows: WorkflowsTable;
  workflow_versions: WorkflowVersionsTable;
  runs: RunsTable;
  steps: StepsTable;
  run_chunks: RunChunksTable;
  logs: LogsTable;
}
