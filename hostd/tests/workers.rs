//! Workers: kept at N replicas, restarted with backoff, stopped by crash loops.

mod common;

use common::*;

#[test]
fn preview1_module_worker_runs_its_replicas_and_logs_their_output() {
    let h = Hostd::start();
    let out = h.deploy(
        "ticker",
        "ticker.wasm",
        &[
            "--replicas",
            "2",
            "--env",
            "TICK_MS=50",
            "--env",
            "GREETING=hi",
        ],
    );
    assert_eq!(out["version"], "v1");
    assert_eq!(out["kind"], "worker", "kind is inferred from `_start`");
    assert_eq!(out["replicas"], 2);
    assert!(out["digest"].as_str().unwrap().starts_with("sha256:"));
    h.wait_running("ticker", "v1", 2);
    let rec = h.wait_log("ticker", "a tick from ticker.2", |r| {
        r["instance"] == "ticker.2" && line(r).starts_with("tick 2 ")
    });
    assert_eq!(rec["stream"], "stdout");
    assert_eq!(rec["release"], "v1");
    assert_eq!(rec["host"], "testhost");
    assert!(line(&rec).contains("greeting=hi"), "{rec}");
    h.wait_log("ticker", "a stderr warning", |r| {
        r["stream"] == "stderr" && line(r).starts_with("warn: tick 5")
    });
    let row = h.app("ticker");
    assert_eq!(row["state"], "running");
    assert_eq!(row["running"], 2);
    assert_eq!(row["host"], "testhost");
}

#[test]
fn preview2_command_component_worker_runs() {
    let h = Hostd::start();
    let out = h.deploy(
        "comp",
        "ticker.component.wasm",
        &["--env", "TICK_MS=50", "--env", "VERSION=p2"],
    );
    assert_eq!(out["kind"], "worker");
    h.wait_running("comp", "v1", 1);
    h.wait_log("comp", "a tick", |r| {
        line(r).starts_with("tick 1 version=p2")
    });
}

#[test]
fn scale_starts_and_stops_replicas_without_a_release() {
    let h = Hostd::start();
    h.deploy("w", "ticker.wasm", &["--env", "TICK_MS=100"]);
    h.wait_running("w", "v1", 1);
    let out = h.json(&["scale", "w", "3"]);
    assert_eq!(out["from"], 1);
    assert_eq!(out["replicas"], 3);
    h.wait_running("w", "v1", 3);
    h.json(&["scale", "w", "1"]);
    h.wait_running("w", "v1", 1);
    assert_eq!(h.releases("w").len(), 1, "scale makes no release");
    h.json(&["scale", "w", "0"]);
    wait_for("w to stop", || {
        (h.app("w")["state"] == "stopped").then_some(())
    });
}

#[test]
fn exited_workers_restart_with_backoff_and_keep_their_exit_code() {
    let h = Hostd::start();
    // Exits with code 4 after 3 ticks (~150 ms): restarted, not yet a crash loop at first.
    h.deploy(
        "flaky",
        "ticker.component.wasm",
        &[
            "--env",
            "TICK_MS=50",
            "--env",
            "EXIT_AFTER=3",
            "--env",
            "EXIT_CODE=4",
        ],
    );
    let rec = h.wait_log("flaky", "a restart", |r| line(r).contains("restarting in"));
    assert!(line(&rec).contains("exit code 4"), "{rec}");
    assert!(
        line(&rec).contains("restarting in 100ms"),
        "first delay is 100ms: {rec}"
    );
    h.wait_log("flaky", "a second restart with a doubled delay", |r| {
        line(r).contains("restarting in 200ms")
    });
}

#[test]
fn crash_loop_marks_the_release_and_stops_restarting() {
    let h = Hostd::start();
    h.deploy("good", "ticker.wasm", &["--env", "TICK_MS=100"]);
    h.deploy("crashy", "crash.wasm", &[]);
    let rec = h.wait_log("crashy", "the crash loop", |r| {
        line(r).starts_with("crash loop")
    });
    assert_eq!(rec["stream"], "system");
    assert!(line(&rec).contains("5 failed starts within 60s"), "{rec}");
    assert!(line(&rec).contains("exit code 3"), "{rec}");
    wait_for("releases to show crashloop", || {
        (h.releases("crashy") == vec![("v1".to_string(), "crashloop".to_string())]).then_some(())
    });
    let row = h.app("crashy");
    assert_eq!(row["state"], "crashloop");
    assert!(row["restarts"].as_u64().unwrap() >= 5, "{row}");
    // No more starts after the crash loop.
    let starts = |h: &Hostd| {
        h.logs("crashy")
            .iter()
            .filter(|r| line(r).starts_with("starting"))
            .count()
    };
    let before = starts(&h);
    // Let the daemon run on: five more ticks of the good worker (100 ms
    // each) is time in which the crashed one would have been restarted.
    let last_seq = |h: &Hostd| {
        h.logs("good")
            .last()
            .and_then(|r| r["seq"].as_u64())
            .unwrap_or(0)
    };
    let mark = last_seq(&h);
    wait_for("five more ticks of the good worker", || {
        (last_seq(&h) >= mark + 5).then_some(())
    });
    assert_eq!(starts(&h), before);
    // Other apps are unaffected.
    assert_eq!(h.app("good")["state"], "running");
    let audit = h.json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "crashloop" && a["app"] == "crashy"),
        "{audit}"
    );
}

#[test]
fn memory_cap_refuses_growth_past_the_limit() {
    let h = Hostd::start();
    h.deploy("hog", "memhog.wasm", &["--memory-mb", "1"]);
    // 1 MiB is 16 pages: the guest sees memory.grow fail there and exits 1.
    let rec = h.wait_log("hog", "the refused grow", |r| {
        line(r).starts_with("memhog: grow failed")
    });
    assert!(line(&rec).contains("16 pages"), "{rec}");
    h.wait_log("hog", "its exit", |r| line(r).contains("exit code 1"));
}

#[test]
fn a_busy_loop_is_interrupted_when_its_release_is_replaced() {
    let h = Hostd::start();
    h.deploy("spin", "spin.wasm", &["--stop-grace-ms", "100"]);
    h.wait_running("spin", "v1", 1);
    // The new release's instance starts; the spinning one is interrupted by epoch after its grace.
    h.deploy("spin", "ticker.wasm", &["--env", "TICK_MS=50"]);
    let rec = h.wait_log("spin", "the old instance stopped", |r| {
        r["release"] == "v1" && line(r).starts_with("spin.1 stopped")
    });
    assert!(line(&rec).contains("stopped"), "{rec}");
    h.wait_running("spin", "v2", 1);
    wait_for("only v2 listed", || {
        let rows = h.json(&["ps", "spin"]);
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["release"] == "v2")
            .then_some(())
    });
}

#[test]
fn worker_deadline_interrupts_an_instance() {
    let h = Hostd::start();
    h.deploy("short", "spin.wasm", &["--timeout-ms", "200"]);
    let rec = h.wait_log("short", "the deadline", |r| {
        line(r).contains("deadline of 200 ms")
    });
    assert_eq!(rec["stream"], "system");
}

#[test]
fn restart_gives_fresh_instances_and_clears_a_crash_loop_without_a_deploy() {
    let h = Hostd::start();
    h.deploy("crashy", "crash.wasm", &[]);
    wait_for("the crash loop", || {
        (h.releases("crashy") == vec![("v1".to_string(), "crashloop".to_string())]).then_some(())
    });
    let starts = |h: &Hostd| {
        h.logs("crashy")
            .iter()
            .filter(|r| line(r).starts_with("starting"))
            .count()
    };
    let before = starts(&h);
    let out = h.json(&["restart", "crashy"]);
    assert_eq!(out["app"], "crashy", "{out}");
    assert_eq!(out["release"], "v1", "{out}");
    assert_eq!(out["cleared_crashloop"], true, "{out}");
    // It runs again (and, still crashing, tries again): no new release.
    wait_for("starts after the restart", || {
        (starts(&h) > before).then_some(())
    });
    assert_eq!(h.releases("crashy").len(), 1);
    let audit = h.json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "restart"
                && a["app"] == "crashy"
                && a["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("crash loop cleared")),
        "{audit}"
    );

    // A healthy worker: every instance replaced by a fresh one.
    h.deploy(
        "good",
        "ticker.wasm",
        &["--env", "TICK_MS=100", "--replicas", "2"],
    );
    h.wait_running("good", "v1", 2);
    let good_starts = || {
        h.logs("good")
            .iter()
            .filter(|r| line(r).starts_with("starting"))
            .count()
    };
    let before = good_starts();
    let out = h.run(&["restart", "good"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("restarted good v1"),
        "{}",
        out.stdout
    );
    wait_for("two fresh instances", || {
        (good_starts() >= before + 2).then_some(())
    });
    h.wait_running("good", "v1", 2);
    // Bad input: unknown app, nothing to restart at 0 replicas.
    let r = h.run(&["restart", "nope"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unknown app \"nope\""), "{}", r.stderr);
    h.json(&["scale", "good", "0"]);
    let r = h.run(&["restart", "good"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("scaled to 0"), "{}", r.stderr);
}

#[test]
fn a_worker_that_keeps_exiting_successfully_is_told_apart_from_one_that_crashes() {
    let h = Hostd::start();
    h.deploy(
        "once",
        "ticker.wasm",
        &[
            "--env",
            "TICK_MS=10",
            "--env",
            "EXIT_AFTER=1",
            "--env",
            "EXIT_CODE=0",
        ],
    );
    let rec = h.wait_log("once", "the loop's verdict", |r| {
        line(r).starts_with("crash loop")
    });
    assert!(
        line(&rec).contains("exited successfully 5 times")
            && line(&rec).contains("a worker is meant to keep running")
            && line(&rec).contains("--schedule"),
        "{rec}"
    );
}
