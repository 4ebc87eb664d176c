-- A counter of claims per delivery, the fencing token of a claim: see
-- migrations/postgres/0007_claims.sql.
ALTER TABLE deliveries ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
-- How many times the delivery was handed back because its node died: the
-- first three cost no attempt; after that a hand-back uses one up, so a
-- delivery whose processing kills its node every time ends dead instead of
-- looping forever.
ALTER TABLE deliveries ADD COLUMN handbacks INTEGER NOT NULL DEFAULT 0;
