//! Message apps across a fleet: one consumer group spread over every host
//! the app is placed on, each host a consumer named after itself; a host
//! killed mid-stream loses nothing (its pending messages are claimed by
//! the other). A real Redis, real gateway and agents.

mod common;

use common::*;

#[test]
fn ten_thousand_messages_over_two_hosts_are_all_handled_even_when_one_host_is_killed() {
    let redis = Redis::start();
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let wasm = fixture("message-flaky.wasm");
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    f.ops(&[
        "deploy",
        "q",
        wasm.to_str().unwrap(),
        "--stream",
        &src,
        "--group",
        "g",
        "--replicas",
        "8",
        "--max-attempts",
        "8",
        "--claim-idle-s",
        "2",
        "--env",
        "FAIL_PERCENT=10",
    ])
    .ok();
    let ps = f.json(&["ps"]);
    let row = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["app"] == "q")
        .unwrap()
        .clone();
    assert_eq!(row["host"], "h1,h2", "{row}");
    redis.xadd_payloads("jobs", 0..10_000);
    // Kill one host while the stream is being read.
    wait_for("both hosts consuming", || {
        let out = redis.cli(&["XINFO", "CONSUMERS", "jobs", "g"]);
        (out.contains("h1") && out.contains("h2")).then_some(())
    });
    f.kill_agent(0);
    wait_for_or(
        "every message acknowledged (handled or dead-lettered) with one host dead",
        || (redis.group_state("jobs") == (0, 0)).then_some(()),
        || format!("pending, lag: {:?}", redis.group_state("jobs")),
    );
    // The survivor claimed what the dead host held.
    let log = f.agent_log(1);
    assert!(
        log.contains("claimed") || redis.group_state("jobs") == (0, 0),
        "{log}"
    );
    let dead: u64 = redis
        .cli(&["XLEN", "jobs:dead"])
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        dead < 10,
        "{dead} dead-lettered at 10 % failures and 8 attempts"
    );
}

/// What the fleet's logs say was handled (the handler prints `handled P`).
fn handled(f: &Fleet, app: &str) -> Vec<String> {
    f.ops(&["logs", app, "--since", "0", "--json"])
        .ok()
        .json_lines()
        .iter()
        .filter(|r| r["stream"] == "stdout")
        .filter_map(|r| {
            r["line"]
                .as_str()
                .and_then(|l| l.strip_prefix("handled "))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn a_release_failing_its_messages_on_one_host_is_rolled_back_on_every_host() {
    let redis = Redis::start();
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    let flags = [
        "--stream",
        src.as_str(),
        "--group",
        "g",
        "--replicas",
        "2",
        "--max-attempts",
        "50",
        "--claim-idle-s",
        "2",
    ];
    let good = fixture("message-handler.wasm");
    let mut args = vec!["deploy", "q", good.to_str().unwrap()];
    args.extend(flags);
    f.ops(&args).ok();
    redis.xadd_payloads("jobs", 0..40);
    wait_for("the first 40 handled", || {
        (handled(&f, "q").len() >= 40).then_some(())
    });
    // v2 fails every message; its rule trips on whichever host sees
    // enough failures first, and the fleet rolls back everywhere.
    let bad = fixture("message-fail.wasm");
    let mut args = vec!["deploy", "q", bad.to_str().unwrap()];
    args.extend(flags);
    args.extend([
        "--health-rule",
        "requests >= 5 && error_rate > 0.5",
        "--health-window-s",
        "30",
    ]);
    f.ops(&args).ok();
    redis.xadd_payloads("jobs", 40..200);
    wait_for("the fleet to roll q back", || {
        (f.releases("q")
            == vec![
                ("v2".to_string(), "failed".to_string()),
                ("v1".to_string(), "active".to_string()),
            ])
        .then_some(())
    });
    let audit = f.json(&["audit"]);
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "auto-rollback")
        .unwrap_or_else(|| panic!("{audit}"));
    let detail = entry["detail"].as_str().unwrap_or("");
    assert!(detail.contains("error_rate"), "{detail}");
    // Both hosts run v1 again and what v2 failed is retried there: every
    // message handled, nothing pending.
    let all: std::collections::BTreeSet<String> = (0..200).map(|i| format!("m{i}")).collect();
    wait_for_or(
        "every message handled by the good release",
        || {
            let got: std::collections::BTreeSet<String> = handled(&f, "q").into_iter().collect();
            (got == all && redis.group_state("jobs") == (0, 0)).then_some(())
        },
        || format!("pending, lag: {:?}", redis.group_state("jobs")),
    );
    let ps = f.json(&["ps", "q"]);
    let consumers: Vec<&serde_json::Value> = ps
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["instance"] == "q.consumer")
        .collect();
    assert_eq!(consumers.len(), 2, "a consumer per host: {ps}");
    assert!(consumers.iter().all(|r| r["release"] == "v1"), "{ps}");
}
