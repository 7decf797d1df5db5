-- hostd.db: what one host runs. Times are Unix milliseconds, digests are
-- lowercase sha256 hex, versions are the N of vN.

CREATE TABLE apps (
    name      TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,             -- http | worker | job
    replicas  INTEGER NOT NULL,          -- wanted
    active    INTEGER,                   -- active release version, NULL when none
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL
);

CREATE TABLE releases (
    app       TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    digest    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    manifest  TEXT NOT NULL,             -- the Manifest as JSON
    created   INTEGER NOT NULL,
    by        TEXT NOT NULL,
    state     TEXT NOT NULL,             -- staged | active | superseded | failed | crashloop
    detail    TEXT,                      -- why it is failed / crashloop
    kept      INTEGER NOT NULL DEFAULT 1, -- precompiled code still on disk
    PRIMARY KEY (app, version)
);

-- Uploaded code, stored once per digest under artifacts/.
CREATE TABLE artifacts (
    digest    TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    form      TEXT NOT NULL,             -- module | component
    created   INTEGER NOT NULL
);

-- Cranelift output under cache/, keyed by artifact digest and the engine's
-- compatibility hash; a file whose sha256 does not match is never loaded.
CREATE TABLE compiled (
    digest     TEXT NOT NULL,
    engine     TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    compile_ms INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    PRIMARY KEY (digest, engine)
);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      INTEGER NOT NULL,
    key       TEXT NOT NULL,
    action    TEXT NOT NULL,
    app       TEXT,
    detail    TEXT NOT NULL
);
