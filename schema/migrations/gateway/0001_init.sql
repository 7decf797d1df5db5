-- gateway.db: the desired state of a fleet. Times are Unix milliseconds,
-- digests lowercase sha256 hex, versions the N of vN.

-- Who may connect, and as what.
CREATE TABLE keys (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,           -- host | operator | viewer
    public_key  TEXT NOT NULL,           -- OpenSSH line: "ssh-ed25519 AAAA... comment"
    fingerprint TEXT NOT NULL UNIQUE,    -- SHA256:...
    added       INTEGER NOT NULL
);

CREATE TABLE hosts (
    name       TEXT PRIMARY KEY,
    key        TEXT NOT NULL,            -- the key name it authenticated with
    arch       TEXT NOT NULL,
    engine     TEXT NOT NULL,
    labels     TEXT NOT NULL,            -- JSON object
    cpus       INTEGER NOT NULL,
    memory     INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);

CREATE TABLE apps (
    name      TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    replicas  INTEGER NOT NULL,
    active    INTEGER,
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL
);

CREATE TABLE releases (
    app       TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    digest    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    manifest  TEXT NOT NULL,             -- JSON
    created   INTEGER NOT NULL,
    by        TEXT NOT NULL,
    state     TEXT NOT NULL,             -- staged | active | superseded | failed | crashloop
    detail    TEXT,
    PRIMARY KEY (app, version)
);

CREATE TABLE artifacts (
    digest    TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    created   INTEGER NOT NULL
);

-- Where an app's replicas run: the fleet's answer to "place N replicas".
CREATE TABLE placements (
    app       TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    host      TEXT NOT NULL,
    replicas  INTEGER NOT NULL,
    PRIMARY KEY (app, host)
);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      INTEGER NOT NULL,
    key       TEXT NOT NULL,
    action    TEXT NOT NULL,
    app       TEXT,
    detail    TEXT NOT NULL
);
