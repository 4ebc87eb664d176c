-- A counter of claims per delivery, the fencing token of a claim.
-- A delivery held by a node declared dead is handed back without using up
-- an attempt, so the next claim can carry the same attempt number as the
-- lost one; the claim number still differs, and the dead node's late
-- completion is fenced off by it. A constant default: no table rewrite.
ALTER TABLE deliveries ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
