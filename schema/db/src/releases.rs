//! Apps and their releases, as every cranefleet database that runs apps
//! keeps them: `hostd.db` (what one host runs) and `gateway.db` (what a
//! fleet should run) have the same `apps` and `releases` columns, so the
//! typed queries over them are written once, here, and both stores use
//! them. The SQL is written once for both backends ([`crate::sql`]): the
//! gateway runs these on SQLite or PostgreSQL, hostd on SQLite.
//!
//! What only one side keeps stays with it: hostd's `apps.managed` (the
//! gateway an app came from) and its compiled code, the gateway's
//! placements and hosts, and each side's `artifacts` table, whose columns
//! differ.

use crate::args;
use crate::sql::{self, Row, Sql, SqlError};
use schema::{AppKind, Manifest, ReleaseRow, ReleaseState, Version};

/// The columns of `apps` that both databases have, in the order
/// [`app_from_row`] reads them.
pub const APP_COLS: &str = "name, kind, replicas, active";

/// A row of `apps`: the columns both databases have ([`APP_COLS`]).
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub name: String,
    pub kind: AppKind,
    pub replicas: u32,
    pub active: Option<Version>,
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
    /// Whether its code is still kept (see [`unkeep_old`]): on a host, its
    /// precompiled code; on the gateway, its artifact.
    pub kept: bool,
}

impl ReleaseRecord {
    /// The release as a rollback chooses among them.
    pub fn candidate(&self) -> schema::RollbackCandidate {
        schema::RollbackCandidate {
            version: self.version,
            state: self.state,
            kept: self.kept,
        }
    }

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
            grants: self.manifest.allow.outbound.clone(),
        }
    }
}

/// Reads the [`APP_COLS`] at the start of a row; a store that selects
/// more columns reads them after these.
pub fn app_from_row(r: &Row) -> Result<AppRecord, SqlError> {
    Ok(AppRecord {
        name: r.get(0)?,
        kind: r.parse(1)?,
        replicas: r.get(2)?,
        active: r.get::<Option<u32>>(3)?.map(Version),
    })
}

pub fn get_app(c: &dyn Sql, name: &str) -> Result<Option<AppRecord>, SqlError> {
    c.query_opt(
        &format!("SELECT {APP_COLS} FROM apps WHERE name = ?1"),
        args![name],
    )?
    .map(|r| app_from_row(&r))
    .transpose()
}

pub fn list_apps(c: &dyn Sql) -> Result<Vec<AppRecord>, SqlError> {
    c.query(&format!("SELECT {APP_COLS} FROM apps ORDER BY name"), &[])?
        .iter()
        .map(app_from_row)
        .collect()
}

/// Every column of `releases`, in the order [`release_from_row`] reads them.
pub const RELEASE_COLS: &str =
    "app, version, digest, kind, manifest, created, by, state, detail, kept";

pub fn release_from_row(r: &Row) -> Result<ReleaseRecord, SqlError> {
    Ok(ReleaseRecord {
        app: r.get(0)?,
        version: Version(r.get(1)?),
        digest: r.get(2)?,
        kind: r.parse(3)?,
        manifest: r.json(4)?,
        created: r.get(5)?,
        by: r.get(6)?,
        state: r.parse(7)?,
        detail: r.get(8)?,
        kept: r.get(9)?,
    })
}

/// Every release of `app`, newest first.
pub fn releases(c: &dyn Sql, app: &str) -> Result<Vec<ReleaseRecord>, SqlError> {
    c.query(
        &format!("SELECT {RELEASE_COLS} FROM releases WHERE app = ?1 ORDER BY version DESC"),
        args![app],
    )?
    .iter()
    .map(release_from_row)
    .collect()
}

pub fn release(c: &dyn Sql, app: &str, v: Version) -> Result<Option<ReleaseRecord>, SqlError> {
    c.query_opt(
        &format!("SELECT {RELEASE_COLS} FROM releases WHERE app = ?1 AND version = ?2"),
        args![app, v.0],
    )?
    .map(|r| release_from_row(&r))
    .transpose()
}

/// A manifest as the `manifest` column holds it (JSON).
pub fn manifest_json(manifest: &Manifest) -> Result<String, SqlError> {
    serde_json::to_string(manifest).map_err(SqlError::invalid)
}

/// Records a new staged release (creating the app on its first deploy) and
/// returns its version, the next after the app's newest. One transaction:
/// a crash leaves either nothing or a staged release, which the next start
/// marks failed ([`fail_interrupted_stages`]).
pub fn insert_release(
    c: &dyn Sql,
    manifest: &Manifest,
    digest: &str,
    by: &str,
    replicas: u32,
    now: i64,
) -> Result<Version, SqlError> {
    let json = manifest_json(manifest)?;
    sql::transaction(c, |tx| {
        tx.execute(
            "INSERT INTO apps (name, kind, replicas, active, created, updated) VALUES (?1, ?2, ?3, NULL, ?4, ?4)
             ON CONFLICT(name) DO NOTHING",
            args![&manifest.name, manifest.kind.as_str(), replicas, now],
        )?;
        let v: u32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app = ?1",
                args![&manifest.name],
            )?
            .get(0)?;
        tx.execute(
            &format!("INSERT INTO releases ({RELEASE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'staged', NULL, 1)"),
            args![&manifest.name, v, digest, manifest.kind.as_str(), json, now, by],
        )?;
        Ok(Version(v))
    })
}

/// Makes `v` the active release of `app` with `replicas`; the previously
/// active release becomes superseded. Returns the previous active version.
pub fn activate(
    c: &dyn Sql,
    app: &str,
    v: Version,
    kind: AppKind,
    replicas: u32,
    now: i64,
) -> Result<Option<Version>, SqlError> {
    sql::transaction(c, |tx| activate_in(tx, app, v, kind, replicas, now))
}

/// [`activate`] inside the caller's transaction `tx`, for a store that
/// records more in the same commit (the gateway's placement).
pub fn activate_in(
    tx: &dyn Sql,
    app: &str,
    v: Version,
    kind: AppKind,
    replicas: u32,
    now: i64,
) -> Result<Option<Version>, SqlError> {
    let prev: Option<u32> = tx
        .query_opt("SELECT active FROM apps WHERE name = ?1", args![app])?
        .map(|r| r.get::<Option<u32>>(0))
        .transpose()?
        .flatten();
    tx.execute(
        "UPDATE releases SET state = 'superseded' WHERE app = ?1 AND state IN ('active', 'staged') AND version != ?2",
        args![app, v.0],
    )?;
    tx.execute(
        "UPDATE releases SET state = 'active', detail = NULL WHERE app = ?1 AND version = ?2",
        args![app, v.0],
    )?;
    tx.execute(
        "UPDATE apps SET active = ?2, kind = ?3, replicas = ?4, updated = ?5 WHERE name = ?1",
        args![app, v.0, kind.as_str(), replicas, now],
    )?;
    Ok(prev.map(Version))
}

pub fn set_release_state(
    c: &dyn Sql,
    app: &str,
    v: Version,
    state: ReleaseState,
    detail: Option<&str>,
) -> Result<(), SqlError> {
    c.execute(
        "UPDATE releases SET state = ?3, detail = ?4 WHERE app = ?1 AND version = ?2",
        args![app, v.0, state.as_str(), detail],
    )?;
    Ok(())
}

/// Records the replicas `app` wants.
pub fn set_replicas(c: &dyn Sql, app: &str, replicas: u32, now: i64) -> Result<(), SqlError> {
    c.execute(
        "UPDATE apps SET replicas = ?2, updated = ?3 WHERE name = ?1",
        args![app, replicas, now],
    )?;
    Ok(())
}

/// Forgets `app` and its releases; returns how many releases it had.
pub fn delete_app(c: &dyn Sql, app: &str) -> Result<usize, SqlError> {
    sql::transaction(c, |tx| delete_app_in(tx, app))
}

/// [`delete_app`] inside the caller's transaction `tx`.
pub fn delete_app_in(tx: &dyn Sql, app: &str) -> Result<usize, SqlError> {
    let n = tx.execute("DELETE FROM releases WHERE app = ?1", args![app])?;
    tx.execute("DELETE FROM apps WHERE name = ?1", args![app])?;
    Ok(n as usize)
}

/// Releases left `staged` by a crash mid-deploy never became active: fails
/// them, saying that a restart of `program` interrupted them.
pub fn fail_interrupted_stages(c: &dyn Sql, program: &str) -> Result<usize, SqlError> {
    Ok(c.execute(
        "UPDATE releases SET state = 'failed',
           detail = 'interrupted by a ' || CAST(?1 AS TEXT) || ' restart before it became active'
         WHERE state = 'staged'",
        args![program],
    )? as usize)
}

/// Marks as no longer kept every release beyond the newest `keep` of its
/// app, never an active one: those of `app`, or of every app when `None`.
/// They stay in the history. Returns how many were marked.
pub fn unkeep_old(c: &dyn Sql, app: Option<&str>, keep: usize) -> Result<usize, SqlError> {
    Ok(c.execute(
        "UPDATE releases SET kept = 0
         WHERE (CAST(?1 AS TEXT) IS NULL OR app = ?1) AND kept = 1 AND state != 'active' AND version NOT IN
           (SELECT newer.version FROM releases AS newer WHERE newer.app = releases.app
            ORDER BY newer.version DESC LIMIT ?2)",
        args![app, keep],
    )? as usize)
}

/// The digests some kept release of any app still uses.
pub fn kept_digests(c: &dyn Sql) -> Result<Vec<String>, SqlError> {
    sql::column(
        c,
        "SELECT DISTINCT digest FROM releases WHERE kept = 1",
        &[],
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use rusqlite::Connection;
    use schema::migrations::{GATEWAY, HOSTD, Schema};

    fn open(migrations: Schema) -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrate(&mut c, Path::new(":memory:"), migrations).unwrap();
        c
    }

    fn deploy(c: &Connection, app: &str, digest: &str) -> Version {
        let m = Manifest::new(app, AppKind::Worker);
        insert_release(c, &m, digest, "ops", 1, 1_000).unwrap()
    }

    /// The same queries on both databases: their `apps` and `releases`
    /// really are the same columns.
    #[test]
    fn releases_are_staged_activated_and_let_go_of_alike_on_both_databases() {
        for migrations in [HOSTD, GATEWAY] {
            let c = open(migrations);
            let v1 = deploy(&c, "web", "d1");
            let v2 = deploy(&c, "web", "d2");
            assert_eq!((v1, v2), (Version(1), Version(2)));
            assert_eq!(
                activate(&c, "web", v1, AppKind::Worker, 2, 5).unwrap(),
                None
            );
            assert_eq!(
                activate(&c, "web", v2, AppKind::Worker, 3, 6).unwrap(),
                Some(v1)
            );
            let app = get_app(&c, "web").unwrap().unwrap();
            assert_eq!((app.active, app.replicas), (Some(v2), 3));
            let rs = releases(&c, "web").unwrap();
            assert_eq!(
                rs.iter().map(|r| (r.version, r.state)).collect::<Vec<_>>(),
                [(v2, ReleaseState::Active), (v1, ReleaseState::Superseded)]
            );
            assert_eq!(rs[0].to_row().digest, "sha256:d2");
            assert_eq!(rs[0].manifest, Manifest::new("web", AppKind::Worker));

            let v3 = deploy(&c, "web", "d3");
            deploy(&c, "api", "d1");
            assert_eq!(fail_interrupted_stages(&c, "test").unwrap(), 2);
            let r3 = release(&c, "web", v3).unwrap().unwrap();
            assert_eq!(r3.state, ReleaseState::Failed);
            assert_eq!(
                r3.detail.as_deref(),
                Some("interrupted by a test restart before it became active")
            );

            // Keep 1: v3 (newest) and v2 (active) stay; v1 goes.
            let kept = |c: &Connection| {
                let mut d = kept_digests(c).unwrap();
                d.sort();
                d
            };
            assert_eq!(unkeep_old(&c, Some("web"), 1).unwrap(), 1);
            assert_eq!(kept(&c), ["d1", "d2", "d3"]);
            assert_eq!(unkeep_old(&c, None, 0).unwrap(), 2);
            assert_eq!(kept(&c), ["d2"]);

            set_release_state(&c, "web", v1, ReleaseState::Crashloop, Some("why")).unwrap();
            assert_eq!(
                release(&c, "web", v1).unwrap().unwrap().state,
                ReleaseState::Crashloop
            );
            assert_eq!(delete_app(&c, "web").unwrap(), 3);
            assert_eq!(
                list_apps(&c)
                    .unwrap()
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>(),
                ["api"]
            );
        }
    }
}
