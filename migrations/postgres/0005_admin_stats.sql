-- What GET /admin/stats counts from the database, so every node reports the
-- same figures: rates over the last minute need the creation times indexed.
CREATE INDEX events_created ON events (created_at);
CREATE INDEX attempts_created ON attempts (created_at);

-- Plugin call statistics, reported by each node once a second (absolute
-- counters since that node started); the admin API sums them.
CREATE TABLE plugin_stats (
    node        TEXT NOT NULL,
    name        TEXT NOT NULL,
    invocations BIGINT NOT NULL,
    errors      BIGINT NOT NULL,
    total_us    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (node, name)
);
