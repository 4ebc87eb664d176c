-- The event-type catalogue and the outbox of operational events: see
-- migrations/postgres/0010_catalogue.sql. SQLite's triggers have no IF, so
-- each case is its own trigger.
CREATE TABLE event_types (
    name        TEXT PRIMARY KEY,
    description TEXT,
    schema      TEXT,
    deprecated  BOOLEAN NOT NULL DEFAULT FALSE,
    example     TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
INSERT INTO dispatch_meta (key, value) VALUES ('catalogue_version', 1);

CREATE TABLE operational_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    tenant_id       TEXT,
    event_id        TEXT,
    event_type      TEXT,
    attempts        INTEGER,
    detail          TEXT,
    created_at      INTEGER NOT NULL
);

CREATE TRIGGER deliveries_dead_outbox AFTER UPDATE OF state ON deliveries
    WHEN NEW.state = 'dead' AND OLD.state <> 'dead' AND NEW.subscription_id IS NOT NULL
BEGIN
    INSERT INTO operational_outbox (kind, subscription_id, tenant_id, event_id, event_type,
                                    attempts, detail, created_at)
    SELECT 'dispatch.delivery.dead', NEW.subscription_id, e.tenant_id, NEW.event_id, e.type,
           NEW.attempts, NEW.last_error,
           CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM events e JOIN subscriptions s ON s.id = NEW.subscription_id
    WHERE e.id = NEW.event_id AND substr(e.type, 1, 9) <> 'dispatch.';
END;

CREATE TRIGGER subscriptions_disabled_outbox AFTER UPDATE OF status ON subscriptions
    WHEN NEW.status = 'disabled' AND OLD.status <> 'disabled'
BEGIN
    INSERT INTO operational_outbox (kind, subscription_id, tenant_id, detail, created_at)
    VALUES ('dispatch.endpoint.disabled', NEW.id, NEW.tenant_id, NEW.disabled_reason,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER subscriptions_opened_outbox AFTER UPDATE OF circuit_state ON subscriptions
    WHEN NEW.circuit_state = 'open' AND OLD.circuit_state = 'closed'
BEGIN
    INSERT INTO operational_outbox (kind, subscription_id, tenant_id, attempts, created_at)
    VALUES ('dispatch.endpoint.circuit_opened', NEW.id, NEW.tenant_id, NEW.consecutive_failures,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER subscriptions_closed_outbox AFTER UPDATE OF circuit_state ON subscriptions
    WHEN NEW.circuit_state = 'closed' AND OLD.circuit_state <> 'closed'
BEGIN
    INSERT INTO operational_outbox (kind, subscription_id, tenant_id, created_at)
    VALUES ('dispatch.endpoint.circuit_closed', NEW.id, NEW.tenant_id,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
