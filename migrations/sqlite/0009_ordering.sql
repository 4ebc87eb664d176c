-- Ordered delivery per key: see migrations/postgres/0009_ordering.sql.
ALTER TABLE subscriptions ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE subscriptions ADD COLUMN ordering_on_dead TEXT NOT NULL DEFAULT 'skip';
ALTER TABLE events ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN order_seq BIGINT;

CREATE TABLE ordering_keys (
    subscription_id TEXT NOT NULL,
    ordering_key    TEXT NOT NULL,
    last_seq        BIGINT NOT NULL,
    blocked_by      BIGINT,
    PRIMARY KEY (subscription_id, ordering_key)
);
CREATE INDEX ordering_keys_blocked ON ordering_keys (blocked_by)
    WHERE blocked_by IS NOT NULL;

CREATE INDEX deliveries_held ON deliveries (subscription_id, ordering_key, order_seq)
    WHERE ordering_key IS NOT NULL AND state = 'held';
CREATE INDEX deliveries_out ON deliveries (subscription_id, ordering_key)
    WHERE ordering_key IS NOT NULL
      AND state IN ('pending', 'scheduled', 'in_flight', 'paused');
