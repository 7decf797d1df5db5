-- Whether an audited action was refused: a flag the code decides on,
-- instead of the "refused: " prefix of the free-text detail.
ALTER TABLE audit ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
UPDATE audit SET refused = 1 WHERE detail LIKE 'refused%' OR action = 'auth';
