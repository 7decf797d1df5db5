//! The gateway's store, one suite run on both backends: a SQLite file and
//! a real PostgreSQL server (started by the test on a free port in a temp
//! dir). The same migrations and the same queries must give the same
//! answers on both.

#[path = "../../fixtures/harness.rs"]
mod harness;

use std::collections::BTreeMap;

use db::{Durability, SqlDb, Target};
use harness::Postgres;
use schema::audit::Action;
use schema::{AppKind, Manifest, ReleaseState, Version};
use ssh_gateway::{keys, store};

fn open(target: &Target) -> SqlDb {
    SqlDb::open(target, schema::migrations::GATEWAY, Durability::Full).unwrap()
}

/// Why opening `target` fails.
fn open_err(target: &Target) -> String {
    SqlDb::open(target, schema::migrations::GATEWAY, Durability::Full)
        .err()
        .expect("the open fails")
        .to_string()
}

fn call<R: Send + 'static>(
    db: &SqlDb,
    f: impl FnOnce(&dyn db::Sql) -> Result<R, db::SqlError> + Send + 'static,
) -> R {
    db.call_blocking(f).unwrap()
}

fn suite(target: Target) {
    let db = open(&target);
    // Opening again applies nothing and works.
    drop(open(&target));

    // Releases and placements.
    let m = Manifest::new("api", AppKind::Http);
    let v1 = call(&db, move |c| {
        store::insert_release(c, &m, "d1", "alice", 2, 1_000)
    });
    let m = Manifest::new("api", AppKind::Http);
    let v2 = call(&db, move |c| {
        store::insert_release(c, &m, "d2", "alice", 2, 2_000)
    });
    assert_eq!((v1, v2), (Version(1), Version(2)));
    let place: BTreeMap<String, u32> = [("h1".to_string(), 1), ("h2".to_string(), 1)].into();
    let p = place.clone();
    let prev = call(&db, move |c| {
        store::activate(c, "api", v1, AppKind::Http, 2, &p, 3_000)
    });
    assert_eq!(prev, None);
    let p = place.clone();
    let prev = call(&db, move |c| {
        store::activate(c, "api", v2, AppKind::Http, 2, &p, 4_000)
    });
    assert_eq!(prev, Some(v1));
    let rs = call(&db, |c| store::releases(c, "api"));
    assert_eq!(
        rs.iter().map(|r| (r.version, r.state)).collect::<Vec<_>>(),
        [(v2, ReleaseState::Active), (v1, ReleaseState::Superseded)]
    );
    assert_eq!(rs[0].manifest, Manifest::new("api", AppKind::Http));
    assert!(rs[0].kept);
    let three: BTreeMap<String, u32> = [("h1".to_string(), 2), ("h2".to_string(), 1)].into();
    let t = three.clone();
    call(&db, move |c| store::set_scale(c, "api", 3, &t, 5_000));
    let app = call(&db, |c| store::get_app(c, "api")).unwrap();
    assert_eq!(
        (app.replicas, app.active, app.kind),
        (3, Some(v2), AppKind::Http)
    );
    assert_eq!(call(&db, store::placements)["api"], three);
    assert_eq!(
        call(&db, |c| store::get_app(c, "nope")).map(|a| a.name),
        None
    );

    // A staged release interrupted by a restart is failed, and says why.
    let m = Manifest::new("api", AppKind::Http);
    let v3 = call(&db, move |c| {
        store::insert_release(c, &m, "d3", "bob", 3, 6_000)
    });
    assert_eq!(call(&db, store::fail_interrupted_stages), 1);
    let r3 = call(&db, move |c| store::release(c, "api", v3)).unwrap();
    assert_eq!(r3.state, ReleaseState::Failed);
    assert_eq!(
        r3.detail.as_deref(),
        Some("interrupted by a gateway restart before it became active")
    );
    call(&db, move |c| {
        store::set_release_state(c, "api", v3, ReleaseState::Crashloop, Some("why"))
    });

    // Artifacts, their bytes, and pruning: keep 1 keeps v3 (newest) and v2
    // (active); v1's artifact goes, bytes and all.
    for (d, n) in [("d1", 10u64), ("d2", 20), ("d3", 30)] {
        call(&db, move |c| store::record_artifact(c, d, n, 1));
        call(&db, move |c| {
            store::put_artifact_bytes(c, d, vec![n as u8; n as usize])
        });
    }
    call(&db, |c| store::record_artifact(c, "d1", 10, 1));
    assert_eq!(
        call(&db, |c| store::artifact_bytes(c, "d2")),
        Some(vec![20u8; 20])
    );
    let gone = call(&db, |c| store::prune(c, 1));
    assert_eq!(gone, ["d1"]);
    let mut left = call(&db, store::artifact_digests);
    left.sort();
    assert_eq!(left, ["d2", "d3"]);
    assert_eq!(call(&db, |c| store::artifact_bytes(c, "d1")), None);

    // Hosts.
    let h = store::HostRecord {
        name: "h1".into(),
        key: "h1".into(),
        arch: "x86_64".into(),
        engine: "wasmtime 48".into(),
        labels: [("zone".to_string(), "a".to_string())].into(),
        cpus: 8,
        memory: 32 << 30,
        last_seen: 0,
    };
    call(&db, move |c| store::upsert_host(c, &h, 7_000));
    call(&db, |c| store::touch_host(c, "h1", 8_000));
    let hosts = call(&db, store::hosts);
    assert_eq!(hosts.len(), 1);
    assert_eq!(
        (hosts[0].memory, hosts[0].cpus, hosts[0].last_seen),
        (32 << 30, 8, 8_000)
    );
    assert_eq!(hosts[0].labels["zone"], "a");

    // Keys.
    let dir = tempfile::tempdir().unwrap();
    let pubkey =
        std::fs::read_to_string(harness::keygen(dir.path(), "ops").with_extension("pub")).unwrap();
    let key = keys::parse_public_key(&pubkey).unwrap();
    let k = key.clone();
    let e = call(&db, move |c| {
        Ok(keys::add(c, keys::Role::Operator, &k, "ops", 1))
    })
    .unwrap();
    let k = key.clone();
    let dup = call(&db, move |c| {
        Ok(keys::add(c, keys::Role::Viewer, &k, "other", 1))
    })
    .unwrap_err()
    .to_string();
    assert!(dup.contains("already enrolled as ops"), "{dup}");
    let fp = e.fingerprint.clone();
    let found = call(&db, move |c| keys::by_fingerprint(c, &fp)).unwrap();
    assert_eq!(
        (found.name.as_str(), found.role),
        ("ops", keys::Role::Operator)
    );
    let was = call(&db, |c| Ok(keys::set_role(c, "ops", keys::Role::Viewer))).unwrap();
    assert_eq!(was, keys::Role::Operator);
    assert_eq!(call(&db, keys::list)[0].role, keys::Role::Viewer);
    let before = call(&db, |c| c.data_version());
    call(&db, |c| Ok(keys::remove(c, "ops"))).unwrap();
    let gone = call(&db, |c| Ok(keys::remove(c, "ops")))
        .unwrap_err()
        .to_string();
    assert!(gone.contains("no key named ops"), "{gone}");
    assert!(call(&db, keys::list).is_empty());
    // Another connection's commit moves the data version a poller reads.
    let other = open(&target);
    call(&other, |c| {
        store::audit(
            c,
            &db::audit::Entry {
                time: 1,
                key: "x",
                action: Action::Auth,
                app: None,
                detail: "refused: unknown key",
                refused: true,
            },
        )
    });
    if let Target::Postgres(_) = target {
        // PostgreSQL's counters are published when a transaction ends and
        // read once per transaction: wait for them to move.
        harness::wait_for("the data version to move", || {
            (call(&db, |c| c.data_version()) != before).then_some(())
        });
    } else {
        assert_ne!(call(&db, |c| c.data_version()), before);
    }

    // The audit trail: oldest first, the tail the newest; pruning drops
    // refusals and never an operator's action.
    for i in 0..10 {
        call(&db, move |c| {
            store::audit(
                c,
                &db::audit::Entry {
                    time: 10 + i,
                    key: "alice",
                    action: Action::Deploy,
                    app: Some("api"),
                    detail: &format!("v{i}"),
                    refused: i % 2 == 1,
                },
            )
        });
    }
    let tail = call(&db, |c| store::audit_tail(c, 3));
    assert_eq!(
        tail.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(),
        ["v7", "v8", "v9"]
    );
    assert_eq!(call(&db, |c| store::prune_audit(c, 5)), (6, 0));
    assert_eq!(call(&db, |c| store::prune_audit(c, 4)), (0, 1));
    assert_eq!(call(&db, |c| store::audit_tail(c, 100)).len(), 5);

    // Canaries.
    let plan = schema::canary::Canary {
        share: Some("10%".into()),
        ..Default::default()
    }
    .plan(None, false)
    .unwrap()
    .unwrap();
    let p = schema::canary::Progress {
        app: "api".into(),
        version: v3,
        stable: v2,
        plan,
        step: 1,
        step_started_ms: 9,
        by: "alice".into(),
        hosts: vec!["h1".into()],
    };
    let q = p.clone();
    call(&db, move |c| db::canaries::save(c, &q));
    assert_eq!(call(&db, |c| db::canaries::get(c, "api")), Some(p.clone()));
    assert_eq!(call(&db, db::canaries::all), vec![p]);
    call(&db, |c| db::canaries::delete(c, "api"));
    assert_eq!(call(&db, db::canaries::all), vec![]);

    // The lease: one holder; renewals keep its epoch; a lapsed or released
    // lease goes to the next claimant.
    let a = call(&db, |c| {
        store::claim_lease(c, "gw-a", "10.0.0.1:2222", 60_000)
    });
    assert!(a.held_by("gw-a"));
    let b = call(&other, |c| {
        store::claim_lease(c, "gw-b", "10.0.0.2:2222", 60_000)
    });
    assert!(!b.held_by("gw-b"));
    assert_eq!(
        (b.holder.as_str(), b.address.as_str()),
        ("gw-a", "10.0.0.1:2222")
    );
    let a2 = call(&db, |c| {
        store::claim_lease(c, "gw-a", "10.0.0.1:2222", 60_000)
    });
    assert_eq!((a2.epoch, a2.since_ms), (a.epoch, a.since_ms));
    call(&db, |c| store::release_lease(c, "gw-a"));
    let b = call(&other, |c| {
        store::claim_lease(c, "gw-b", "10.0.0.2:2222", 60_000)
    });
    assert!(b.held_by("gw-b"));
    assert_eq!(b.epoch, a.epoch + 1);
    // Taking over a lease that stopped being renewed: only as it was seen.
    let mut stale = b.clone();
    stale.until_ms -= 1;
    assert!(!call(&db, move |c| store::take_over_lease(
        c,
        "gw-b#2",
        "10.0.0.2:2222",
        60_000,
        &stale
    )));
    let seen = b.clone();
    assert!(call(&db, move |c| store::take_over_lease(
        c,
        "gw-b#2",
        "10.0.0.2:2222",
        60_000,
        &seen
    )));
    let now = call(&db, |c| {
        store::claim_lease(c, "gw-a", "10.0.0.1:2222", 60_000)
    });
    assert_eq!((now.holder.as_str(), now.epoch), ("gw-b#2", b.epoch + 1));

    // Deleting an app takes its releases and placement.
    assert_eq!(call(&db, |c| store::delete_app(c, "api")), 3);
    assert!(call(&db, store::list_apps).is_empty());
    assert!(call(&db, store::placements).is_empty());
}

#[test]
fn the_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    suite(Target::Sqlite(dir.path().join("gateway.db")));
}

#[test]
fn the_store_on_postgresql() {
    let pg = Postgres::start();
    suite(Target::parse(&pg.database("gateway")));
}

#[test]
fn two_claimants_at_once_on_postgresql_make_one_holder() {
    let pg = Postgres::start();
    let target = Target::parse(&pg.database("race"));
    let dbs: Vec<SqlDb> = (0..4).map(|_| open(&target)).collect();
    let threads: Vec<_> = dbs
        .into_iter()
        .enumerate()
        .map(|(i, db)| {
            std::thread::spawn(move || {
                let me = format!("gw-{i}");
                let r = db
                    .call_blocking(move |c| store::claim_lease(c, &me, "addr", 60_000))
                    .unwrap();
                r.holder == format!("gw-{i}")
            })
        })
        .collect();
    let won: usize = threads
        .into_iter()
        .map(|t| t.join().unwrap() as usize)
        .sum();
    assert_eq!(won, 1, "exactly one gateway holds the lease");
}

#[test]
fn a_bad_postgres_url_or_a_dead_server_is_a_clear_error() {
    let port = harness::free_port();
    let err = open_err(&Target::parse(&format!(
        "postgres://gw:s3cret@127.0.0.1:{port}/fleet"
    )));
    assert!(
        err.contains("cannot reach PostgreSQL at postgres://gw:***@127.0.0.1"),
        "{err}"
    );
    assert!(
        !err.contains("s3cret"),
        "the password is never printed: {err}"
    );
    let err = open_err(&Target::parse("postgres://[nonsense"));
    assert!(err.contains("cannot reach PostgreSQL"), "{err}");
}

#[test]
fn a_postgres_database_of_a_newer_gateway_is_refused() {
    let pg = Postgres::start();
    let url = pg.database("newer");
    drop(open(&Target::parse(&url)));
    pg.psql("newer", "UPDATE cranefleet_schema SET version = 99");
    let err = open_err(&Target::parse(&url));
    assert!(err.contains("run the newer ssh-gateway"), "{err}");
}

#[test]
fn over_tls_the_servers_certificate_is_verified_and_plain_connections_are_not_made() {
    let pg = Postgres::start_tls();
    let url = pg.database("fleet");
    let ca = pg.ca.clone().unwrap();
    // Verified against the CA the URL names: the whole suite over TLS.
    suite(Target::parse(&format!(
        "{url}?sslmode=require&sslrootcert={}",
        ca.display()
    )));
    // The system's roots do not know this CA: refused, saying why.
    let err = open_err(&Target::parse(&format!("{url}?sslmode=require")));
    assert!(err.contains("cannot reach PostgreSQL"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // Without TLS this server lets nobody in.
    let err = open_err(&Target::parse(&format!("{url}?sslmode=disable")));
    assert!(err.contains("no encryption"), "{err}");
}
