//! `logs --where` and health rules, through a real daemon.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;

#[test]
fn logs_where_keeps_only_matching_records() {
    let h = Hostd::start();
    h.deploy("t", "ticker.wasm", &["--env", "TICK_MS=20"]);
    h.wait_log("t", "ten ticks", |r| line(r).starts_with("tick 10 "));
    let all = h.logs("t");
    let stderr = h
        .run(&[
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
    assert!(!stderr.is_empty());
    assert!(stderr.iter().all(|r| r["stream"] == "stderr"), "{stderr:?}");
    assert!(stderr.len() < all.len());
    let fives = h
        .run(&[
            "logs",
            "t",
            "--since",
            "0",
            "--json",
            "--where",
            "line ~ /^tick [0-9]*5 / && seq > 0",
        ])
        .ok()
        .json_lines();
    assert!(!fives.is_empty());
    assert!(
        fives.iter().all(|r| {
            let l = line(r);
            l.starts_with("tick ") && l.split(' ').nth(1).unwrap().ends_with('5')
        }),
        "{fives:?}"
    );
    // --tail N counts matching records (ticks 5, 10 and 15 warn).
    h.wait_log("t", "the third warning", |r| {
        line(r).starts_with("warn: tick 15")
    });
    let last3 = h
        .run(&[
            "logs",
            "t",
            "--tail",
            "3",
            "--json",
            "--where",
            "line contains \"warn\"",
        ])
        .ok()
        .json_lines();
    assert_eq!(last3.len(), 3, "{last3:?}");
    assert!(last3.iter().all(|r| line(r).starts_with("warn: tick")));
    let seqs: Vec<u64> = last3.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");
}

#[test]
fn following_with_where_streams_only_matches() {
    let h = Hostd::start();
    h.deploy("t", "ticker.wasm", &["--env", "TICK_MS=20"]);
    let mut f = h
        .cmd()
        .args([
            "logs",
            "t",
            "-f",
            "--tail",
            "0",
            "--json",
            "--where",
            "stream == \"stderr\" || stream == \"system\"",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::new(f.stdout.take().unwrap());
    for _ in 0..5 {
        let v: Value = serde_json::from_str(&lines.wait_for("a warning", |_| true)).unwrap();
        assert_ne!(v["stream"], "stdout", "{v}");
    }
    let _ = f.kill();
    let _ = f.wait();
}

#[test]
fn a_bad_where_expression_is_refused_with_its_position() {
    let h = Hostd::start();
    h.deploy("t", "ticker.wasm", &[]);
    for (expr, want) in [
        ("line > 3", "1:"),
        ("stream == ", "1:11"),
        ("seq ~ \"x\"", "1:"),
    ] {
        let r = h.run(&["logs", "t", "--where", expr]);
        assert_eq!(
            r.code, 2,
            "a usage error, as a bad --since: {expr}: {}",
            r.stderr
        );
        assert!(
            r.stderr
                .starts_with(&format!("error: invalid --where expression at {want}")),
            "{expr}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains('^'),
            "a caret under the source: {}",
            r.stderr
        );
    }
}

#[test]
fn a_tripped_health_rule_rolls_an_http_app_back_and_names_the_values() {
    let h = Hostd::start();
    h.deploy("web", "http-hello.wasm", &[]);
    h.deploy(
        "web",
        "http-hello.wasm",
        &[
            "--env",
            "GREETING=v2",
            "--health-rule",
            "errors > 2",
            "--health-window-s",
            "60",
        ],
    );
    assert_eq!(
        get(&h.http_addr(), "web.localhost", "/").text(),
        "hello v2 path=/\n"
    );
    for _ in 0..5 {
        assert_eq!(
            get(&h.http_addr(), "web.localhost", "/status/500").status,
            500
        );
    }
    wait_for("the rule to roll web back", || {
        (h.releases("web")
            == vec![
                ("v2".to_string(), "failed".to_string()),
                ("v1".to_string(), "active".to_string()),
            ])
        .then_some(())
    });
    let rel = h.json(&["releases", "web"]);
    let detail = rel[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("health rule `errors > 2` tripped: errors="),
        "{detail}"
    );
    assert_eq!(
        get(&h.http_addr(), "web.localhost", "/").text(),
        "hello world path=/\n"
    );
    let audit = h.json(&["audit"]);
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "health-rollback")
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(
        entry["detail"].as_str().unwrap().contains("errors > 2"),
        "{entry}"
    );
    h.wait_log("web", "the system record", |r| {
        r["stream"] == "system" && line(r).contains("tripped")
    });
}

#[test]
fn a_restart_rule_rolls_a_worker_back() {
    let h = Hostd::start();
    h.deploy("w", "ticker.wasm", &["--env", "TICK_MS=50"]);
    h.deploy(
        "w",
        "ticker.wasm",
        &[
            "--env",
            "TICK_MS=50",
            "--env",
            "EXIT_AFTER=1",
            "--health-rule",
            "restarts >= 2",
        ],
    );
    wait_for("the rule to roll w back", || {
        (h.releases("w")
            == vec![
                ("v2".to_string(), "failed".to_string()),
                ("v1".to_string(), "active".to_string()),
            ])
        .then_some(())
    });
    let rel = h.json(&["releases", "w"]);
    assert!(
        rel[0]["detail"].as_str().unwrap().contains("restarts="),
        "{rel}"
    );
    h.wait_running("w", "v1", 1);
}

#[test]
fn a_bad_health_rule_is_refused_at_deploy() {
    let h = Hostd::start();
    let t = fixture("ticker.wasm");
    let r = h.run(&[
        "deploy",
        "w",
        t.to_str().unwrap(),
        "--health-rule",
        "error_rate >",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("manifest field `health.rule`"),
        "{}",
        r.stderr
    );
    let r = h.run(&[
        "deploy",
        "w",
        t.to_str().unwrap(),
        "--health-rule",
        "latency > 3",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("`health.rule`"), "{}", r.stderr);
    assert_eq!(
        h.json(&["ps"]).as_array().unwrap().len(),
        0,
        "nothing deployed"
    );
}
