-- Live dispatchd nodes: each node's sweeper refreshes its row. Rate limits
-- are split between the nodes seen recently, and the admin API lists them.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
