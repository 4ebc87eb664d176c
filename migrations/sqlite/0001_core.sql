-- Core schema, the SQLite twin of migrations/postgres/0001_core.sql.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE dispatch_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO dispatch_meta (key, value) VALUES ('subscriptions_version', 1);

CREATE TABLE subscriptions (
    id                         TEXT PRIMARY KEY,
    url                        TEXT NOT NULL,
    event_types                TEXT NOT NULL,
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at INTEGER,
    headers                    TEXT NOT NULL,
    rate_limit                 INTEGER,
    max_attempts               INTEGER NOT NULL,
    retry_initial_delay_ms     INTEGER NOT NULL,
    retry_multiplier           REAL NOT NULL,
    retry_max_delay_ms         INTEGER NOT NULL,
    timeout_ms                 INTEGER NOT NULL,
    plugins                    TEXT NOT NULL,
    status                     TEXT NOT NULL DEFAULT 'active',
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    type            TEXT NOT NULL,
    source          TEXT,
    data            TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    created_at      INTEGER NOT NULL
);

CREATE TABLE deliveries (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id          TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    subscription_id   TEXT,
    dest_url          TEXT,
    dest_method       TEXT,
    dest_headers      TEXT,
    dest_secret       TEXT,
    body              TEXT,
    state             TEXT NOT NULL,
    run               INTEGER NOT NULL DEFAULT 1,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    next_attempt_at   INTEGER NOT NULL,
    lease_expires_at  INTEGER,
    leased_by         TEXT,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    delivered_at      INTEGER,
    UNIQUE (event_id, subscription_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE state IN ('pending', 'scheduled');
CREATE INDEX deliveries_leased ON deliveries (lease_expires_at)
    WHERE state = 'in_flight';
CREATE INDEX deliveries_state ON deliveries (state, updated_at);
CREATE INDEX deliveries_subscription ON deliveries (subscription_id);

CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    run              INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    url              TEXT NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    duration_ms      INTEGER NOT NULL,
    response_body    TEXT,
    created_at       INTEGER NOT NULL,
    UNIQUE (delivery_id, run, attempt)
);
CREATE INDEX attempts_event ON attempts (event_id);
