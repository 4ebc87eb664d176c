-- A transform plugin may change the event type the receiver sees; stored
-- with the rest of the transformed request (dest_url, ..., body).
ALTER TABLE deliveries ADD COLUMN dest_type TEXT;
