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
