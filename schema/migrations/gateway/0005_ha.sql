-- Several gateways on one database (PostgreSQL): one is active, holding
-- the lease, renewed before `until_ms` (the database's clock, Unix ms);
-- the others are standby until it lapses. `epoch` grows at every change
-- of holder. One row at most.
CREATE TABLE gateway_lease (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    holder   TEXT NOT NULL,           -- the holding gateway's name
    address  TEXT NOT NULL,           -- where operators and hosts reach it
    since_ms INTEGER NOT NULL,        -- when it took the lease
    until_ms INTEGER NOT NULL,        -- the lease lapses then, unless renewed
    epoch    INTEGER NOT NULL
);

-- Artifacts' bytes, when the store keeps them (PostgreSQL): every gateway
-- reads a release's artifact from the database, so a standby that takes
-- over has them all. On SQLite they stay files in DATA/artifacts.
CREATE TABLE artifact_blobs (
    digest TEXT PRIMARY KEY,
    bytes  BLOB NOT NULL
);
