-- Tenants, their tokens, and the tenant and channels of subscriptions and
-- events: see migrations/postgres/0008_tenants.sql.
CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT,
    metadata   TEXT NOT NULL,
    rate_limit INTEGER,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

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

ALTER TABLE subscriptions ADD COLUMN tenant_id TEXT REFERENCES tenants (id);
ALTER TABLE subscriptions ADD COLUMN channels TEXT;
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, id);
ALTER TABLE events ADD COLUMN tenant_id TEXT;
ALTER TABLE events ADD COLUMN channels TEXT;

-- Fair claims: each endpoint's waiting deliveries in due order.
CREATE INDEX deliveries_lanes ON deliveries (subscription_id, next_attempt_at)
    WHERE state IN ('pending', 'scheduled');
