//! Typed queries over the gateway's store (`gateway.db`, or PostgreSQL
//! with `--db postgres://…`); each runs on the store's thread, written
//! once for both backends ([`db::sql`]).
//!
//! The queries `hostd.db` runs alike (apps, releases, the audit trail) are
//! [`db::releases`] and [`db::audit`], re-exported here; this module adds
//! what only the gateway keeps: placements, hosts, its artifacts (and, on
//! PostgreSQL, their bytes) and the active gateway's lease. Every query of
//! the gateway's store goes through this module.

use std::collections::BTreeMap;

use db::args;
use db::sql::{self, Sql, SqlError};
use schema::{AppKind, Version};

pub use db::audit::{record as audit, tail as audit_tail};
pub use db::releases::{
    AppRecord, ReleaseRecord, get_app, insert_release, list_apps, release, releases,
    set_release_state,
};

type Result<T> = std::result::Result<T, SqlError>;

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
    c: &dyn Sql,
    app: &str,
    v: Version,
    kind: AppKind,
    replicas: u32,
    placement: &BTreeMap<String, u32>,
    now: i64,
) -> Result<Option<Version>> {
    sql::transaction(c, |tx| {
        let prev = db::releases::activate_in(tx, app, v, kind, replicas, now)?;
        set_placement_in(tx, app, placement)?;
        Ok(prev)
    })
}

fn set_placement_in(tx: &dyn Sql, app: &str, placement: &BTreeMap<String, u32>) -> Result<()> {
    tx.execute("DELETE FROM placements WHERE app = ?1", args![app])?;
    for (host, n) in placement {
        tx.execute(
            "INSERT INTO placements (app, host, replicas) VALUES (?1, ?2, ?3)",
            args![app, host, *n],
        )?;
    }
    Ok(())
}

/// Records a new scale and its placement.
pub fn set_scale(
    c: &dyn Sql,
    app: &str,
    replicas: u32,
    placement: &BTreeMap<String, u32>,
    now: i64,
) -> Result<()> {
    sql::transaction(c, |tx| {
        db::releases::set_replicas(tx, app, replicas, now)?;
        set_placement_in(tx, app, placement)
    })
}

pub fn set_placement(c: &dyn Sql, app: &str, placement: &BTreeMap<String, u32>) -> Result<()> {
    sql::transaction(c, |tx| set_placement_in(tx, app, placement))
}

/// Every placement: app → host → replicas.
pub fn placements(c: &dyn Sql) -> Result<BTreeMap<String, BTreeMap<String, u32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for r in c.query("SELECT app, host, replicas FROM placements", &[])? {
        out.entry(r.get(0)?)
            .or_default()
            .insert(r.get(1)?, r.get(2)?);
    }
    Ok(out)
}

/// Forgets `app`, its releases and its placement; returns how many
/// releases it had.
pub fn delete_app(c: &dyn Sql, app: &str) -> Result<usize> {
    sql::transaction(c, |tx| {
        tx.execute("DELETE FROM placements WHERE app = ?1", args![app])?;
        db::releases::delete_app_in(tx, app)
    })
}

/// Releases left staged by a gateway crash mid-deploy never became active.
pub fn fail_interrupted_stages(c: &dyn Sql) -> Result<usize> {
    db::releases::fail_interrupted_stages(c, "gateway")
}

/// Lets go of old releases' artifacts: every app keeps the artifacts of
/// its newest `keep` releases and of its active one; older releases stay
/// in the history, marked not kept. Returns the digests no kept release
/// uses any more, now forgotten (their bytes too, on PostgreSQL), for the
/// caller to delete from disk.
pub fn prune(c: &dyn Sql, keep: usize) -> Result<Vec<String>> {
    sql::transaction(c, |tx| {
        db::releases::unkeep_old(tx, None, keep.max(1))?;
        let gone: Vec<String> = sql::column(
            tx,
            "SELECT digest FROM artifacts WHERE digest NOT IN (SELECT digest FROM releases WHERE kept = 1)",
            &[],
        )?;
        tx.execute(
            "DELETE FROM artifact_blobs WHERE digest NOT IN (SELECT digest FROM releases WHERE kept = 1)",
            &[],
        )?;
        tx.execute(
            "DELETE FROM artifacts WHERE digest NOT IN (SELECT digest FROM releases WHERE kept = 1)",
            &[],
        )?;
        Ok(gone)
    })
}

/// Every artifact the gateway has recorded.
pub fn artifact_digests(c: &dyn Sql) -> Result<Vec<String>> {
    sql::column(c, "SELECT digest FROM artifacts", &[])
}

pub fn record_artifact(c: &dyn Sql, digest: &str, size: u64, now: i64) -> Result<()> {
    c.execute(
        "INSERT INTO artifacts (digest, size, created) VALUES (?1, ?2, ?3) ON CONFLICT(digest) DO NOTHING",
        args![digest, size, now],
    )?;
    Ok(())
}

/// Keeps an artifact's bytes in the store itself (PostgreSQL: every
/// gateway of the fleet reads them from there).
pub fn put_artifact_bytes(c: &dyn Sql, digest: &str, bytes: Vec<u8>) -> Result<()> {
    c.execute(
        "INSERT INTO artifact_blobs (digest, bytes) VALUES (?1, ?2) ON CONFLICT(digest) DO NOTHING",
        args![digest, bytes],
    )?;
    Ok(())
}

/// An artifact's bytes, if the store keeps them.
pub fn artifact_bytes(c: &dyn Sql, digest: &str) -> Result<Option<Vec<u8>>> {
    c.query_opt(
        "SELECT bytes FROM artifact_blobs WHERE digest = ?1",
        args![digest],
    )?
    .map(|r| r.get(0))
    .transpose()
}

pub fn upsert_host(c: &dyn Sql, h: &HostRecord, now: i64) -> Result<()> {
    let labels = serde_json::to_string(&h.labels).unwrap_or_else(|_| "{}".into());
    c.execute(
        "INSERT INTO hosts (name, key, arch, engine, labels, cpus, memory, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT(name) DO UPDATE SET key = excluded.key, arch = excluded.arch, engine = excluded.engine,
           labels = excluded.labels, cpus = excluded.cpus, memory = excluded.memory, last_seen = excluded.last_seen",
        args![&h.name, &h.key, &h.arch, &h.engine, labels, h.cpus, h.memory, now],
    )?;
    Ok(())
}

pub fn touch_host(c: &dyn Sql, name: &str, now: i64) -> Result<()> {
    c.execute(
        "UPDATE hosts SET last_seen = ?2 WHERE name = ?1",
        args![name, now],
    )?;
    Ok(())
}

pub fn hosts(c: &dyn Sql) -> Result<Vec<HostRecord>> {
    c.query(
        "SELECT name, key, arch, engine, labels, cpus, memory, last_seen FROM hosts ORDER BY name",
        &[],
    )?
    .iter()
    .map(|r| {
        Ok(HostRecord {
            name: r.get(0)?,
            key: r.get(1)?,
            arch: r.get(2)?,
            engine: r.get(3)?,
            labels: serde_json::from_str(&r.get::<String>(4)?).unwrap_or_default(),
            cpus: r.get(5)?,
            memory: r.get(6)?,
            last_seen: r.get(7)?,
        })
    })
    .collect()
}

/// Keeps the audit log within `keep` entries by deleting the oldest
/// refusals (`auth` entries and refused actions); an operator's action is
/// never deleted here. Returns how many were deleted and how many entries
/// are still past `keep` (operator actions).
pub fn prune_audit(c: &dyn Sql, keep: u64) -> Result<(u64, u64)> {
    let total: u64 = c.query_one("SELECT COUNT(*) FROM audit", &[])?.get(0)?;
    let over = total.saturating_sub(keep);
    if over == 0 {
        return Ok((0, 0));
    }
    let n = c.execute(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit \
         WHERE refused = 1 ORDER BY id LIMIT ?1)",
        args![over],
    )?;
    Ok((n, over - n))
}

/// The active gateway's lease, as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub address: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub epoch: i64,
    /// The store's clock when this was read.
    pub now_ms: i64,
}

impl LeaseRecord {
    pub fn held_by(&self, holder: &str) -> bool {
        self.holder == holder && self.until_ms > self.now_ms
    }
}

/// Takes the lease for `holder` if it is free, lapsed or already its own
/// (then renews it) until `ttl_ms` from the store's clock; returns the
/// lease as it stands after, whoever holds it. Two claimants at once: one
/// row, one winner (the second sees the first's fresh deadline).
pub fn claim_lease(c: &dyn Sql, holder: &str, address: &str, ttl_ms: i64) -> Result<LeaseRecord> {
    sql::transaction(c, |tx| {
        let now = tx.now_ms()?;
        tx.execute(
            "INSERT INTO gateway_lease (id, holder, address, since_ms, until_ms, epoch)
             VALUES (1, ?1, ?2, ?3, ?4, 1)
             ON CONFLICT (id) DO UPDATE SET
               epoch = CASE WHEN gateway_lease.holder = excluded.holder
                            THEN gateway_lease.epoch ELSE gateway_lease.epoch + 1 END,
               since_ms = CASE WHEN gateway_lease.holder = excluded.holder AND gateway_lease.until_ms >= ?3
                               THEN gateway_lease.since_ms ELSE excluded.since_ms END,
               holder = excluded.holder,
               address = excluded.address,
               until_ms = excluded.until_ms
             WHERE gateway_lease.holder = excluded.holder OR gateway_lease.until_ms < ?3",
            args![holder, address, now, now.saturating_add(ttl_ms)],
        )?;
        let r = tx.query_one(
            "SELECT holder, address, since_ms, until_ms, epoch FROM gateway_lease WHERE id = 1",
            &[],
        )?;
        Ok(LeaseRecord {
            holder: r.get(0)?,
            address: r.get(1)?,
            since_ms: r.get(2)?,
            until_ms: r.get(3)?,
            epoch: r.get(4)?,
            now_ms: now,
        })
    })
}

/// Takes the lease from `seen`'s holder, which stopped renewing it before
/// it lapsed (a gateway restarted at the same address): only if it is
/// still exactly as seen. Returns whether it was taken.
pub fn take_over_lease(
    c: &dyn Sql,
    holder: &str,
    address: &str,
    ttl_ms: i64,
    seen: &LeaseRecord,
) -> Result<bool> {
    let now = c.now_ms()?;
    Ok(c.execute(
        "UPDATE gateway_lease SET holder = ?1, address = ?2, since_ms = ?3, until_ms = ?4, epoch = epoch + 1
         WHERE id = 1 AND holder = ?5 AND until_ms = ?6 AND epoch = ?7",
        args![holder, address, now, now.saturating_add(ttl_ms), &seen.holder, seen.until_ms, seen.epoch],
    )? == 1)
}

/// Lets the lease go at once (a clean stop): a standby need not wait for
/// it to lapse.
pub fn release_lease(c: &dyn Sql, holder: &str) -> Result<()> {
    c.execute(
        "UPDATE gateway_lease SET until_ms = 0 WHERE id = 1 AND holder = ?1",
        args![holder],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use schema::audit::Action;

    #[test]
    fn one_gateway_holds_the_lease_until_it_lapses_or_is_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.db");
        let mut c = db::open_connection(&path, db::Durability::Normal).unwrap();
        db::migrate(&mut c, &path, schema::migrations::GATEWAY).unwrap();
        let a = claim_lease(&c, "gw-a", "10.0.0.1:2222", 60_000).unwrap();
        assert!(a.held_by("gw-a"));
        assert_eq!(a.epoch, 1);
        // Another claimant sees the holder and where it is; nothing changes.
        let b = claim_lease(&c, "gw-b", "10.0.0.2:2222", 60_000).unwrap();
        assert!(!b.held_by("gw-b"));
        assert_eq!(
            (b.holder.as_str(), b.address.as_str()),
            ("gw-a", "10.0.0.1:2222")
        );
        assert_eq!((b.until_ms, b.epoch), (a.until_ms, 1));
        // The holder renews: same epoch, same since, later deadline.
        let a2 = claim_lease(&c, "gw-a", "10.0.0.1:2222", 120_000).unwrap();
        assert!(a2.held_by("gw-a") && a2.until_ms > a.until_ms);
        assert_eq!((a2.epoch, a2.since_ms), (1, a.since_ms));
        // Let go: the next claimant takes it at once, with a new epoch.
        release_lease(&c, "gw-a").unwrap();
        let b = claim_lease(&c, "gw-b", "10.0.0.2:2222", 60_000).unwrap();
        assert!(b.held_by("gw-b"));
        assert_eq!(b.epoch, 2);
        // A lapsed lease (a holder that died) is taken by the next claimant.
        c.execute("UPDATE gateway_lease SET until_ms = 1", [])
            .unwrap();
        let a = claim_lease(&c, "gw-a", "10.0.0.1:2222", 60_000).unwrap();
        assert!(a.held_by("gw-a"));
        assert_eq!(a.epoch, 3);
        // Releasing someone else's lease does nothing.
        release_lease(&c, "gw-b").unwrap();
        assert!(claim_lease(&c, "gw-b", "x", 1).unwrap().held_by("gw-a"));
    }

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
