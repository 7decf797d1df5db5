-- The gateway lets go of old releases' artifacts (`serve --keep-releases`):
-- a release not kept stays in the history, but its artifact is gone.
ALTER TABLE releases ADD COLUMN kept INTEGER NOT NULL DEFAULT 1;
