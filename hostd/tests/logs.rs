//! Logs: every line a record, numbered per app, bounded, durable, followable.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;

fn seqs(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
}

#[test]
fn partial_long_and_unterminated_lines_become_whole_records() {
    let h = Hostd::start();
    h.deploy(
        "spam",
        "logspam.wasm",
        &[
            "--env",
            "LINES=500",
            "--env",
            "LONG_LINE=40000",
            "--env",
            "STAY=1",
        ],
    );
    h.wait_log("spam", "the unterminated last line", |r| {
        line(r) == "no-newline-at-exit" || line(r) == "spam 500"
    });
    let recs = h.logs("spam");
    let out: Vec<&Value> = recs.iter().filter(|r| r["stream"] == "stdout").collect();
    assert_eq!(
        line(out[0]),
        "partial-line-complete",
        "a line written in two parts is one record"
    );
    // 40000 bytes: two 16 KiB pieces marked partial, then the rest.
    let long: Vec<&&Value> = out.iter().filter(|r| line(r).starts_with("xxxx")).collect();
    assert_eq!(
        long.len(),
        3,
        "{:?}",
        long.iter().map(|r| line(r).len()).collect::<Vec<_>>()
    );
    assert_eq!(line(long[0]).len(), 16384);
    assert_eq!(long[0]["partial"], true);
    assert_eq!(long[1]["partial"], true);
    assert_eq!(line(long[2]).len(), 40000 - 2 * 16384);
    assert!(long[2].get("partial").is_none());
    let spam: Vec<String> = out
        .iter()
        .filter(|r| line(r).starts_with("spam "))
        .map(|r| line(r).to_string())
        .collect();
    assert_eq!(
        spam,
        (1..=500).map(|i| format!("spam {i}")).collect::<Vec<_>>(),
        "every line, in order"
    );
    // Sequence numbers are per app, gapless and increasing.
    let s = seqs(&recs);
    assert_eq!(s, (1..=s.len() as u64).collect::<Vec<_>>());
}

#[test]
fn a_line_without_newline_is_kept_when_the_instance_exits() {
    let h = Hostd::start();
    h.deploy(
        "spam",
        "logspam.wasm",
        &[
            "--env",
            "LINES=3",
            "--env",
            "LONG_LINE=10",
            "--replicas",
            "1",
        ],
    );
    h.wait_log("spam", "the unterminated last line", |r| {
        line(r) == "no-newline-at-exit"
    });
}

#[test]
fn since_seq_resumes_exactly_and_follow_streams_new_records() {
    let h = Hostd::start();
    h.deploy("t", "ticker.wasm", &["--env", "TICK_MS=20"]);
    h.wait_log("t", "some ticks", |r| line(r).starts_with("tick 10 "));
    let all = h.logs("t");
    let cut = all[all.len() / 2]["seq"].as_u64().unwrap();
    let after = h
        .run(&["logs", "t", "--since", &cut.to_string(), "--json"])
        .ok()
        .json_lines();
    assert_eq!(seqs(&after)[0], cut + 1);
    assert_eq!(
        seqs(&after[..all.len() - all.len() / 2 - 1]),
        seqs(&all[all.len() / 2 + 1..])
    );

    // Follow, stop following, resume from the last seen: no gap, no duplicate.
    let mut f = h
        .cmd()
        .args(["logs", "t", "-f", "--tail", "0", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::new(f.stdout.take().unwrap());
    let first: Value =
        serde_json::from_str(&lines.wait_for("a followed record", |_| true)).unwrap();
    assert!(first["seq"].as_u64().unwrap() > cut);
    let last: Value =
        serde_json::from_str(&lines.wait_for("a few more", |l| l.contains("\"tick "))).unwrap();
    let _ = f.kill();
    let _ = f.wait();
    let last_seq = last["seq"].as_u64().unwrap();
    let mut f = h
        .cmd()
        .args([
            "logs",
            "t",
            "-f",
            "--since",
            &last_seq.to_string(),
            "--json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::new(f.stdout.take().unwrap());
    let mut got = Vec::new();
    for _ in 0..20 {
        let v: Value = serde_json::from_str(&lines.wait_for("resumed records", |_| true)).unwrap();
        got.push(v["seq"].as_u64().unwrap());
    }
    let _ = f.kill();
    let _ = f.wait();
    assert_eq!(got, (last_seq + 1..last_seq + 21).collect::<Vec<_>>());
}

#[test]
fn records_survive_a_restart_and_numbering_continues() {
    let mut h = Hostd::start();
    h.deploy("t", "ticker.wasm", &["--env", "TICK_MS=20"]);
    let tick5 = h.wait_log("t", "ticks", |r| line(r).starts_with("tick 5 "));
    h.stop();
    // A clean stop flushes everything: read it straight after.
    h.restart();
    let rec = h.wait_log("t", "the restore note", |r| {
        line(r).contains("restored from cached code")
    });
    let all = h
        .run(&["logs", "t", "--since", "0", "--json"])
        .ok()
        .json_lines();
    assert!(
        rec["seq"].as_u64().unwrap() > tick5["seq"].as_u64().unwrap(),
        "numbering restarted: {rec} after {tick5}"
    );
    assert!(
        all.iter()
            .any(|r| r["seq"] == tick5["seq"] && r["line"] == tick5["line"]),
        "a record from before the restart is gone"
    );
    let s = seqs(&all);
    assert!(
        s.windows(2).all(|w| w[1] == w[0] + 1),
        "no gaps or repeats across the restart: {s:?}"
    );
}

#[test]
fn the_store_is_bounded_per_app_dropping_the_oldest() {
    let h = Hostd::start_with(&["--log-cap-mb", "1"]);
    // Three releases of 30000 lines of ~10 bytes: ~1.6 MiB stored (a line
    // and ~8 bytes of sequence number, time, flags and length), so the
    // oldest must go. (One release of 90000 might outrun the writer and
    // drop lines, which is a different test.)
    for v in 1..=3 {
        h.deploy(
            "spam",
            "logspam.wasm",
            &[
                "--env",
                "LINES=30000",
                "--env",
                "LONG_LINE=10",
                "--env",
                "STAY=1",
                "--env",
                &format!("RUN={v}"),
            ],
        );
        h.wait_log("spam", &format!("the last line of v{v}"), |r| {
            line(r) == "spam 30000" && r["release"] == format!("v{v}")
        });
    }
    let recs = h.logs("spam");
    let first = recs[0]["seq"].as_u64().unwrap();
    assert!(
        first > 10_000,
        "oldest records were dropped (first seq {first})"
    );
    // What the kept records take at the least: the line, and a byte each
    // of sequence number, time, flags, release and length.
    let bytes: usize = recs.iter().map(|r| line(r).len() + 5).sum();
    assert!(bytes <= 1 << 20, "kept {bytes} bytes over a 1 MiB cap");
    let s = seqs(&recs);
    assert!(
        s.windows(2).all(|w| w[1] == w[0] + 1),
        "what is kept is contiguous"
    );
    // Another app's records are untouched by this one's cap.
    h.deploy("quiet", "hello.wasm", &[]);
    h.wait_log("quiet", "its line", |r| line(r) == "hello from wat");
}

#[test]
fn a_follower_that_stops_reading_does_not_block_the_guest() {
    let h = Hostd::start();
    h.deploy("fast", "ticker.wasm", &["--env", "TICK_MS=1"]);
    // This follower's stdout is a pipe nobody reads: it fills, the client
    // stops reading its socket, and the daemon's writes to it block.
    let mut stuck = h
        .cmd()
        .args(["logs", "fast", "-f", "--json", "--tail", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stuck_out = stuck.stdout.take().unwrap();
    let start = h.logs("fast").len();
    // The guest keeps writing and records keep being stored meanwhile.
    wait_for("the app to log 3000 more records", || {
        (h.logs("fast").len() > start + 3000).then_some(())
    });
    // When the follower reads again, it catches up without a gap.
    let mut lines = Lines::new(stuck_out);
    let mut prev = None;
    for _ in 0..2000 {
        let v: Value = serde_json::from_str(&lines.wait_for("records", |_| true)).unwrap();
        let s = v["seq"].as_u64().unwrap();
        if let Some(p) = prev {
            assert_eq!(s, p + 1, "gap or repeat in a lagging follower");
        }
        prev = Some(s);
    }
    let _ = stuck.kill();
    let _ = stuck.wait();
}
