-- How deliveries leave for an endpoint beyond its URL and headers: the
-- signature scheme (v1, v1a, v1+v1a), its ed25519 keys, and the
-- credentials presented (basic auth). One JSON column, NULL for the
-- defaults (v1, no credentials); its secrets are as write-only as
-- `secret` (masked by the API, never logged). store/egress reads it,
-- refusing a field this version does not know.
ALTER TABLE subscriptions ADD COLUMN egress TEXT;
