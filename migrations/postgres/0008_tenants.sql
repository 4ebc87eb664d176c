-- Tenants: a producer's customers. An event with a tenant_id fans out only
-- to that tenant's subscriptions; one without, only to global ones
-- (tenant_id NULL), as before tenants existed. A subscription or event may
-- also name channels (a JSON array): a subscription with channels receives
-- only events carrying at least one of them.
CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT,
    metadata   TEXT NOT NULL,                          -- JSON object
    rate_limit INTEGER,                                -- events per second at ingest
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A tenant's API tokens, stored as the SHA-256 of the token: the token
-- itself is shown once, when it is made.
CREATE TABLE tenant_tokens (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    token_hash   TEXT NOT NULL UNIQUE,
    description  TEXT,
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX tenant_tokens_tenant ON tenant_tokens (tenant_id, id);

-- Subscriptions are not on the hot write path, so the tenant is a foreign
-- key; events are, so theirs is checked at ingest instead.
ALTER TABLE subscriptions ADD COLUMN tenant_id TEXT REFERENCES tenants (id);
ALTER TABLE subscriptions ADD COLUMN channels TEXT;
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, id);
ALTER TABLE events ADD COLUMN tenant_id TEXT;
ALTER TABLE events ADD COLUMN channels TEXT;

-- Fair claims walk the waiting deliveries endpoint by endpoint (each
-- endpoint's oldest due first): the index on subscription_id alone becomes
-- one on (subscription_id, next_attempt_at), with the same predicate, so
-- parking an endpoint still finds its rows and a row version costs no
-- extra index entry.
DROP INDEX deliveries_waiting;
CREATE INDEX deliveries_lanes ON deliveries (subscription_id, next_attempt_at)
    WHERE state IN ('pending', 'scheduled');
