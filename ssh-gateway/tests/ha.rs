//! A gateway that survives its machine: two real gateways on one real
//! PostgreSQL (started by the test, unprivileged, on a free port in a temp
//! dir), one active holding the lease and one standby.

mod common;

use std::time::Instant;

use common::*;

/// Waits until `log()` contains `text`.
fn wait_log(what: &str, log: impl Fn() -> String, text: &str) {
    wait_for(what, || log().contains(text).then_some(()));
}

/// OpenSSH to 127.0.0.1:`port` with `key`, printing the server's banner
/// (the common `SSH_OPTIONS` quiet it with `LogLevel=ERROR`).
fn openssh(port: u16, key: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("ssh");
    c.args(["-p", &port.to_string(), "-i"]).arg(key).args([
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    ]);
    c.args(args);
    c
}

/// Waits until the first gateway holds the lease.
fn wait_active(f: &Fleet) {
    wait_log(
        "the first gateway to be active",
        || f.gateway_log(),
        "this gateway is active",
    );
}

#[test]
fn the_standby_refuses_naming_the_active_and_takes_over_when_it_dies_mid_deploy() {
    let pg = Postgres::start();
    let mut f = Fleet::start_on_postgres(&pg.database("fleet"), &[]);
    wait_active(&f);
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.start_standby();
    wait_log(
        "the second gateway to be a standby",
        || f.standby_log(),
        "standby: another gateway holds the lease",
    );
    f.ops(&[
        "deploy",
        "api",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "3",
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.wait_running("api", "v1", 3);

    // The standby refuses an operator's command, and says who is active.
    let standby = f.standby_addr();
    let r = run(
        std::process::Command::new(hostd_bin())
            .args([
                "--gateway",
                &format!("alice@{standby}"),
                "--accept-new-host-key",
                "ps",
            ])
            .env("HOME", f.path("home"))
            .env_remove("CRANEFLEET_GATEWAY"),
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("is a standby; the active gateway is")
            && r.stderr.contains(&format!("use --gateway {}", f.addr())),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    // OpenSSH prints the banner: a plain `ssh` user is told too.
    let standby_port = f.standby_port.unwrap();
    let mut ssh = openssh(standby_port, &f.path("alice"), &["alice@127.0.0.1", "ps"]);
    let r = run(&mut ssh, None);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("is a standby; the active gateway is") && r.stderr.contains(&f.addr()),
        "{}",
        r.stderr
    );
    // A host's tunnel too: OpenSSH opening the tunnel subsystem with an
    // enrolled host's key is refused, told where to go.
    let mut tunnel = openssh(
        standby_port,
        &f.agents[0].key,
        &["-s", "h1@127.0.0.1", "cranefleet-tunnel"],
    );
    let r = run(&mut tunnel, Some(b""));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is a standby"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing of the fleet: {}", r.stdout);

    let spread = f.spread("api");
    let audit_before = f.json(&["audit"]);

    // kill -9 of the active gateway while hosts fetch a new release.
    let deploy = deploy_big_until(&f, "api", "h1", "fetching");
    f.kill_gateway();
    let killed = Instant::now();
    wait_log(
        "the standby to take the lease",
        || f.standby_log(),
        "this gateway is active",
    );
    let took = killed.elapsed();
    eprintln!(
        "standby took the lease {:.1} s after kill -9 of the active gateway",
        took.as_secs_f64()
    );
    let (code, out) = deploy.finish();
    assert_ne!(
        code,
        Some(0),
        "the interrupted deploy is reported failed: {out}"
    );
    f.wait_host_up("h1");
    f.wait_host_up("h2");
    eprintln!(
        "hosts back {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );

    // Never half-switched, nothing lost: the interrupted release failed,
    // v1 runs everywhere as placed, the audit trail is whole.
    f.assert_interrupted_deploy_lost_nothing(3, &spread, &audit_before);

    // The new active gateway has v1's artifact (from the database): a
    // new host gets it.
    f.add_agent("h3", &[]);
    f.ops(&["scale", "api", "6"]).ok();
    f.wait_running("api", "v1", 6);
    assert!(f.spread("api").contains_key("h3"), "{:?}", f.spread("api"));
    // And the fleet deploys.
    f.ops(&[
        "deploy",
        "api",
        fixture("ticker.component.wasm").to_str().unwrap(),
    ])
    .ok();
    f.wait_running("api", "v3", 6);

    // The old gateway, back, is a standby naming the new active one.
    f.start_gateway();
    wait_log(
        "the old gateway to come back as a standby",
        || f.gateway_log(),
        "standby: another gateway holds the lease",
    );
    let r = run(
        std::process::Command::new(hostd_bin())
            .args([
                "--gateway",
                &format!("alice@{}", f.addr()),
                "--accept-new-host-key",
                "ps",
            ])
            .env("HOME", f.path("home"))
            .env_remove("CRANEFLEET_GATEWAY"),
        None,
    );
    assert!(
        r.stderr.contains(&format!("use --gateway {standby}")),
        "{}",
        r.stderr
    );
    // A clean stop of the active gateway lets the lease go at once.
    let stopped = Instant::now();
    f.standby().stop();
    wait_log(
        "the old gateway to take over after a clean stop",
        || f.gateway_log(),
        "this gateway is active",
    );
    eprintln!(
        "after a clean stop the other gateway was active in {:.1} s",
        stopped.elapsed().as_secs_f64()
    );
    f.wait_host_up("h3");
    f.wait_running("api", "v3", 6);
}

#[test]
fn an_active_gateway_that_cannot_renew_its_lease_stops_and_a_restart_serves_again() {
    let mut pg = Postgres::start();
    let mut f = Fleet::start_on_postgres(&pg.database("fleet"), &["--lease-secs", "3"]);
    wait_active(&f);
    f.add_agent("h1", &[]);
    // The database goes away: the gateway cannot know whether a standby
    // took over, so it stops before its lease could lapse.
    pg.stop();
    let stopped = wait_for("the gateway to stop", || {
        f.gateway().child.try_wait().ok().flatten()
    });
    assert_eq!(stopped.code(), Some(1));
    let log = f.gateway_log();
    assert!(
        log.contains("this gateway lost the lease (could not renew the lease within 3 s"),
        "{log}"
    );
    // The host keeps its apps' state; once the database is back, the
    // restarted gateway is active again and the host returns.
    pg.restart();
    f.start_gateway();
    wait_log(
        "the restarted gateway to be active",
        || f.gateway_log(),
        "this gateway is active",
    );
    f.wait_host_up("h1");
}

#[test]
fn a_standby_serves_metrics_saying_it_is_not_active() {
    let pg = Postgres::start();
    let port = free_port();
    let mut f = Fleet::start_on_postgres(&pg.database("fleet"), &[]);
    wait_active(&f);
    f.gateway_args
        .extend(["--metrics".to_string(), format!("127.0.0.1:{port}")]);
    f.start_standby();
    wait_log(
        "the second gateway to be a standby",
        || f.standby_log(),
        "standby: another gateway holds the lease",
    );
    let scrape = get(&format!("127.0.0.1:{port}"), "localhost", "/metrics").text();
    assert!(scrape.contains("cranefleet_gateway_active 0"), "{scrape}");
    assert!(!scrape.contains("cranefleet_hosts{"), "{scrape}");
    f.kill_gateway();
    wait_log(
        "the standby to take over",
        || f.standby_log(),
        "this gateway is active",
    );
    let scrape = get(&format!("127.0.0.1:{port}"), "localhost", "/metrics").text();
    assert!(scrape.contains("cranefleet_gateway_active 1"), "{scrape}");
    assert!(scrape.contains("cranefleet_hosts{"), "{scrape}");
}

#[test]
fn a_restarted_gateway_takes_its_own_lease_back_and_a_second_one_at_its_address_is_refused() {
    let pg = Postgres::start();
    // A 30 s lease: taken back after one missed renewal (7 s), not after
    // it lapses; the log says which.
    let mut f = Fleet::start_on_postgres(&pg.database("fleet"), &["--lease-secs", "30"]);
    wait_active(&f);
    f.add_agent("h1", &[]);
    f.kill_gateway();
    let t = Instant::now();
    f.start_gateway();
    wait_log(
        "the restarted gateway to be active",
        || f.gateway_log(),
        "took back the lease of this gateway's previous run",
    );
    eprintln!(
        "restarted gateway active after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    f.wait_host_up("h1");

    // A second process claiming the same address while the first lives
    // never becomes active: two gateways must not both drive the fleet.
    let addr = f.addr();
    f.gateway_args.extend(["--advertise".to_string(), addr]);
    f.start_standby();
    wait_log(
        "the duplicate to be refused",
        || f.standby_log(),
        "another running gateway advertises the same address",
    );
    assert!(!f.standby_log().contains("this gateway is active"));
    assert!(f.gateway().is_running());
    f.wait_host_up("h1");
}
