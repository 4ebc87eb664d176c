-- Ordered delivery per key. An event may carry an ordering_key; a
-- subscription with ordering 'per_key' receives the events of one key one
-- at a time, in the order they were accepted.
--
-- Each (subscription, key) has a row in ordering_keys: the last sequence
-- number handed out (by the committing transaction, under the row's lock,
-- so two group commits never swap two events of one key) and, under
-- ordering_on_dead 'block', the dead head that stops the key.
--
-- Only the key's head is ever claimable: the deliveries behind it wait in
-- state 'held', which no claim reads. When the head leaves the line
-- (delivered, dropped, dead), the transaction that moved it locks the key
-- row and lets the next held delivery go. Unordered deliveries never enter
-- ordering_keys or the indexes below: their claims and completions are as
-- before.
ALTER TABLE subscriptions ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE subscriptions ADD COLUMN ordering_on_dead TEXT NOT NULL DEFAULT 'skip';
ALTER TABLE events ADD COLUMN ordering_key TEXT;
-- Set only on deliveries of a per_key subscription (and a keyed event).
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN order_seq BIGINT;

CREATE TABLE ordering_keys (
    subscription_id TEXT NOT NULL,
    ordering_key    TEXT NOT NULL,
    last_seq        BIGINT NOT NULL,
    blocked_by      BIGINT,                            -- a dead head's delivery id
    PRIMARY KEY (subscription_id, ordering_key)
);
CREATE INDEX ordering_keys_blocked ON ordering_keys (blocked_by)
    WHERE blocked_by IS NOT NULL;

-- A key's line: its held deliveries in sequence (the next to go is the
-- first entry), and whether one of it is out (pending, scheduled, in
-- flight or parked): two partial indexes, so each check is one probe
-- however long the line. Finished rows leave both.
CREATE INDEX deliveries_held ON deliveries (subscription_id, ordering_key, order_seq)
    WHERE ordering_key IS NOT NULL AND state = 'held';
CREATE INDEX deliveries_out ON deliveries (subscription_id, ordering_key)
    WHERE ordering_key IS NOT NULL
      AND state IN ('pending', 'scheduled', 'in_flight', 'paused');
