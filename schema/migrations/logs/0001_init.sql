-- logs.db: every line every instance wrote, bounded per app.

CREATE TABLE log_records (
    app       TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    time      INTEGER NOT NULL,
    release   INTEGER,
    instance  TEXT NOT NULL,
    stream    TEXT NOT NULL,
    line      TEXT NOT NULL,
    partial   INTEGER NOT NULL DEFAULT 0,
    bytes     INTEGER NOT NULL,          -- what the record counts against the app's cap
    PRIMARY KEY (app, seq)
);

-- Sequence numbers outlive the records (and the app): a reader resuming with
-- --since never sees a number twice.
CREATE TABLE log_apps (
    app       TEXT PRIMARY KEY,
    next_seq  INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
);
