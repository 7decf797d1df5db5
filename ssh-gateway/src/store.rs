//! Typed queries over `gateway.db`; each runs on the database thread.
//!
//! The queries `hostd.db` runs alike (apps, releases, the audit trail) are
//! [`db::releases`] and [`db::audit`], re-exported here; this module adds
//! what only the gateway keeps: placements, hosts and its artifacts. Every
//! query of `gateway.db` goes through this module, so that another backend
//! can take its place.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use schema::{AppKind, Version};

pub use db::audit::{record as audit, tail as audit_tail};
pub use db::releases::{
    AppRecord, ReleaseRecord, get_app, insert_release, list_apps, release, releases,
    set_release_state,
};

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
    let prev = db::releases::activate_in(&tx, app, v, kind, replicas, now)?;
    set_placement_tx(&tx, app, placement)?;
    tx.commit()?;
    Ok(prev)
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
    db::releases::set_replicas(&tx, app, replicas, now)?;
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

/// Forgets `app`, its releases and its placement; returns how many
/// releases it had.
pub fn delete_app(c: &mut Connection, app: &str) -> rusqlite::Result<usize> {
    let tx = c.transaction()?;
    tx.execute("DELETE FROM placements WHERE app = ?1", [app])?;
    let n = db::releases::delete_app_in(&tx, app)?;
    tx.commit()?;
    Ok(n)
}

/// Releases left staged by a gateway crash mid-deploy never became active.
pub fn fail_interrupted_stages(c: &Connection) -> rusqlite::Result<usize> {
    db::releases::fail_interrupted_stages(c, "gateway")
}

/// Lets go of old releases' artifacts: every app keeps the artifacts of
/// its newest `keep` releases and of its active one; older releases stay
/// in the history, marked not kept. Returns the digests no kept release
/// uses any more, now forgotten, for the caller to delete from disk.
pub fn prune(c: &mut Connection, keep: usize) -> rusqlite::Result<Vec<String>> {
    let tx = c.transaction()?;
    db::releases::unkeep_old(&tx, None, keep.max(1))?;
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

/// Keeps the audit log within `keep` entries by deleting the oldest
/// refusals (`auth` entries and refused actions); an operator's action is
/// never deleted here. Returns how many were deleted and how many entries
/// are still past `keep` (operator actions).
pub fn prune_audit(c: &Connection, keep: u64) -> rusqlite::Result<(u64, u64)> {
    let total: i64 = c.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?;
    let over = (total as u64).saturating_sub(keep);
    if over == 0 {
        return Ok((0, 0));
    }
    let n = c.execute(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit \
         WHERE refused = 1 ORDER BY id LIMIT ?1)",
        [over as i64],
    )? as u64;
    Ok((n, over - n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::audit::Action;

    #[test]
    fn pruning_the_audit_log_drops_refusals_first_and_never_an_operator_action() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.db");
        let mut c = db::open_connection(&path, db::Durability::Normal).unwrap();
        db::migrate(&mut c, &path, schema::migrations::GATEWAY).unwrap();
        for i in 0..1500 {
            let (key, action, app, refused) = match i % 10 {
                0 | 2 | 4 | 6 | 8 => ("x", Action::Auth, None, true),
                1 => ("bob", Action::Deploy, Some("api"), true),
                _ => ("alice", Action::Deploy, Some("api"), false),
            };
            let detail = if refused { "refused: no" } else { "v1" };
            let e = db::audit::Entry {
                time: i,
                key,
                action,
                app,
                detail,
                refused,
            };
            audit(&c, &e).unwrap();
        }
        let done = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM audit WHERE refused = 0", [], |r| {
                r.get(0)
            })
            .unwrap()
        };
        // 900 refusals (750 auth, 150 refused deploys), 600 done deploys.
        assert_eq!(prune_audit(&c, 1000).unwrap(), (500, 0));
        assert_eq!(done(&c), 600);
        assert_eq!(prune_audit(&c, 600).unwrap(), (400, 0));
        assert_eq!(done(&c), 600);
        // Past the bound with operator actions alone: they stay, and it says so.
        assert_eq!(prune_audit(&c, 500).unwrap(), (0, 100));
        assert_eq!(audit_tail(&c, 10_000).unwrap().len(), 600);
    }
}
