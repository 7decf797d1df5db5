//! Message apps: Spin's Redis trigger interface, fed by a real Redis
//! (pub/sub and a streams consumer group), on a real hostd.

mod common;

use std::collections::BTreeSet;

use common::*;

/// The payloads `app` printed `handled X` for, counting repeats.
fn handled(h: &Hostd, app: &str) -> Vec<String> {
    h.logs(app)
        .iter()
        .filter(|r| r["stream"] == "stdout")
        .filter_map(|r| line(r).strip_prefix("handled ").map(str::to_string))
        .collect()
}

fn xadd(redis: &Redis, stream: &str, from: usize, to: usize) {
    redis.xadd_payloads(stream, from..to);
}

fn pending(redis: &Redis, stream: &str, group: &str) -> u64 {
    let out = redis.cli(&["XPENDING", stream, group]);
    out.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

#[test]
fn a_stream_group_handles_every_message_from_the_streams_start_and_acknowledges_each_once() {
    let redis = Redis::start();
    let h = Hostd::start();
    xadd(&redis, "jobs", 0, 300); // before the deploy: handled too
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    let out = h.deploy(
        "worker",
        "message-handler.wasm",
        &["--stream", &src, "--group", "g", "--replicas", "4"],
    );
    assert_eq!(
        out["kind"], "message",
        "inferred from the trigger and the export"
    );
    xadd(&redis, "jobs", 300, 600);
    let all: BTreeSet<String> = (0..600).map(|i| format!("m{i}")).collect();
    wait_for("600 messages handled", || {
        let got: BTreeSet<String> = handled(&h, "worker").into_iter().collect();
        (got == all).then_some(())
    });
    wait_for("nothing pending", || {
        (pending(&redis, "jobs", "g") == 0).then_some(())
    });
    let times = handled(&h, "worker");
    assert_eq!(
        times.len(),
        600,
        "each handled once: {} handlings",
        times.len()
    );
    let row = h.app("worker");
    assert_eq!(row["kind"], "message");
    assert!(
        row["detail"].as_str().unwrap_or("").contains("handled 600"),
        "{row}"
    );
    // ps: what waits (the group's backlog, asked every second), what runs,
    // what was done.
    let row = wait_for("ps to show an empty backlog", || {
        let row = h.app("worker");
        (row["messages"]["pending"] == 0).then_some(row)
    });
    let m = &row["messages"];
    assert_eq!(m["handled"], 600, "{row}");
    assert_eq!(m["dead_lettered"], 0, "{row}");
    assert_eq!(m["in_flight"], 0, "{row}");
    assert!(m["handled_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
    assert_eq!(row["state"], "serving");
    // The host's consumer is its instance row.
    let inst = h.json(&["ps", "worker"]);
    let consumer = inst
        .as_array()
        .and_then(|r| r.iter().find(|r| r["instance"] == "worker.consumer"))
        .unwrap_or_else(|| panic!("no consumer row: {inst}"));
    assert_eq!(consumer["messages"]["handled"], 600);
    // Each handling is a record of the `message` stream, which the filter
    // language names.
    let records = h
        .run(&[
            "logs",
            "worker",
            "--since",
            "0",
            "--json",
            "--where",
            "stream == message",
        ])
        .ok()
        .json_lines();
    assert_eq!(records.len(), 600, "one record per message handled");
    assert!(
        records.iter().all(|r| r["stream"] == "message"
            && line(r).starts_with("message jobs ")
            && line(r).contains(" attempt 1: ok in ")),
        "{:?}",
        records.first()
    );
}

#[test]
fn ps_shows_the_backlog_and_the_handlers_under_way() {
    let redis = Redis::start();
    let h = Hostd::start();
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    h.deploy(
        "slow",
        "message-slow.wasm",
        &[
            "--stream",
            &src,
            "--group",
            "g",
            "--replicas",
            "2",
            "--env",
            "SLEEP_MS=100",
        ],
    );
    xadd(&redis, "jobs", 0, 40);
    // 40 messages at 2 × 10/s take about 2 s: the backlog is seen waiting,
    // then draining.
    let busy = wait_for("a backlog and two handlers under way", || {
        let row = h.app("slow");
        let m = &row["messages"];
        (m["pending"].as_u64().unwrap_or(0) > 2 && m["in_flight"] == 2).then_some(row)
    });
    assert_eq!(
        busy["running"], 2,
        "RUNNING is the handlers under way: {busy}"
    );
    assert!(
        busy["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("pending "),
        "{busy}"
    );
    wait_for("the backlog drained", || {
        let row = h.app("slow");
        (row["messages"]["pending"] == 0 && row["messages"]["handled"] == 40).then_some(())
    });
}

#[test]
fn redis_going_away_shows_the_app_degraded_and_nothing_unhandled_is_acknowledged() {
    let mut redis = Redis::start_durable();
    let h = Hostd::start();
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    h.deploy(
        "worker",
        "message-handler.wasm",
        &["--stream", &src, "--group", "g", "--replicas", "4"],
    );
    xadd(&redis, "jobs", 0, 100);
    wait_for("the first 100 handled", || {
        (handled(&h, "worker").len() == 100 && pending(&redis, "jobs", "g") == 0).then_some(())
    });
    redis.stop();
    let row = wait_for("ps to show the app degraded", || {
        let row = h.app("worker");
        (row["state"] == "degraded").then_some(row)
    });
    let detail = row["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(&format!("127.0.0.1:{}", redis.port)) && detail.contains("reconnecting"),
        "the reason names the source: {row}"
    );
    assert!(
        row["messages"].get("pending").is_none(),
        "an unknown backlog is not shown as a number: {row}"
    );
    // hostd lives on; the consumer comes back by itself.
    redis.restart();
    xadd(&redis, "jobs", 100, 200);
    let all: BTreeSet<String> = (0..200).map(|i| format!("m{i}")).collect();
    wait_for("every message handled after Redis came back", || {
        let got: BTreeSet<String> = handled(&h, "worker").into_iter().collect();
        (got == all && pending(&redis, "jobs", "g") == 0).then_some(())
    });
    assert_eq!(handled(&h, "worker").len(), 200, "each handled once");
    wait_for("serving again", || {
        (h.app("worker")["state"] == "serving").then_some(())
    });
    h.wait_log("worker", "the reconnection", |r| {
        line(r).contains("reconnecting in")
    });
}

#[test]
fn a_failing_handler_is_retried_then_dead_lettered_and_no_message_is_lost() {
    let redis = Redis::start();
    let h = Hostd::start();
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    h.deploy(
        "flaky",
        "message-flaky.wasm",
        &[
            "--stream",
            &src,
            "--group",
            "g",
            "--replicas",
            "4",
            "--max-attempts",
            "3",
            "--env",
            "FAIL_PERCENT=40",
        ],
    );
    xadd(&redis, "jobs", 0, 200);
    let all: BTreeSet<String> = (0..200).map(|i| format!("m{i}")).collect();
    let dead = |redis: &Redis| -> BTreeSet<String> {
        let out = redis.cli(&["XRANGE", "jobs:dead", "-", "+"]);
        let lines: Vec<&str> = out.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[0] == "payload")
            .map(|w| w[1].to_string())
            .collect()
    };
    wait_for("every message handled or dead-lettered", || {
        let ok: BTreeSet<String> = handled(&h, "flaky").into_iter().collect();
        let d = dead(&redis);
        (ok.union(&d).cloned().collect::<BTreeSet<_>>() == all && pending(&redis, "jobs", "g") == 0)
            .then_some(())
    });
    let ok: BTreeSet<String> = handled(&h, "flaky").into_iter().collect();
    let d = dead(&redis);
    assert!(
        ok.intersection(&d).next().is_none(),
        "a message both handled and dead"
    );
    // With 40 % failing and 3 attempts, about 6 % are dead-lettered.
    assert!(!d.is_empty() && d.len() < 60, "{} dead", d.len());
    let rec = h.wait_log("flaky", "a dead-letter record", |r| {
        line(r).contains("moved to jobs:dead after 3 attempts")
    });
    assert_eq!(rec["stream"], "system");
}

#[test]
fn a_channel_subscription_handles_what_is_published() {
    let redis = Redis::start();
    let h = Hostd::start();
    let src = format!("redis://127.0.0.1:{}/news", redis.port);
    h.deploy("news", "message-py.wasm", &["--subscribe", &src]);
    h.wait_log("news", "the subscription", |r| {
        line(r) == "subscribed to channel news"
    });
    let cmds: String = (0..20).map(|i| format!("PUBLISH news n{i}\n")).collect();
    redis.pipe(&cmds);
    let all: BTreeSet<String> = (0..20).map(|i| format!("n{i}")).collect();
    wait_for(
        "20 published messages handled by the Python handler",
        || {
            let got: BTreeSet<String> = handled(&h, "news").into_iter().collect();
            (got == all).then_some(())
        },
    );
}

#[test]
fn a_killed_host_handles_its_pending_messages_when_it_comes_back() {
    let redis = Redis::start();
    let mut h = Hostd::start();
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    h.deploy(
        "slow",
        "message-slow.wasm",
        &[
            "--stream",
            &src,
            "--group",
            "g",
            "--replicas",
            "4",
            "--env",
            "SLEEP_MS=200",
        ],
    );
    xadd(&redis, "jobs", 0, 100);
    wait_for("some handled", || {
        (handled(&h, "slow").len() >= 8).then_some(())
    });
    h.crash_and_restart();
    let all: BTreeSet<String> = (0..100).map(|i| format!("m{i}")).collect();
    wait_for("every message handled after the crash", || {
        let got: BTreeSet<String> = handled(&h, "slow").into_iter().collect();
        (got == all && pending(&redis, "jobs", "g") == 0).then_some(())
    });
    h.wait_log("slow", "the recovery", |r| {
        line(r).contains("left pending by an earlier run")
    });
}

#[test]
fn an_unreachable_source_a_non_handler_or_a_bad_name_is_refused_and_changes_nothing() {
    let redis = Redis::start();
    let h = Hostd::start();
    let good = format!("redis://127.0.0.1:{}/jobs", redis.port);
    h.deploy(
        "q",
        "message-handler.wasm",
        &["--stream", &good, "--group", "g"],
    );
    let before = h.releases("q");
    let dead = format!("redis://127.0.0.1:{}/jobs", free_port());
    for (file, flags, says) in [
        (
            "message-handler.wasm",
            vec!["--stream", dead.as_str(), "--group", "g"],
            "cannot reach the message source redis://127.0.0.1:",
        ),
        (
            "http-hello.wasm",
            vec![
                "--kind",
                "message",
                "--stream",
                good.as_str(),
                "--group",
                "g",
            ],
            "must export fermyon:spin/inbound-redis",
        ),
        (
            "message-handler.wasm",
            vec!["--stream", "redis://127.0.0.1:1/bad name", "--group", "g"],
            "not a stream name",
        ),
        (
            "message-handler.wasm",
            vec!["--stream", good.as_str()],
            "needs --group",
        ),
    ] {
        let wasm = fixture(file);
        let mut args = vec!["deploy", "q", wasm.to_str().unwrap()];
        args.extend(flags.iter().copied());
        let r = h.run(&args);
        assert_eq!(r.code, 1, "{flags:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{flags:?}: {}", r.stderr);
        assert_eq!(h.releases("q"), before);
    }
}

#[test]
fn a_release_failing_its_messages_is_rolled_back_by_its_health_rule_and_the_good_one_handles_them()
{
    let redis = Redis::start();
    let h = Hostd::start();
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    let flags = [
        "--stream",
        &src,
        "--group",
        "g",
        "--replicas",
        "4",
        "--max-attempts",
        "20",
        "--claim-idle-s",
        "2",
    ];
    h.deploy("q", "message-handler.wasm", &flags);
    xadd(&redis, "jobs", 0, 50);
    wait_for("the first 50", || {
        (handled(&h, "q").len() >= 50).then_some(())
    });
    // A release whose handler fails every message, with a rule on errors.
    let mut bad = flags.to_vec();
    bad.extend([
        "--health-rule",
        "requests >= 5 && error_rate > 0.5",
        "--health-window-s",
        "30",
    ]);
    let wasm = fixture("message-fail.wasm");
    let mut args = vec!["deploy", "q", wasm.to_str().unwrap()];
    args.extend(bad);
    // The deploy itself succeeds; the rule trips once messages fail.
    let r = h.run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    xadd(&redis, "jobs", 50, 150);
    wait_for("the rule to roll v2 back", || {
        let rs = h.releases("q");
        rs.iter()
            .any(|(v, s)| v == "v2" && s == "failed")
            .then_some(())
    });
    assert!(
        h.releases("q")
            .iter()
            .any(|(v, s)| v == "v1" && s == "active")
    );
    // What v2 failed is handled by v1: nothing lost.
    let all: BTreeSet<String> = (0..150).map(|i| format!("m{i}")).collect();
    wait_for("every message handled by the good release", || {
        let got: BTreeSet<String> = handled(&h, "q").into_iter().collect();
        (got == all && pending(&redis, "jobs", "g") == 0).then_some(())
    });
    let rec = h.wait_log("q", "the rule's verdict", |r| {
        line(r).contains("error_rate")
    });
    assert_eq!(rec["stream"], "system");
}

#[test]
fn a_handler_failing_everything_makes_the_consumer_stop_reading_at_its_ceiling_of_waiting_retries()
{
    let redis = Redis::start();
    let h = Hostd::start();
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    xadd(&redis, "jobs", 0, 5_000);
    h.deploy(
        "bad",
        "message-fail.wasm",
        &[
            "--stream",
            &src,
            "--group",
            "g",
            "--replicas",
            "8",
            "--max-attempts",
            "10",
        ],
    );
    // Every message fails and waits out a growing backoff: held in memory
    // (and pending in the group) until its retry. The consumer holds at
    // most 1024 of them, plus one batch read (64) and the handlers under
    // way (8), and leaves the rest of the stream unread.
    wait_for("the consumer to reach its ceiling", || {
        let (pending, _) = redis.group_state("jobs");
        (pending != u64::MAX && pending >= 1024).then_some(())
    });
    for _ in 0..10 {
        let (pending, lag) = redis.group_state("jobs");
        assert!(pending <= 1024 + 64 + 8, "{pending} held");
        assert!(lag > 3_000, "it stopped reading: lag {lag}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // hostd still answers while its handlers fail.
    assert_eq!(h.app("bad")["state"], "serving");
}
