-- A counter of claims per delivery, the fencing token of a claim: see
-- migrations/postgres/0007_claims.sql.
ALTER TABLE deliveries ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
