//! Typed queries over `hostd.db`. Every function runs on the database thread
//! (through [`db::Db::call`]) and takes the connection it is given.
//!
//! The queries `gateway.db` runs alike (apps, releases, the audit trail)
//! are [`db::releases`] and [`db::audit`], re-exported here; this module
//! adds what only a host keeps: which gateway manages an app, releases
//! numbered by that gateway, uploaded and compiled code, and which audit
//! entries the gateway has not heard of yet.

use rusqlite::{Connection, OptionalExtension, params};
use schema::{AuditEntry, Manifest, Version};

use db::audit::{ENTRY_COLS, entry_from_row};
use db::releases::{APP_COLS, RELEASE_COLS, app_from_row, manifest_json};

pub use db::audit::tail as audit_tail;
pub use db::releases::{
    ReleaseRecord, activate, insert_release, release, releases, set_release_state, set_replicas,
};

/// A row of `apps`.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub name: String,
    pub kind: schema::AppKind,
    pub replicas: u32,
    pub active: Option<Version>,
    /// The gateway that manages this app, if it came from a fleet.
    pub managed: Option<String>,
}

/// The shared columns, then `managed`.
fn host_app_from_row(r: &db::Row) -> Result<AppRecord, db::SqlError> {
    let db::releases::AppRecord {
        name,
        kind,
        replicas,
        active,
    } = app_from_row(r)?;
    Ok(AppRecord {
        name,
        kind,
        replicas,
        active,
        managed: r.get(4)?,
    })
}

pub fn get_app(c: &Connection, name: &str) -> rusqlite::Result<Option<AppRecord>> {
    Ok(db::Sql::query_opt(
        c,
        &format!("SELECT {APP_COLS}, managed FROM apps WHERE name = ?1"),
        db::args![name],
    )?
    .map(|r| host_app_from_row(&r))
    .transpose()?)
}

pub fn list_apps(c: &Connection) -> rusqlite::Result<Vec<AppRecord>> {
    Ok(db::Sql::query(
        c,
        &format!("SELECT {APP_COLS}, managed FROM apps ORDER BY name"),
        &[],
    )?
    .iter()
    .map(host_app_from_row)
    .collect::<Result<_, _>>()?)
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
    let json = manifest_json(manifest)?;
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

/// Forgets `app` and its releases.
pub fn delete_app(c: &mut Connection, app: &str) -> rusqlite::Result<()> {
    db::releases::delete_app(c, app)?;
    Ok(())
}

/// Marks releases beyond the newest `keep` of `app` (never the active one)
/// as no longer kept; returns the digests still referenced by any kept
/// release of any app, so the caller can delete the rest from disk.
pub fn prune(c: &mut Connection, app: &str, keep: usize) -> rusqlite::Result<Vec<String>> {
    let tx = c.transaction()?;
    db::releases::unkeep_old(&*tx, Some(app), keep)?;
    let digests = db::releases::kept_digests(&*tx)?;
    tx.commit()?;
    Ok(digests)
}

/// Releases left `staged` by a crash mid-deploy never became active: fail them.
pub fn fail_interrupted_stages(c: &Connection) -> rusqlite::Result<usize> {
    Ok(db::releases::fail_interrupted_stages(c, "hostd")?)
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
pub fn audit(c: &Connection, e: &db::audit::Entry<'_>, reported: bool) -> rusqlite::Result<()> {
    c.execute(
        &format!("INSERT INTO audit ({ENTRY_COLS}, reported) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            e.time,
            e.key,
            e.action.as_str(),
            e.app,
            e.detail,
            e.refused,
            reported
        ],
    )?;
    Ok(())
}

/// Audit entries not yet reported to the gateway, oldest first, with their ids.
pub fn unreported(c: &Connection) -> rusqlite::Result<Vec<(i64, AuditEntry)>> {
    Ok(db::Sql::query(
        c,
        &format!("SELECT id, {ENTRY_COLS} FROM audit WHERE reported = 0 ORDER BY id"),
        &[],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, entry_from_row(r, 1)?)))
    .collect::<Result<_, db::SqlError>>()?)
}

pub fn mark_reported(c: &Connection, up_to: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE audit SET reported = 1 WHERE reported = 0 AND id <= ?1",
        [up_to],
    )?;
    Ok(())
}
