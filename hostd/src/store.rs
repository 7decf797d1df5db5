//! Typed queries over `hostd.db`. Every function runs on the database thread
//! (through [`db::Db::call`]) and takes the connection it is given.

use rusqlite::{Connection, OptionalExtension, params};
use schema::{AppKind, AuditEntry, Manifest, ReleaseRow, ReleaseState, Version};

/// A row of `apps`.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub name: String,
    pub kind: AppKind,
    pub replicas: u32,
    pub active: Option<Version>,
    /// The gateway that manages this app, if it came from a fleet.
    pub managed: Option<String>,
}

/// A row of `releases`.
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

fn conv<T, E: std::fmt::Display>(r: Result<T, E>, col: usize) -> rusqlite::Result<T> {
    r.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    })
}

fn app_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AppRecord> {
    Ok(AppRecord {
        name: r.get(0)?,
        kind: conv(r.get::<_, String>(1)?.parse(), 1)?,
        replicas: r.get(2)?,
        active: r.get::<_, Option<u32>>(3)?.map(Version),
        managed: r.get(4)?,
    })
}

pub fn get_app(c: &Connection, name: &str) -> rusqlite::Result<Option<AppRecord>> {
    c.query_row(
        "SELECT name, kind, replicas, active, managed FROM apps WHERE name = ?1",
        [name],
        app_from_row,
    )
    .optional()
}

pub fn list_apps(c: &Connection) -> rusqlite::Result<Vec<AppRecord>> {
    let mut q =
        c.prepare_cached("SELECT name, kind, replicas, active, managed FROM apps ORDER BY name")?;
    q.query_map([], app_from_row)?.collect()
}

const RELEASE_COLS: &str = "app, version, digest, kind, manifest, created, by, state, detail, kept";

fn release_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReleaseRecord> {
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

/// Every release of `app`, newest first.
pub fn releases(c: &Connection, app: &str) -> rusqlite::Result<Vec<ReleaseRecord>> {
    let mut q = c.prepare_cached(&format!(
        "SELECT {RELEASE_COLS} FROM releases WHERE app = ?1 ORDER BY version DESC"
    ))?;
    q.query_map([app], release_from_row)?.collect()
}

pub fn release(c: &Connection, app: &str, v: Version) -> rusqlite::Result<Option<ReleaseRecord>> {
    c.query_row(
        &format!("SELECT {RELEASE_COLS} FROM releases WHERE app = ?1 AND version = ?2"),
        params![app, v.0],
        release_from_row,
    )
    .optional()
}

/// Records a new staged release (creating the app on its first deploy) and
/// returns its version. One transaction: a crash leaves either nothing or a
/// staged release, which the next start marks failed.
pub fn insert_release(
    c: &mut Connection,
    manifest: &Manifest,
    digest: &str,
    by: &str,
    replicas: u32,
    now: i64,
) -> rusqlite::Result<Version> {
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO apps (name, kind, replicas, active, created, updated) VALUES (?1, ?2, ?3, NULL, ?4, ?4)
         ON CONFLICT(name) DO NOTHING",
        params![manifest.name, manifest.kind.as_str(), replicas, now],
    )?;
    let v: u32 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app = ?1",
        [&manifest.name],
        |r| r.get(0),
    )?;
    let json = serde_json::to_string(manifest)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.execute(
        &format!("INSERT INTO releases ({RELEASE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'staged', NULL, 1)"),
        params![manifest.name, v, digest, manifest.kind.as_str(), json, now, by],
    )?;
    tx.commit()?;
    Ok(Version(v))
}

/// Records release `version` of an app as the gateway numbered it, staged,
/// and marks the app as managed by `gateway`. Staging the same release again
/// (a retried deploy) refreshes it.
#[allow(clippy::too_many_arguments)]
pub fn insert_release_at(
    c: &mut Connection,
    manifest: &Manifest,
    version: Version,
    digest: &str,
    by: &str,
    gateway: &str,
    replicas: u32,
    now: i64,
) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO apps (name, kind, replicas, active, created, updated, managed) VALUES (?1, ?2, ?3, NULL, ?4, ?4, ?5)
         ON CONFLICT(name) DO UPDATE SET managed = excluded.managed",
        params![manifest.name, manifest.kind.as_str(), replicas, now, gateway],
    )?;
    let json = serde_json::to_string(manifest)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.execute(
        &format!(
            "INSERT INTO releases ({RELEASE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'staged', NULL, 1)
             ON CONFLICT(app, version) DO UPDATE SET digest = excluded.digest, kind = excluded.kind,
               manifest = excluded.manifest, kept = 1,
               state = CASE WHEN releases.state = 'active' THEN 'active' ELSE 'staged' END"
        ),
        params![manifest.name, version.0, digest, manifest.kind.as_str(), json, now, by],
    )?;
    tx.commit()
}

/// Makes `v` the active release of `app` with `replicas`; the previously
/// active release becomes superseded. Returns the previous active version.
pub fn activate(
    c: &mut Connection,
    app: &str,
    v: Version,
    kind: AppKind,
    replicas: u32,
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
    tx.commit()?;
    Ok(prev.map(Version))
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

pub fn set_replicas(c: &Connection, app: &str, replicas: u32, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE apps SET replicas = ?2, updated = ?3 WHERE name = ?1",
        params![app, replicas, now],
    )?;
    Ok(())
}

pub fn delete_app(c: &mut Connection, app: &str) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    tx.execute("DELETE FROM releases WHERE app = ?1", [app])?;
    tx.execute("DELETE FROM apps WHERE name = ?1", [app])?;
    tx.commit()
}

/// Marks releases beyond the newest `keep` of `app` (never the active one)
/// as no longer kept; returns the digests still referenced by any kept
/// release of any app, so the caller can delete the rest from disk.
pub fn prune(c: &mut Connection, app: &str, keep: usize) -> rusqlite::Result<Vec<String>> {
    let tx = c.transaction()?;
    tx.execute(
        "UPDATE releases SET kept = 0 WHERE app = ?1 AND kept = 1 AND state != 'active' AND version NOT IN
           (SELECT version FROM releases WHERE app = ?1 ORDER BY version DESC LIMIT ?2)",
        params![app, keep as i64],
    )?;
    let digests = {
        let mut q = tx.prepare("SELECT DISTINCT digest FROM releases WHERE kept = 1")?;
        q.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?
    };
    tx.commit()?;
    Ok(digests)
}

/// Releases left `staged` by a crash mid-deploy never became active: fail them.
pub fn fail_interrupted_stages(c: &Connection) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE releases SET state = 'failed', detail = 'interrupted by a hostd restart before it became active'
         WHERE state = 'staged'",
        [],
    )
}

pub fn record_artifact(
    c: &Connection,
    digest: &str,
    size: u64,
    form: &str,
    now: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO artifacts (digest, size, form, created) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(digest) DO NOTHING",
        params![digest, size as i64, form, now],
    )?;
    Ok(())
}

/// The recorded checksum of a compiled file, if one is recorded.
pub fn compiled_sha(
    c: &Connection,
    digest: &str,
    engine: &str,
) -> rusqlite::Result<Option<String>> {
    c.query_row(
        "SELECT sha256 FROM compiled WHERE digest = ?1 AND engine = ?2",
        params![digest, engine],
        |r| r.get(0),
    )
    .optional()
}

pub fn record_compiled(
    c: &Connection,
    digest: &str,
    engine: &str,
    sha: &str,
    size: u64,
    ms: u64,
    now: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO compiled (digest, engine, sha256, size, compile_ms, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(digest, engine) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,
           compile_ms = excluded.compile_ms, created = excluded.created",
        params![digest, engine, sha, size as i64, ms as i64, now],
    )?;
    Ok(())
}

/// Forgets artifacts and compiled code whose digest is not in `keep`;
/// returns the forgotten digests.
pub fn forget_artifacts_except(
    c: &mut Connection,
    keep: &[String],
) -> rusqlite::Result<Vec<String>> {
    let tx = c.transaction()?;
    let all: Vec<String> = {
        let mut q = tx.prepare("SELECT digest FROM artifacts UNION SELECT digest FROM compiled")?;
        q.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let gone: Vec<String> = all.into_iter().filter(|d| !keep.contains(d)).collect();
    for d in &gone {
        tx.execute("DELETE FROM artifacts WHERE digest = ?1", [d])?;
        tx.execute("DELETE FROM compiled WHERE digest = ?1", [d])?;
    }
    tx.commit()?;
    Ok(gone)
}

/// Records an audit entry. `reported` is false for actions a gateway must
/// still hear about (a local rollback of a managed app).
pub fn audit(
    c: &Connection,
    time: i64,
    key: &str,
    action: &str,
    app: Option<&str>,
    detail: &str,
    reported: bool,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit (time, key, action, app, detail, reported) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![time, key, action, app, detail, reported],
    )?;
    Ok(())
}

/// Audit entries not yet reported to the gateway, oldest first, with their ids.
pub fn unreported(c: &Connection) -> rusqlite::Result<Vec<(i64, AuditEntry)>> {
    let mut q = c.prepare_cached(
        "SELECT id, time, key, action, app, detail FROM audit WHERE reported = 0 ORDER BY id",
    )?;
    q.query_map([], |r| {
        Ok((
            r.get(0)?,
            AuditEntry {
                time: schema::time::rfc3339(r.get(1)?),
                key: r.get(2)?,
                action: r.get(3)?,
                app: r.get(4)?,
                detail: r.get(5)?,
            },
        ))
    })?
    .collect()
}

pub fn mark_reported(c: &Connection, up_to: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE audit SET reported = 1 WHERE reported = 0 AND id <= ?1",
        [up_to],
    )?;
    Ok(())
}

/// The last `tail` audit entries, oldest first.
pub fn audit_tail(c: &Connection, tail: u64) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut q = c.prepare_cached(
        "SELECT time, key, action, app, detail FROM
           (SELECT id, time, key, action, app, detail FROM audit ORDER BY id DESC LIMIT ?1)
         ORDER BY id",
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
