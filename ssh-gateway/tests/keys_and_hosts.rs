//! A key is exactly its role while it is enrolled, a host speaks only for
//! itself, refusals are recorded and bounded, damaged state is refused:
//! each defence attacked with real processes.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn a_removed_or_downgraded_key_loses_its_open_connections_at_once() {
    removed_or_downgraded_keys_lose_their_connections(Fleet::start());
}

/// The same on a gateway whose state is in PostgreSQL, the key changed by
/// `ssh-gateway --db postgres://… keys` from another process.
#[test]
fn on_postgresql_a_removed_or_downgraded_key_loses_its_open_connections_at_once() {
    let pg = Postgres::start();
    let f = Fleet::start_on_postgres(&pg.database("fleet"), &[]);
    removed_or_downgraded_keys_lose_their_connections(f);
}

fn removed_or_downgraded_keys_lose_their_connections(mut f: Fleet) {
    use std::io::BufRead;
    use std::process::Stdio;

    f.add_agent("h1", &[]);
    // alice keeps a session open (as a console or a multiplexed ssh would).
    let mut watch = f
        .ssh_cmd("alice", &["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("\"role\":\"operator\""), "{first}");
    // From another process on the same data directory: alice is a viewer.
    let r = f.gateway_cmd(&["keys", "role", "alice", "viewer"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("alice: operator -> viewer"),
        "{}",
        r.stdout
    );
    wait_for("alice's open session to close", || {
        watch.try_wait().ok().flatten().map(|_| ())
    });
    // What she runs next is what a viewer may.
    let r = f.ops(&["scale", "nothing", "2"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is a viewer"), "{}", r.stderr);
    // A host key removed: its tunnel closes at once, and it cannot return.
    let r = f.gateway_cmd(&["keys", "rm", "h1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    wait_for("h1's tunnel to close", || {
        f.gateway_log()
            .contains("the key h1 was removed")
            .then_some(())
    });
    wait_for("the agent to be refused", || {
        f.gateway_log()
            .matches("refused an unknown key")
            .next()
            .map(|_| ())
    });
    let audit = f.ops(&["--json", "audit"]).stdout;
    assert!(
        audit.contains("the key alice changed from operator to viewer"),
        "{audit}"
    );
    assert!(audit.contains("the key h1 was removed"), "{audit}");
}

#[test]
fn a_host_key_cannot_speak_for_another_host() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.kill_agent(0);
    // Another enrolled host key claims to be h1 while h1 is away.
    let imposter = keygen(f.dir.path(), "imposter-host");
    f.enroll("host", &imposter, "imposter");
    let i = f.add_agent_with_key("h1", &imposter);
    wait_for("the imposter to be refused", || {
        f.agent_log(i)
            .contains("the key imposter is enrolled for the host imposter, not h1")
            .then_some(())
    });
    let audit = f.ops(&["audit"]).stdout;
    assert!(
        audit.contains("refused: the key imposter is enrolled for the host imposter, not h1"),
        "{audit}"
    );
    // The real h1 comes back and is served.
    f.kill_agent(i);
    f.start_agent(0, &[]);
    f.wait_host_up("h1");
}

#[test]
fn a_host_reports_only_on_what_it_runs_and_cannot_forge_an_operator() {
    use schema::tunnel::{self, Heartbeat, Hello, HostApp, HostEvent, HostMsg};
    use schema::{AuditEntry, Version};

    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    let t = fixture("ticker.wasm");
    for v in ["1", "2"] {
        f.ops(&[
            "deploy",
            "api",
            t.to_str().unwrap(),
            "--kind",
            "worker",
            "--env",
            &format!("V={v}"),
        ])
        .ok();
    }
    f.wait_running("api", "v2", 1);
    let evil = keygen(f.dir.path(), "evil-host");
    f.enroll("host", &evil, "evil");
    let claims = vec![HostApp {
        app: "api".into(),
        active: Some(Version(1)),
        replicas: 1,
        kept: vec![Version(1), Version(2)],
    }];
    let mut frames = Vec::new();
    let mut send = |m: &HostMsg| tunnel::encode_msg(m, &mut frames);
    send(&HostMsg::Hello(Hello {
        version: tunnel::TUNNEL_PROTOCOL_VERSION,
        name: "evil".into(),
        arch: std::env::consts::ARCH.into(),
        engine: "0".repeat(16),
        cpus: 1,
        memory_bytes: 1 << 30,
        labels: Default::default(),
        apps: claims.clone(),
        local_actions: vec![AuditEntry {
            time: "2026-11-30T10:00:00Z".into(),
            key: "alice".into(),
            action: "rollback".into(),
            app: Some("api".into()),
            detail: "v2 -> v1".into(),
            refused: false,
        }],
    }));
    send(&HostMsg::Heartbeat(Heartbeat {
        apps: claims,
        ps: Vec::new(),
        instance_rows: Vec::new(),
        instances: 0,
        memory_bytes: 0,
    }));
    send(&HostMsg::Event(HostEvent::Crashloop {
        app: "api".into(),
        version: Version(2),
        detail: "forged".into(),
    }));
    let (mut host, stdin) = f.scripted_host("evil-host", &frames);
    wait_for("the forged crashloop to be refused", || {
        f.ops(&["audit"])
            .stdout
            .contains("refused: evil reported on api v2")
            .then_some(())
    });
    // Nothing moved: v2 is active everywhere and healthy.
    let releases = f.releases("api");
    assert_eq!(releases[0], ("v2".into(), "active".into()), "{releases:?}");
    f.wait_running("api", "v2", 1);
    let audit = f.json(&["audit"]);
    let keys: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["key"].as_str())
        .collect();
    assert!(!keys.iter().any(|k| k.starts_with("alice@")), "{keys:?}");
    assert!(
        keys.contains(&"local:?@evil"),
        "recorded as evil's report: {keys:?}"
    );
    drop(stdin);
    let _ = host.kill();
    let _ = host.wait();
}

#[test]
fn a_host_that_arrives_takes_no_replicas_from_healthy_hosts() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let t = fixture("ticker.wasm");
    for app in ["busy", "api"] {
        f.ops(&[
            "deploy",
            app,
            t.to_str().unwrap(),
            "--kind",
            "worker",
            "--replicas",
            "2",
        ])
        .ok();
        f.wait_running(app, "v1", 2);
    }
    let hosts_of = |f: &Fleet, app: &str| -> Vec<String> {
        let mut h: Vec<String> = f
            .json(&["ps", app])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["host"].as_str().unwrap().to_string())
            .collect();
        h.sort();
        h
    };
    assert_eq!(hosts_of(&f, "api"), ["h1", "h2"]);
    // An empty host joins (and could drop at once): the least loaded, so a
    // from-scratch placement would hand it a replica of each app.
    let i = f.add_agent("h3", &[]);
    let audit_len = || f.json(&["audit"]).as_array().map(|a| a.len()).unwrap_or(0) as u64;
    wait_settled(
        "the fleet to settle after h3 joined",
        Duration::from_millis(1500),
        audit_len,
    );
    f.kill_agent(i);
    for app in ["api", "busy"] {
        assert_eq!(hosts_of(&f, app), ["h1", "h2"], "{app} moved");
    }
    let audit = f.ops(&["audit"]).stdout;
    assert!(!audit.contains("replace"), "{audit}");
    f.wait_running("api", "v1", 2);
}

#[test]
fn refusals_are_audited_counted_and_bounded() {
    let f = Fleet::start_with(&["--audit-refusals-every-s", "3", "--audit-keep", "1000"]);
    let stranger = keygen(f.dir.path(), "stranger");
    let huge_user = "u".repeat(30_000);
    let ssh = |key: &Path, user: &str, extra: &[&str], cmd: &[&str]| {
        let mut c = Command::new("ssh");
        c.args(["-p", &f.port.to_string(), "-i"])
            .arg(key)
            .args(SSH_OPTIONS)
            .args(extra)
            .arg(format!("{user}@127.0.0.1"))
            .args(cmd);
        run(&mut c, None)
    };
    // An unknown key, 20 times, with a 30 000-character user name.
    for _ in 0..20 {
        assert_ne!(ssh(&stranger, &huge_user, &[], &["ps"]).code, 0);
    }
    // An enrolled key asking for what the gateway does not serve.
    let alice = f.path("alice");
    assert_ne!(ssh(&alice, "alice", &[], &["-s", "sftp"]).code, 0);
    assert_ne!(ssh(&alice, "alice", &["-W", "127.0.0.1:22"], &[]).code, 0);
    let rfwd = [
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-R",
        "0:127.0.0.1:22",
    ];
    assert_ne!(ssh(&alice, "alice", &rfwd, &[]).code, 0);
    // "refused N times" (or "once") of the entries about `what`.
    let counted = |rows: &[serde_json::Value], what: &str| -> u64 {
        rows.iter()
            .filter_map(|r| r["detail"].as_str())
            .filter(|d| d.contains(what))
            .map(|d| {
                let n = d.trim_start_matches("refused ");
                if n.starts_with("once") {
                    1
                } else {
                    n.split(' ')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                }
            })
            .sum()
    };
    let rows = wait_for_or(
        "the counted refusals to be written",
        || {
            let rows = f.json(&["audit"]).as_array()?.clone();
            (counted(&rows, "unknown key") == 20 && counted(&rows, "none login") >= 20)
                .then_some(rows)
        },
        || f.ops(&["audit"]).stdout,
    );
    let auth: Vec<&str> = rows
        .iter()
        .filter(|r| r["action"] == "auth")
        .map(|r| r["detail"].as_str().unwrap())
        .collect();
    assert!(
        auth.len() <= 12,
        "counted, not one row per attempt: {auth:#?}"
    );
    assert!(
        auth.iter().all(|d| d.len() < 400),
        "user names are cut: {auth:#?}"
    );
    let details: Vec<&str> = rows.iter().map(|r| r["detail"].as_str().unwrap()).collect();
    for what in [
        "the subsystem \"sftp\"",
        "port forwarding to 127.0.0.1:22",
        "remote forwarding of",
    ] {
        assert!(
            details.iter().any(|d| d.contains(what)),
            "{what} not audited: {details:#?}"
        );
    }
}

#[test]
fn an_emptied_gateway_database_is_refused_and_no_artifact_is_deleted() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.ops(&[
        "deploy",
        "w",
        fixture("ticker.wasm").to_str().unwrap(),
        "--kind",
        "worker",
    ])
    .ok();
    f.stop_gateway();
    let artifacts = || {
        std::fs::read_dir(f.gw_data().join("artifacts"))
            .unwrap()
            .count()
    };
    let before = artifacts();
    assert!(before > 0);
    for file in ["gateway.db-wal", "gateway.db-shm"] {
        let _ = std::fs::remove_file(f.gw_data().join(file));
    }
    std::fs::write(f.gw_data().join("gateway.db"), b"").unwrap();
    let r = run(
        Command::new(gateway_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(f.gw_data()),
        None,
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("gateway.db is empty (0 bytes)"),
        "{}",
        r.stderr
    );
    assert_eq!(artifacts(), before, "no artifact deleted");
    // The keys command refuses too rather than enrolling into an empty store.
    let r = f.gateway_cmd(&["keys", "list"]);
    assert_ne!(r.code, 0);
}

#[test]
fn tables_from_the_gateway_are_coloured_by_the_client_and_only_when_asked() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.wait_host_up("h1");
    // The gateway always answers plain text; `hostd --gateway` draws the
    // table itself when colour is asked for (here forced into a pipe).
    let plain = f.ops(&["hosts"]).ok().stdout;
    assert!(
        !plain.contains('\x1b') && plain.contains(" up "),
        "{plain:?}"
    );
    let color = f
        .ops_env(&["hosts"], None, &[("CLICOLOR_FORCE", "1")])
        .ok()
        .stdout;
    assert!(color.starts_with("\x1b[1mNAME "), "{color:?}");
    assert!(color.contains("\x1b[32mup\x1b[0m"), "{color:?}");
    assert_eq!(color.lines().count(), plain.lines().count(), "{color:?}");
    let none = f
        .ops_env(
            &["hosts"],
            None,
            &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
        )
        .ok()
        .stdout;
    assert!(!none.contains('\x1b'), "{none:?}");
    // `ssh-gateway keys list` prints its own table.
    let keys = f
        .gateway_cmd_env(&["keys", "list"], &[("CLICOLOR_FORCE", "1")])
        .ok()
        .stdout;
    assert!(keys.starts_with("\x1b[1mNAME "), "{keys:?}");
    let keys = f.gateway_cmd(&["keys", "list"]).ok().stdout;
    assert!(
        keys.starts_with("NAME ") && !keys.contains('\x1b'),
        "{keys:?}"
    );
}
