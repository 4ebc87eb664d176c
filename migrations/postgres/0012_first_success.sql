-- A delivery's successful attempt is written on the delivery row, in the
-- completion's update that marks it delivered, instead of as a row of
-- `attempts`: one heap row and three index entries fewer for every
-- delivered event. Failed attempts, and late completions (a lease that had
-- expired), are still rows of `attempts`. A delivered row is final (only
-- dead deliveries are replayed), so each delivery holds at most one.
--
-- Readers (an event's attempts, the admin figures, the live tail) read
-- both. `ok_id` comes from the attempts' own sequence, so the tail's
-- cursor orders the two together. No index: the tail and the figures read
-- delivered rows through `deliveries_done` (by time).
ALTER TABLE deliveries
    ADD COLUMN ok_id BIGINT,
    ADD COLUMN ok_url TEXT,
    ADD COLUMN ok_duration_ms BIGINT,
    ADD COLUMN ok_response_body TEXT,
    ADD COLUMN ok_at BIGINT;
--
-- Upgrading: older nodes may keep running alongside; their successes are
-- rows of `attempts`, which every reader here still reads. Their own
-- readers do not see the successes newer nodes wrote on delivery rows.
