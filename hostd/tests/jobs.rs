//! Jobs: a command on a cron schedule, one run at a time, with a max runtime.

mod common;

use common::*;

#[test]
fn a_job_runs_on_its_schedule_and_reports_each_run() {
    let h = Hostd::start();
    let out = h.deploy(
        "nightly",
        "job.wasm",
        &["--schedule", "@every 1s", "--env", "JOB_MS=50"],
    );
    assert_eq!(out["kind"], "job", "--schedule makes a job");
    h.wait_log("nightly", "a second finished run", |r| {
        line(r).starts_with("nightly.run-2 finished (exit code 0)")
    });
    let row = h.app("nightly");
    assert!(
        row["state"] == "scheduled" || row["state"] == "running",
        "{row}"
    );
    assert!(row["next_run"].as_str().unwrap().ends_with('Z'), "{row}");
    let recs = h.logs("nightly");
    assert!(recs.iter().any(|r| r["stream"] == "stdout"
        && line(r) == "job run done"
        && r["instance"] == "nightly.run-1"));
}

#[test]
fn six_field_cron_with_seconds_is_accepted() {
    let h = Hostd::start();
    h.deploy("tick", "job.wasm", &["--schedule", "*/1 * * * * *"]);
    h.wait_log("tick", "a run", |r| line(r).contains("finished"));
}

#[test]
fn a_run_still_going_makes_the_next_one_skipped() {
    let h = Hostd::start();
    h.deploy(
        "slow",
        "job.wasm",
        &["--schedule", "@every 1s", "--env", "JOB_MS=2500"],
    );
    let rec = h.wait_log("slow", "a skipped run", |r| {
        line(r).starts_with("skipped the run due at")
    });
    assert!(
        line(&rec).contains("the previous run is still going"),
        "{rec}"
    );
    h.wait_log("slow", "the long run finishing", |r| {
        line(r).starts_with("slow.run-1 finished")
    });
    let starts = h
        .logs("slow")
        .iter()
        .filter(|r| line(r).starts_with("starting slow.run-"))
        .count();
    let finished = h
        .logs("slow")
        .iter()
        .filter(|r| line(r).contains(" finished ("))
        .count();
    assert!(starts <= finished + 1, "never two runs at once");
}

#[test]
fn a_run_past_its_max_runtime_is_interrupted() {
    let h = Hostd::start();
    h.deploy(
        "stuck",
        "job.wasm",
        &[
            "--schedule",
            "@every 1s",
            "--env",
            "JOB_MS=60000",
            "--timeout-ms",
            "300",
        ],
    );
    let rec = h.wait_log("stuck", "the interrupted run", |r| {
        line(r).starts_with("stuck.run-1 failed")
    });
    assert!(line(&rec).contains("deadline of 300 ms"), "{rec}");
    let rec = h.wait_log("stuck", "a second run after it", |r| {
        line(r).starts_with("starting stuck.run-2")
    });
    assert_eq!(rec["stream"], "system");
}

#[test]
fn failed_runs_are_reported_with_their_exit_code() {
    let h = Hostd::start();
    h.deploy(
        "bad",
        "job.wasm",
        &["--schedule", "@every 1s", "--env", "JOB_EXIT=7"],
    );
    h.wait_log("bad", "the failed run", |r| {
        line(r).starts_with("bad.run-1 failed (exit code 7)")
    });
}

#[test]
fn scaling_a_job_to_zero_pauses_its_schedule() {
    let h = Hostd::start();
    h.deploy("p", "job.wasm", &["--schedule", "@every 1s"]);
    h.wait_log("p", "a run", |r| line(r).contains("finished"));
    h.json(&["scale", "p", "0"]);
    wait_for("paused", || (h.app("p")["state"] == "paused").then_some(()));
    let runs = |h: &Hostd| {
        h.logs("p")
            .iter()
            .filter(|r| line(r).starts_with("starting p.run-"))
            .count()
    };
    let before = runs(&h);
    // Another job on the same schedule runs twice meanwhile: two seconds of
    // the scheduler's time in which `p` would have run.
    h.deploy("q", "job.wasm", &["--schedule", "@every 1s"]);
    let finished = |h: &Hostd| {
        h.logs("q")
            .iter()
            .filter(|r| line(r).contains("finished"))
            .count()
    };
    wait_for("two runs of another job", || {
        (finished(&h) >= 2).then_some(())
    });
    assert_eq!(runs(&h), before, "no runs while paused");
    h.json(&["scale", "p", "1"]);
    wait_for("runs again", || (runs(&h) > before).then_some(()));
}

#[test]
fn an_every_schedule_says_it_is_aligned_to_the_clock_in_info_and_help() {
    let h = Hostd::start();
    h.deploy("hourly", "job.wasm", &["--schedule", "@every 1h"]);
    let r = h.run(&["info", "hourly"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("schedule   @every 1h: every 1h (aligned to :00 UTC)"),
        "{}",
        r.stdout
    );
    let info = h.json(&["info", "hourly"]);
    assert_eq!(info["schedule"], "@every 1h", "{info}");
    assert_eq!(
        info["schedule_note"], "every 1h (aligned to :00 UTC)",
        "{info}"
    );
    let help = h.run(&["deploy", "--help"]);
    assert!(
        help.stdout
            .contains("@every counts from the Unix epoch, not from the deploy"),
        "{}",
        help.stdout
    );
}
