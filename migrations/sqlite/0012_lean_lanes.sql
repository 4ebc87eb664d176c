-- A delivery's endpoint is indexed only while the row waits (lanes,
-- paused, held: partial indexes), as on PostgreSQL since 0006. The full
-- index on subscription_id gave every delivery, delivered history
-- included, one more entry, written at a different place for each
-- endpoint: with deliveries spread over many endpoints (one per tenant)
-- each group commit dirtied a page per endpoint, and SQLite's WAL writes
-- whole pages.
DROP INDEX deliveries_subscription;
