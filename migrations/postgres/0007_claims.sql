-- A counter of claims per delivery, the fencing token of a claim.
--
-- Upgrading: stop every node of an older version before starting one of
-- this version. Older nodes beat their heartbeat only every sweep (10 s)
-- and fence completions without this column, so a new node would take
-- their deliveries for a dead node's and the old node could then write an
-- outcome over the new claim's.
-- A delivery held by a node declared dead is handed back without using up
-- an attempt, so the next claim can carry the same attempt number as the
-- lost one; the claim number still differs, and the dead node's late
-- completion is fenced off by it. A constant default: no table rewrite.
ALTER TABLE deliveries ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
-- How many times the delivery was handed back because its node died: the
-- first three cost no attempt; after that a hand-back uses one up, so a
-- delivery whose processing kills its node every time ends dead instead of
-- looping forever.
ALTER TABLE deliveries ADD COLUMN handbacks INTEGER NOT NULL DEFAULT 0;
