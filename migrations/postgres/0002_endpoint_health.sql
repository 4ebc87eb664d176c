-- Endpoint health per subscription: the circuit breaker and why a
-- subscription was disabled. These change often, so they are not part of
-- the subscriptions version (routing does not depend on them: parked
-- deliveries are still created, as 'paused').

ALTER TABLE subscriptions ADD COLUMN circuit_state TEXT NOT NULL DEFAULT 'closed';
ALTER TABLE subscriptions ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
-- When the current failure streak first opened the circuit (auto-disable
-- counts from here).
ALTER TABLE subscriptions ADD COLUMN circuit_opened_at BIGINT;
ALTER TABLE subscriptions ADD COLUMN circuit_next_probe_at BIGINT;
ALTER TABLE subscriptions ADD COLUMN last_success_at BIGINT;
ALTER TABLE subscriptions ADD COLUMN disabled_reason TEXT;

CREATE INDEX deliveries_paused ON deliveries (subscription_id) WHERE state = 'paused';
CREATE INDEX deliveries_dead ON deliveries (updated_at, id) WHERE state = 'dead';
