-- The event-type catalogue and the outbox of operational events.
--
-- event_types: the documented types producers may send, each with an
-- optional JSON Schema for the event's data (checked at ingest). A change
-- bumps dispatch_meta's catalogue_version; every node polls it and
-- reloads its compiled schemas when it moves.
CREATE TABLE event_types (
    name        TEXT PRIMARY KEY,
    description TEXT,
    schema      TEXT,                                  -- JSON, draft 2020-12
    deprecated  BOOLEAN NOT NULL DEFAULT FALSE,
    example     TEXT,                                  -- JSON
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
INSERT INTO dispatch_meta (key, value) VALUES ('catalogue_version', 1);

-- What dispatchd must tell subscribers of dispatch.* about: written by the
-- triggers below in the transaction that made it happen (so no path that
-- kills a delivery or moves a circuit can forget it, and nothing is lost
-- in a crash), turned into ordinary events by each node's emitter, then
-- deleted. The event's id derives from seq, so two nodes emitting the same
-- row store one event.
CREATE TABLE operational_outbox (
    seq             BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,                     -- the event type
    subscription_id TEXT NOT NULL,
    tenant_id       TEXT,
    event_id        TEXT,
    event_type      TEXT,
    attempts        INTEGER,
    detail          TEXT,
    created_at      BIGINT NOT NULL
);

-- A delivery of an ordinary event to a subscription that still exists
-- became dead. Deliveries of operational events never produce one (no
-- loops); the event's tenant is the report's, so it reaches that tenant's
-- subscribers only. substr, not LIKE: SQLite's LIKE ignores case.
CREATE FUNCTION dispatch_outbox_dead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO operational_outbox (kind, subscription_id, tenant_id, event_id, event_type,
                                    attempts, detail, created_at)
    SELECT 'dispatch.delivery.dead', NEW.subscription_id, e.tenant_id, NEW.event_id, e.type,
           NEW.attempts, NEW.last_error, dispatch_now_ms()
    FROM events e JOIN subscriptions s ON s.id = NEW.subscription_id
    WHERE e.id = NEW.event_id AND substr(e.type, 1, 9) <> 'dispatch.';
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_dead_outbox AFTER UPDATE OF state ON deliveries
    FOR EACH ROW
    WHEN (NEW.state = 'dead' AND OLD.state <> 'dead' AND NEW.subscription_id IS NOT NULL)
    EXECUTE FUNCTION dispatch_outbox_dead();

-- An endpoint was disabled, or its circuit opened or closed. The
-- emitter never sends a report to the subscription it is about, so a
-- failing subscriber of dispatch.* is not fed reports of its own failures.
CREATE FUNCTION dispatch_outbox_endpoint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'disabled' AND OLD.status <> 'disabled' THEN
        INSERT INTO operational_outbox (kind, subscription_id, tenant_id, detail, created_at)
        VALUES ('dispatch.endpoint.disabled', NEW.id, NEW.tenant_id, NEW.disabled_reason,
                dispatch_now_ms());
    END IF;
    IF NEW.circuit_state = 'open' AND OLD.circuit_state = 'closed' THEN
        INSERT INTO operational_outbox (kind, subscription_id, tenant_id, attempts, created_at)
        VALUES ('dispatch.endpoint.circuit_opened', NEW.id, NEW.tenant_id,
                NEW.consecutive_failures, dispatch_now_ms());
    END IF;
    IF NEW.circuit_state = 'closed' AND OLD.circuit_state <> 'closed' THEN
        INSERT INTO operational_outbox (kind, subscription_id, tenant_id, created_at)
        VALUES ('dispatch.endpoint.circuit_closed', NEW.id, NEW.tenant_id, dispatch_now_ms());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER subscriptions_endpoint_outbox AFTER UPDATE OF status, circuit_state
    ON subscriptions FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status
          OR NEW.circuit_state IS DISTINCT FROM OLD.circuit_state)
    EXECUTE FUNCTION dispatch_outbox_endpoint();
