-- Records stored as segments: one row per run of an app's records (up to
-- 64 KiB or 2048 records, one writer commit at most), in the tunnel's
-- record encoding (schema::logbatch). A bulk read copies segments into
-- batches instead of reading a row per line; --since and --tail seek by
-- sequence number; the cap trims whole segments.
--
-- hostd moves the rows of log_records into segments (in Rust: the encoding
-- is binary) and drops log_records, in one transaction, when it opens a
-- store that still has them.
CREATE TABLE log_segments (
    app        TEXT NOT NULL,
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    min_time   INTEGER NOT NULL,   -- Unix ms: the earliest and latest record
    max_time   INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,   -- what the segment counts against the app's cap
    body       BLOB NOT NULL,
    PRIMARY KEY (app, first_seq)
);
