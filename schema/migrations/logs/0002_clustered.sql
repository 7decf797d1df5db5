-- Records clustered by (app, seq): a read of an app's records walks one
-- b-tree in order, instead of an index and then the table for every row.
CREATE TABLE log_records_clustered (
    app       TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    time      INTEGER NOT NULL,
    release   INTEGER,
    instance  TEXT NOT NULL,
    stream    TEXT NOT NULL,
    line      TEXT NOT NULL,
    partial   INTEGER NOT NULL DEFAULT 0,
    bytes     INTEGER NOT NULL,
    PRIMARY KEY (app, seq)
) WITHOUT ROWID;

INSERT INTO log_records_clustered (app, seq, time, release, instance, stream, line, partial, bytes)
    SELECT app, seq, time, release, instance, stream, line, partial, bytes FROM log_records;
DROP TABLE log_records;
ALTER TABLE log_records_clustered RENAME TO log_records;
