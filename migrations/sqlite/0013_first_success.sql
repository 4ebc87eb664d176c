-- A delivery's successful attempt is written on the delivery row, as on
-- PostgreSQL (see migrations/postgres/0012_first_success.sql). `ok_id` is
-- taken from the attempts' AUTOINCREMENT counter (`sqlite_sequence`), so
-- the live tail orders both kinds of attempt by one id.
ALTER TABLE deliveries ADD COLUMN ok_id INTEGER;
ALTER TABLE deliveries ADD COLUMN ok_url TEXT;
ALTER TABLE deliveries ADD COLUMN ok_duration_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN ok_response_body TEXT;
ALTER TABLE deliveries ADD COLUMN ok_at INTEGER;
