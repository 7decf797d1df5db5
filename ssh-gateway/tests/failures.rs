//! What goes wrong: dead hosts, a dead gateway, strangers, changed keys.

mod common;

use common::*;

#[test]
fn kill_9_of_a_host_mid_deploy_fails_the_deploy_and_switches_nothing() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "api",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "2",
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.wait_running("api", "v1", 2);
    let audit_before = f.json(&["audit"]).as_array().unwrap().len();
    // Cut h2 once it has part of the artifact, so its next fetch can resume.
    let deploy = deploy_big_until(&f, "api", "h2", "fetched 25%");
    f.kill_agent(1);
    let (code, stderr) = deploy.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("api v2 was not deployed: staging failed on h2"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was switched"), "{stderr}");
    assert_eq!(
        f.releases("api"),
        vec![
            ("v2".into(), "failed".into()),
            ("v1".into(), "active".into())
        ]
    );
    // h1 staged v2 but never switched: it still runs v1.
    let ps = f.local(0, &["ps", "api", "--json"]).ok().json();
    assert!(
        ps.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "running")
            .all(|r| r["release"] == "v1"),
        "{ps}"
    );
    let audit = f.json(&["audit"]);
    assert!(
        audit.as_array().unwrap().len() > audit_before,
        "the failed deploy is audited"
    );
    // h2 returns; deploying the same artifact again resumes its cut fetch.
    f.start_agent(1, &[]);
    f.wait_host_up("h2");
    let r = f.ops(&["deploy", "api", f.path("big.wasm").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("h2: resuming fetch at"),
        "the fetch starts over instead of resuming:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("h1: artifact already here"),
        "{}",
        r.stderr
    );
    f.wait_running("api", "v3", 2);
}

#[test]
fn kill_9_of_the_gateway_mid_deploy_loses_no_release_placement_or_audit_entry() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "api",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "2",
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.ops(&["scale", "api", "3"]).ok();
    f.wait_running("api", "v1", 3);
    let spread = f.spread("api");
    let audit_before = f.json(&["audit"]);
    let deploy = deploy_big_until(&f, "api", "h1", "fetching");
    f.kill_gateway();
    let (code, _) = deploy.finish();
    assert_ne!(code, Some(0));
    f.start_gateway();
    f.wait_host_up("h1");
    f.wait_host_up("h2");
    f.assert_interrupted_deploy_lost_nothing(3, &spread, &audit_before);
    // The fleet still deploys.
    f.ops(&[
        "deploy",
        "api",
        fixture("ticker.component.wasm").to_str().unwrap(),
    ])
    .ok();
    f.wait_running("api", "v3", 3);
}

#[test]
fn a_silent_host_goes_down_its_replicas_move_and_placement_converges_when_it_returns() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "w",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "4",
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.wait_running("w", "v1", 4);
    f.kill_agent(1);
    wait_for("h2 down", || {
        (f.host_state("h2").as_deref() == Some("down")).then_some(())
    });
    wait_for("all four replicas on h1", || {
        let s = f.spread("w");
        (s.get("h1") == Some(&4) && s.len() == 1).then_some(())
    });
    let audit = f.json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "host-down"),
        "{audit}"
    );
    f.start_agent(1, &[]);
    f.wait_host_up("h2");
    wait_for("placement to converge again", || {
        let s = f.spread("w");
        (s.get("h1") == Some(&2) && s.get("h2") == Some(&2)).then_some(())
    });
}

#[test]
fn viewer_unknown_and_host_keys_are_refused_and_audited() {
    // Refusals before login are written once a second here (a minute by default).
    let mut f = Fleet::start_with(&["--audit-refusals-every-s", "1"]);
    f.add_agent("h1", &[]);
    f.ops(&["deploy", "w", fixture("ticker.wasm").to_str().unwrap()])
        .ok();
    // A viewer reads, and is refused everything else.
    let r = f.ssh("victor", &["ps", "--json"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for cmd in [
        vec!["scale", "w", "3"],
        vec!["rollback", "w"],
        vec!["rm", "w", "--confirm", "w"],
    ] {
        let r = f.ssh("victor", &cmd, None);
        assert_eq!(r.code, 1, "{cmd:?}");
        assert!(
            r.stderr.contains("refused: the key victor is a viewer"),
            "{}",
            r.stderr
        );
    }
    // An unknown key never gets in.
    keygen(f.dir.path(), "mallory");
    let r = f.ssh("mallory", &["ps"], None);
    assert_eq!(r.code, 255, "{}", r.stderr);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    // A host key may not run commands; an operator key may not open a tunnel.
    let r = f.ssh("h1-host", &["ps"], None);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("enrolled as a host"), "{}", r.stderr);
    let r = f.ssh_subsystem("alice", b"");
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("only host keys may open the agent tunnel"),
        "{}",
        r.stderr
    );
    wait_for("the unknown key's refusal to be written", || {
        f.ops(&["audit"])
            .stdout
            .contains("unknown key SHA256:")
            .then_some(())
    });
    let audit = f.json(&["audit", "--tail", "50"]);
    let refused: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["detail"].as_str().unwrap().starts_with("refused"))
        .map(|a| {
            format!(
                "{} {}",
                a["key"].as_str().unwrap(),
                a["action"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "victor scale",
        "victor rollback",
        "victor rm",
        "h1 exec",
        "alice tunnel",
    ] {
        assert!(
            refused.iter().any(|r| r == want),
            "no refusal `{want}` in {refused:?}"
        );
    }
    assert!(
        refused
            .iter()
            .any(|r| r.starts_with("unauthenticated@127.0.0.1") && r.ends_with(" auth")),
        "{refused:?}"
    );
    // Nothing changed.
    assert_eq!(f.releases("w"), vec![("v1".into(), "active".into())]);
}

#[test]
fn a_changed_gateway_host_key_is_refused_loudly() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.ops(&[
        "deploy",
        "w",
        fixture("ticker.wasm").to_str().unwrap(),
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.wait_running("w", "v1", 1);
    f.stop_gateway();
    let other = keygen(f.dir.path(), "impostor-host-key");
    f.use_host_key(other);
    f.start_gateway();
    // The agent refuses to talk to a gateway with another key, and says why.
    // The refusal comes before authentication, so the session it ends
    // can never have joined; the agent then waits its longest backoff.
    wait_for("the agent to refuse the new key", || {
        f.agent_log(0)
            .contains("THE GATEWAY'S HOST KEY HAS CHANGED")
            .then_some(())
    });
    assert_ne!(
        f.host_state("h1").as_deref(),
        Some("up"),
        "the agent must not join"
    );
    // Its apps keep running meanwhile.
    let ps = f.local(0, &["ps", "--json"]).ok().json();
    assert_eq!(ps[0]["state"], "running");
    // The CLI checks known_hosts the same way.
    let r = f.ops(&["ps"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("THE GATEWAY'S HOST KEY HAS CHANGED"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_malformed_tunnel_frame_closes_that_tunnel_not_the_gateway() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    // Speak garbage on the tunnel subsystem with a real host key.
    let garbage = b"\x00\x00\x00\x10\x01{not json at all}\xff\xff\xff\xff";
    let r = f.ssh_subsystem("h1-host", garbage);
    assert!(
        String::from_utf8_lossy(r.stdout.as_bytes()).contains("malformed hello"),
        "{r:?}"
    );
    // The gateway and the real agent carry on.
    assert_eq!(f.host_state("h1").as_deref(), Some("up"));
    f.ops(&["deploy", "w", fixture("ticker.wasm").to_str().unwrap()])
        .ok();
    f.wait_running("w", "v1", 1);
}

#[test]
fn a_local_rollback_while_the_gateway_is_away_is_reported_and_adopted() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "api",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "2",
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.ops(&[
        "deploy",
        "api",
        fixture("ticker.component.wasm").to_str().unwrap(),
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.wait_running("api", "v2", 2);
    f.stop_gateway();
    // Break-glass on h1: rollback works without the gateway; deploy does not.
    let r = f.local(0, &["rollback", "api", "--json"]).ok().json();
    assert_eq!(r["to"], "v1");
    let r = f.local(
        0,
        &["deploy", "api", fixture("ticker.wasm").to_str().unwrap()],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("managed by the gateway"), "{}", r.stderr);
    f.start_gateway();
    f.wait_host_up("h1");
    f.wait_host_up("h2");
    let want = vec![
        ("v2".to_string(), "superseded".to_string()),
        ("v1".to_string(), "active".to_string()),
    ];
    wait_for_or(
        "the fleet to follow the local rollback",
        || (f.releases("api") == want).then_some(()),
        || {
            format!(
                "releases {:?}, hosts {}",
                f.releases("api"),
                f.ops(&["ps", "api"]).stdout
            )
        },
    );
    f.wait_running("api", "v1", 2);
    let audit = f.json(&["audit"]);
    let entries: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["app"] == "api" && a["action"] == "rollback")
        .map(|a| {
            (
                a["key"].as_str().unwrap().to_string(),
                a["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        entries
            .iter()
            .any(|(k, d)| k.starts_with("local:") && k.ends_with("@h1") && d.contains("v2 -> v1")),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|(k, d)| k == "gateway" && d.contains("following a local rollback on h1")),
        "{entries:?}"
    );
}
