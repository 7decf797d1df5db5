//! Typed queries over `gateway.db`; each runs on the database thread.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use schema::{AppKind, AuditEntry, Manifest, ReleaseRow, ReleaseState, Version};

#[derive(Debug, Clone)]
pub struct AppRecord {
    pub name: String,
    pub kind: AppKind,
    pub replicas: u32,
    pub active: Option<Version>,
}

#[derive(Debug, Clone)]
pub struct ReleaseRecord {
    pub app: String,
    pub version: Version,
    pub digest: String,
    pub kind: AppKind,
    pub manifest: Manifest,
    pub created: i64,
    pub by: String,
    pub state: ReleaseState,
    pub detail: Option<String>,
    /// Whether the gateway still has its artifact (see [`prune`]).
    pub kept: bool,
}

impl ReleaseRecord {
    pub fn to_row(&self) -> ReleaseRow {
        ReleaseRow {
            app: self.app.clone(),
            version: self.version,
            digest: format!("sha256:{}", self.digest),
            created: schema::time::rfc3339(self.created),
            by: self.by.clone(),
            state: self.state,
            kind: self.kind,
            kept: self.kept,
            detail: self.detail.clone(),
        }
    }
}

/// A host as last recorded.
#[derive(Debug, Clone)]
pub struct HostRecord {
    pub name: String,
    pub key: String,
    pub arch: String,
    pub engine: String,
    pub labels: BTreeMap<String, String>,
    pub cpus: u32,
    pub memory: u64,
    pub last_seen: i64,
}

fn conv<T, E: std::fmt::Display>(r: Result<T, E>, col: usize) -> rusqlite::Result<T> {
    r.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    })
}

fn app_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AppRecord> {
    Ok(AppRecord {
        name: r.get(0)?,
        kind: conv(r.get::<_, String>(1)?.parse(), 1)?,
        replicas: r.get(2)?,
        active: r.get::<_, Option<u32>>(3)?.map(Version),
    })
}

pub fn get_app(c: &Connection, name: &str) -> rusqlite::Result<Option<AppRecord>> {
    c.query_row(
        "SELECT name, kind, replicas, active FROM apps WHERE name = ?1",
        [name],
        app_row,
    )
    .optional()
}

pub fn list_apps(c: &Connection) -> rusqlite::Result<Vec<AppRecord>> {
    let mut q = c.prepare_cached("SELECT name, kind, replicas, active FROM apps ORDER BY name")?;
    q.query_map([], app_row)?.collect()
}

const RELEASE_COLS: &str = "app, version, digest, kind, manifest, created, by, state, detail";
/// What a release is read with: its columns and whether it is kept.
const RELEASE_READ: &str = "app, version, digest, kind, manifest, created, by, state, detail, kept";

fn release_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReleaseRecord> {
    Ok(ReleaseRecord {
        app: r.get(0)?,
        version: Version(r.get(1)?),
        digest: r.get(2)?,
        kind: conv(r.get::<_, String>(3)?.parse(), 3)?,
        manifest: conv(serde_json::from_str(&r.get::<_, String>(4)?), 4)?,
        created: r.get(5)?,
        by: r.get(6)?,
        state: conv(r.get::<_, String>(7)?.parse(), 7)?,
        detail: r.get(8)?,
        kept: r.get(9)?,
    })
}

/// Releases of `app`, newest first.
pub fn releases(c: &Connection, app: &str) -> rusqlite::Result<Vec<ReleaseRecord>> {
    let mut q = c.prepare_cached(&format!(
        "SELECT {RELEASE_READ} FROM releases WHERE app = ?1 ORDER BY version DESC"
    ))?;
    q.query_map([app], release_row)?.collect()
}

pub fn release(c: &Connection, app: &str, v: Version) -> rusqlite::Result<Option<ReleaseRecord>> {
    c.query_row(
        &format!("SELECT {RELEASE_READ} FROM releases WHERE app = ?1 AND version = ?2"),
        params![app, v.0],
        release_row,
    )
    .optional()
}

/// A new staged release (creating the app on its first deploy); its version.
pub fn insert_release(
    c: &mut Connection,
    m: &Manifest,
    digest: &str,
    by: &str,
    replicas: u32,
    now: i64,
) -> rusqlite::Result<Version> {
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO apps (name, kind, replicas, active, created, updated) VALUES (?1, ?2, ?3, NULL, ?4, ?4)
         ON CONFLICT(name) DO NOTHING",
        params![m.name, m.kind.as_str(), replicas, now],
    )?;
    let v: u32 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app = ?1",
        [&m.name],
        |r| r.get(0),
    )?;
    let json = serde_json::to_string(m)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.execute(
        &format!("INSERT INTO releases ({RELEASE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'staged', NULL)"),
        params![m.name, v, digest, m.kind.as_str(), json, now, by],
    )?;
    tx.commit()?;
    Ok(Version(v))
}

/// Commits a switch: `v` active with `replicas` placed as `placement`; the
/// previous active release superseded. Returns the previous active version.
pub fn activate(
    c: &mut Connection,
    app: &str,
    v: Version,
    kind: AppKind,
    replicas: u32,
    placement: &BTreeMap<String, u32>,
    now: i64,
) -> rusqlite::Result<Option<Version>> {
    let tx = c.transaction()?;
    let prev: Option<u32> = tx
        .query_row("SELECT active FROM apps WHERE name = ?1", [app], |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    tx.execute(
        "UPDATE releases SET state = 'superseded' WHERE app = ?1 AND state IN ('active', 'staged') AND version != ?2",
        params![app, v.0],
    )?;
    tx.execute(
        "UPDATE releases SET state = 'active', detail = NULL WHERE app = ?1 AND version = ?2",
        params![app, v.0],
    )?;
    tx.execute(
        "UPDATE apps SET active = ?2, kind = ?3, replicas = ?4, updated = ?5 WHERE name = ?1",
        params![app, v.0, kind.as_str(), replicas, now],
    )?;
    set_placement_tx(&tx, app, placement)?;
    tx.commit()?;
    Ok(prev.map(Version))
}

fn set_placement_tx(
    tx: &Connection,
    app: &str,
    placement: &BTreeMap<String, u32>,
) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM placements WHERE app = ?1", [app])?;
    for (host, n) in placement {
        tx.execute(
            "INSERT INTO placements (app, host, replicas) VALUES (?1, ?2, ?3)",
            params![app, host, n],
        )?;
    }
    Ok(())
}

/// Records a new scale and its placement.
pub fn set_scale(
    c: &mut Connection,
    app: &str,
    replicas: u32,
    placement: &BTreeMap<String, u32>,
    now: i64,
) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    tx.execute(
        "UPDATE apps SET replicas = ?2, updated = ?3 WHERE name = ?1",
        params![app, replicas, now],
    )?;
    set_placement_tx(&tx, app, placement)?;
    tx.commit()
}

pub fn set_placement(
    c: &mut Connection,
    app: &str,
    placement: &BTreeMap<String, u32>,
) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    set_placement_tx(&tx, app, placement)?;
    tx.commit()
}

/// Every placement: app → host → replicas.
pub fn placements(c: &Connection) -> rusqlite::Result<BTreeMap<String, BTreeMap<String, u32>>> {
    let mut q = c.prepare_cached("SELECT app, host, replicas FROM placements")?;
    let mut out: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for row in q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, u32>(2)?,
        ))
    })? {
        let (a, h, n) = row?;
        out.entry(a).or_default().insert(h, n);
    }
    Ok(out)
}

pub fn set_release_state(
    c: &Connection,
    app: &str,
    v: Version,
    state: ReleaseState,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE releases SET state = ?3, detail = ?4 WHERE app = ?1 AND version = ?2",
        params![app, v.0, state.as_str(), detail],
    )?;
    Ok(())
}

pub fn delete_app(c: &mut Connection, app: &str) -> rusqlite::Result<usize> {
    let tx = c.transaction()?;
    let n = tx.execute("DELETE FROM releases WHERE app = ?1", [app])?;
    tx.execute("DELETE FROM placements WHERE app = ?1", [app])?;
    tx.execute("DELETE FROM apps WHERE name = ?1", [app])?;
    tx.commit()?;
    Ok(n)
}

/// Releases left staged by a gateway crash mid-deploy never became active.
pub fn fail_interrupted_stages(c: &Connection) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE releases SET state = 'failed', detail = 'interrupted by a gateway restart before it became active' WHERE state = 'staged'",
        [],
    )
}

/// Lets go of old releases' artifacts: every app keeps the artifacts of
/// its newest `keep` releases and of its active one; older releases stay
/// in the history, marked not kept. Returns the digests no kept release
/// uses any more, now forgotten, for the caller to delete from disk.
pub fn prune(c: &mut Connection, keep: usize) -> rusqlite::Result<Vec<String>> {
    let tx = c.transaction()?;
    tx.execute(
        "UPDATE releases SET kept = 0 WHERE kept = 1 AND state != 'active' AND version NOT IN
           (SELECT newer.version FROM releases AS newer WHERE newer.app = releases.app
            ORDER BY newer.version DESC LIMIT ?1)",
        [keep.max(1) as i64],
    )?;
    let gone: Vec<String> = {
        let mut q = tx.prepare(
            "SELECT digest FROM artifacts WHERE digest NOT IN (SELECT digest FROM releases WHERE kept = 1)",
        )?;
        q.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    tx.execute(
        "DELETE FROM artifacts WHERE digest NOT IN (SELECT digest FROM releases WHERE kept = 1)",
        [],
    )?;
    tx.commit()?;
    Ok(gone)
}

/// Every artifact the gateway has recorded.
pub fn artifact_digests(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut q = c.prepare("SELECT digest FROM artifacts")?;
    q.query_map([], |r| r.get(0))?.collect()
}

pub fn record_artifact(c: &Connection, digest: &str, size: u64, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO artifacts (digest, size, created) VALUES (?1, ?2, ?3) ON CONFLICT(digest) DO NOTHING",
        params![digest, size as i64, now],
    )?;
    Ok(())
}

pub fn upsert_host(c: &Connection, h: &HostRecord, now: i64) -> rusqlite::Result<()> {
    let labels = serde_json::to_string(&h.labels).unwrap_or_else(|_| "{}".into());
    c.execute(
        "INSERT INTO hosts (name, key, arch, engine, labels, cpus, memory, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT(name) DO UPDATE SET key = excluded.key, arch = excluded.arch, engine = excluded.engine,
           labels = excluded.labels, cpus = excluded.cpus, memory = excluded.memory, last_seen = excluded.last_seen",
        params![h.name, h.key, h.arch, h.engine, labels, h.cpus, h.memory as i64, now],
    )?;
    Ok(())
}

pub fn touch_host(c: &Connection, name: &str, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE hosts SET last_seen = ?2 WHERE name = ?1",
        params![name, now],
    )?;
    Ok(())
}

pub fn hosts(c: &Connection) -> rusqlite::Result<Vec<HostRecord>> {
    let mut q = c.prepare_cached(
        "SELECT name, key, arch, engine, labels, cpus, memory, last_seen FROM hosts ORDER BY name",
    )?;
    q.query_map([], |r| {
        Ok(HostRecord {
            name: r.get(0)?,
            key: r.get(1)?,
            arch: r.get(2)?,
            engine: r.get(3)?,
            labels: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
            cpus: r.get(5)?,
            memory: r.get::<_, i64>(6)? as u64,
            last_seen: r.get(7)?,
        })
    })?
    .collect()
}

pub fn audit(
    c: &Connection,
    time: i64,
    key: &str,
    action: &str,
    app: Option<&str>,
    detail: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit (time, key, action, app, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![time, key, action, app, detail],
    )?;
    Ok(())
}

pub fn audit_tail(c: &Connection, tail: u64) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut q = c.prepare_cached(
        "SELECT time, key, action, app, detail FROM
           (SELECT id, time, key, action, app, detail FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id",
    )?;
    q.query_map([tail.min(i64::MAX as u64) as i64], |r| {
        Ok(AuditEntry {
            time: schema::time::rfc3339(r.get(0)?),
            key: r.get(1)?,
            action: r.get(2)?,
            app: r.get(3)?,
            detail: r.get(4)?,
        })
    })?
    .collect()
}
