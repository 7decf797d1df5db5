//! Filters and health rules across a fleet: `--where` runs on the hosts,
//! and a rule that trips on one host rolls the release back everywhere.

mod common;

use common::*;

#[test]
fn where_runs_on_the_hosts_so_only_matches_cross_the_tunnels() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "t",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "2",
        "--env",
        "TICK_MS=20",
    ])
    .ok();
    f.wait_running("t", "v1", 2);
    wait_for("ticks on both hosts", || {
        let recs = f
            .ops(&[
                "logs",
                "t",
                "--since",
                "0",
                "--json",
                "--where",
                "line contains \"tick 12 \"",
            ])
            .ok()
            .json_lines();
        (recs.iter().filter(|r| r["stream"] == "stdout").count() >= 2).then_some(())
    });
    let all = f
        .ops(&["logs", "t", "--since", "0", "--json"])
        .ok()
        .json_lines();
    let warn = f
        .ops(&[
            "logs",
            "t",
            "--since",
            "0",
            "--json",
            "--where",
            "stream == \"stderr\"",
        ])
        .ok()
        .json_lines();
    assert!(!warn.is_empty());
    assert!(warn.iter().all(|r| r["stream"] == "stderr"), "{warn:?}");
    assert!(
        warn.len() * 3 < all.len(),
        "{} of {}",
        warn.len(),
        all.len()
    );
    // Each host sent exactly its matching records: the filter ran there.
    for (i, h) in ["h1", "h2"].iter().enumerate() {
        let mine = warn.iter().filter(|r| r["host"] == *h).count();
        assert!(mine > 0, "{h} sent nothing");
        let log = f.agent_log(i);
        assert!(
            log.lines().any(|l| l.contains("logs request answered")
                && l.contains(&format!("sent={mine} "))
                && l.contains("stderr")),
            "{h} should have answered the filtered request with {mine} records:\n{}",
            log.lines()
                .filter(|l| l.contains("logs request answered"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let r = f.ops(&["logs", "t", "--where", "line > 3"]);
    assert_eq!(r.code, 2, "a usage error, like a bad --since");
    assert!(
        r.stderr.contains("invalid --where expression at 1:"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_rule_tripped_on_one_host_rolls_the_release_back_on_every_host() {
    let mut f = Fleet::start();
    let a = f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "web",
        fixture("http-hello.wasm").to_str().unwrap(),
        "--replicas",
        "2",
    ])
    .ok();
    f.ops(&[
        "deploy",
        "web",
        fixture("http-hello.wasm").to_str().unwrap(),
        "--env",
        "GREETING=v2",
        "--health-rule",
        "errors > 1",
        "--health-window-s",
        "60",
    ])
    .ok();
    let h1 = format!("127.0.0.1:{}", f.agents[a].http);
    assert_eq!(get(&h1, "web.localhost", "/").text(), "hello v2 path=/\n");
    for _ in 0..4 {
        assert_eq!(get(&h1, "web.localhost", "/status/503").status, 503);
    }
    wait_for("the fleet to roll web back", || {
        (f.releases("web")
            == vec![
                ("v2".to_string(), "failed".to_string()),
                ("v1".to_string(), "active".to_string()),
            ])
        .then_some(())
    });
    for ag in &f.agents {
        let addr = format!("127.0.0.1:{}", ag.http);
        wait_for("v1 served on every host", || {
            (get(&addr, "web.localhost", "/").text() == "hello world path=/\n").then_some(())
        });
    }
    let audit = f.json(&["audit"]);
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "auto-rollback")
        .unwrap_or_else(|| panic!("{audit}"));
    let detail = entry["detail"].as_str().unwrap();
    assert!(
        detail.contains("health rule `errors > 1` tripped: errors="),
        "{detail}"
    );
    assert!(detail.contains("on h1"), "{detail}");
}
