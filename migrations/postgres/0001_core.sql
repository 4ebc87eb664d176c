-- Core schema: subscriptions, events (and tasks, which are events with one
-- inline destination), deliveries (the queue) and attempts (the history).
-- Times are milliseconds since the Unix epoch (BIGINT), the same in both stores.

CREATE TABLE dispatch_meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
-- Bumped by every subscription change, in the same transaction; ingest checks
-- it so fan-out never uses a stale subscription list.
INSERT INTO dispatch_meta (key, value) VALUES ('subscriptions_version', 1);

CREATE TABLE subscriptions (
    id                         TEXT PRIMARY KEY,
    url                        TEXT NOT NULL,
    event_types                TEXT NOT NULL,          -- JSON array of patterns
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at BIGINT,
    headers                    TEXT NOT NULL,          -- JSON object
    rate_limit                 INTEGER,
    max_attempts               INTEGER NOT NULL,
    retry_initial_delay_ms     BIGINT NOT NULL,
    retry_multiplier           DOUBLE PRECISION NOT NULL,
    retry_max_delay_ms         BIGINT NOT NULL,
    timeout_ms                 BIGINT NOT NULL,
    plugins                    TEXT NOT NULL,          -- JSON array of names
    status                     TEXT NOT NULL DEFAULT 'active',
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,                     -- 'event' | 'task'
    type            TEXT NOT NULL,
    source          TEXT,
    data            TEXT NOT NULL,                     -- raw JSON, byte for byte
    idempotency_key TEXT UNIQUE,
    created_at      BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id                BIGSERIAL PRIMARY KEY,
    event_id          TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    subscription_id   TEXT,                            -- NULL for tasks
    -- Inline destination (tasks) or a stored rewritten request: when set,
    -- these win over the subscription's, so retries resend the same bytes.
    dest_url          TEXT,
    dest_method       TEXT,
    dest_headers      TEXT,
    dest_secret       TEXT,
    body              TEXT,
    state             TEXT NOT NULL,
    run               INTEGER NOT NULL DEFAULT 1,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    next_attempt_at   BIGINT NOT NULL,
    lease_expires_at  BIGINT,
    leased_by         TEXT,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    delivered_at      BIGINT,
    UNIQUE (event_id, subscription_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE state IN ('pending', 'scheduled');
CREATE INDEX deliveries_leased ON deliveries (lease_expires_at)
    WHERE state = 'in_flight';
CREATE INDEX deliveries_state ON deliveries (state, updated_at);
CREATE INDEX deliveries_subscription ON deliveries (subscription_id);

CREATE TABLE attempts (
    id               BIGSERIAL PRIMARY KEY,
    delivery_id      BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    run              INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    url              TEXT NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    duration_ms      BIGINT NOT NULL,
    response_body    TEXT,
    created_at       BIGINT NOT NULL,
    UNIQUE (delivery_id, run, attempt)
);
CREATE INDEX attempts_event ON attempts (event_id);

-- The queue table churns: vacuum it eagerly so dead tuples do not pile up.
ALTER TABLE deliveries SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 20000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.05
);

-- The database's clock, in the schema's unit. Leases and schedules use it so
-- that nodes with skewed clocks still agree on when a lease expires.
CREATE FUNCTION dispatch_now_ms() RETURNS BIGINT
    LANGUAGE SQL VOLATILE
    AS $$ SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT $$;
