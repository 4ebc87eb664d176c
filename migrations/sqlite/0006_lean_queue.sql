-- A leaner queue, the SQLite side of migrations/postgres/0006_lean_queue.sql.
-- SQLite rewrites an index entry only when a column the index names
-- changes, so (state, updated_at) was rewritten by every claim and every
-- completion. Pruning and the latency figures only read finished rows: a
-- partial index that a row enters once, when it finishes, serves them.
DROP INDEX deliveries_state;
CREATE INDEX deliveries_done ON deliveries (updated_at)
    WHERE state IN ('delivered', 'dropped');

-- An event's attempts are read through its deliveries.
DROP INDEX attempts_event;
