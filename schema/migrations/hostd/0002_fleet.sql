-- A host that joins a fleet: which apps the gateway manages, and which
-- local actions the gateway has not heard of yet.

ALTER TABLE apps ADD COLUMN managed TEXT;          -- gateway name, NULL for local apps
ALTER TABLE audit ADD COLUMN reported INTEGER NOT NULL DEFAULT 1;
