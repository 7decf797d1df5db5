//! `hostd serve --metrics ADDR`: Prometheus text at GET /metrics, checked
//! by `promtool`, and bounded against clients that do not play along.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn requests_restarts_and_messages_are_counted_and_promtool_finds_nothing_to_lint() {
    let redis = Redis::start();
    let h = Hostd::start_with_metrics(&[]);
    let m = h.metrics_addr();
    let r = get(&m, "127.0.0.1", "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    // No app yet: every family is there, empty.
    assert!(
        r.text()
            .contains("# TYPE cranefleet_http_requests_total counter\n"),
        "{}",
        r.text()
    );
    promtool_check(&r.text());

    // An http app: 3 × 2xx, one each of 3xx, 4xx, 5xx.
    h.deploy("hello", "http-hello.wasm", &[]);
    let addr = h.http_addr();
    for _ in 0..3 {
        assert_eq!(get(&addr, "hello.localhost", "/").status, 200);
    }
    for code in [301, 404, 503] {
        let r = get(&addr, "hello.localhost", &format!("/status/{code}"));
        assert_eq!(r.status, code);
    }
    // A worker that exits at once, until its crash loop.
    h.deploy("crashy", "crash.wasm", &[]);
    // A message app failing 40 % of its attempts, 2 attempts each.
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
            "2",
            "--max-attempts",
            "2",
            "--env",
            "FAIL_PERCENT=40",
        ],
    );
    redis.xadd_payloads("jobs", 0..40);

    let handled = r#"cranefleet_messages_handled_total{app="flaky",host="testhost"}"#;
    let dead = r#"cranefleet_messages_dead_lettered_total{app="flaky",host="testhost"}"#;
    let pending = r#"cranefleet_messages_pending{app="flaky",host="testhost"}"#;
    let restarts = r#"cranefleet_instance_restarts_total{app="crashy",host="testhost"}"#;
    let text = wait_for_or(
        "every message handled or dead-lettered, none pending, and the crash loop",
        || {
            let text = scrape(&m);
            let done = sample(&text, handled)? + sample(&text, dead)? == 40.0
                && sample(&text, pending)? == 0.0
                && h.app("crashy")["state"] == "crashloop";
            done.then_some(text)
        },
        || scrape(&m),
    );
    let s =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    let class = |code: &str| {
        s(&format!(
            r#"cranefleet_http_requests_total{{app="hello",host="testhost",code="{code}"}}"#
        ))
    };
    assert_eq!(
        [class("2xx"), class("3xx"), class("4xx"), class("5xx")],
        [3.0, 1.0, 1.0, 1.0]
    );
    let hist = r#"cranefleet_http_request_duration_seconds"#;
    let labels = r#"{app="hello",host="testhost""#;
    assert_eq!(s(&format!("{hist}_count{labels}}}")), 6.0);
    assert_eq!(s(&format!("{hist}_bucket{labels},le=\"+Inf\"}}")), 6.0);
    assert!(s(&format!("{hist}_sum{labels}}}")) > 0.0);
    assert_eq!(
        s(r#"cranefleet_app_info{app="hello",host="testhost",kind="http",release="v1"}"#),
        1.0
    );
    assert_eq!(
        s(r#"cranefleet_app_info{app="crashy",host="testhost",kind="worker",release="v1"}"#),
        1.0
    );
    // Restarts are those ps shows (5 failed starts make the crash loop).
    let ps_restarts = h.app("crashy")["restarts"].as_u64().unwrap();
    assert!(ps_restarts >= 5);
    assert_eq!(s(restarts), ps_restarts as f64);
    // Messages: what Redis holds agrees with the counters.
    let dead_in_redis: f64 = redis.cli(&["XLEN", "jobs:dead"]).trim().parse().unwrap();
    assert_eq!(s(dead), dead_in_redis);
    let failed = s(r#"cranefleet_messages_failed_total{app="flaky",host="testhost"}"#);
    assert!(
        failed >= 2.0 * s(dead) && failed > 0.0,
        "each dead message failed twice: {failed} failed, {} dead",
        s(dead)
    );
    assert_eq!(
        s(r#"cranefleet_log_lines_dropped_total{app="hello",host="testhost"}"#),
        0.0
    );
    promtool_check(&text);

    // Anything but GET (or HEAD) /metrics is 404.
    assert_eq!(get(&m, "127.0.0.1", "/").status, 404);
    assert_eq!(get(&m, "127.0.0.1", "/metrics/x").status, 404);
    let post = http(&m, "POST", "127.0.0.1", "/metrics", b"x").unwrap();
    assert_eq!(post.status, 404);
}

#[test]
fn idle_connections_do_not_keep_a_scraper_out_and_a_huge_request_is_refused() {
    let mut h = Hostd::start_with_metrics(&[]);
    let m = h.metrics_addr();
    let fds_before = h.proc().open_fds().unwrap();
    // 300 connections that say nothing, or half a request head, and stay.
    let idle: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut s = TcpStream::connect(&m).unwrap();
            if i % 2 == 0 {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
            }
            s
        })
        .collect();
    // The daemon keeps at most 64 of them (the oldest make room).
    let fds = wait_for("the idle connections to be cut to 64", || {
        let n = h.proc().open_fds()?;
        (n <= fds_before + 64).then_some(n)
    });
    // A scraper is answered at once, every time.
    for _ in 0..5 {
        let started = Instant::now();
        let text = scrape(&m);
        assert!(text.contains("# TYPE cranefleet_instances_running gauge"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a scrape took {:?} beside {} idle connections ({fds} descriptors)",
            started.elapsed(),
            idle.len()
        );
    }

    // A head past 8 KiB is refused (431) before it is read whole.
    let mut s = TcpStream::connect(&m).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(16 << 10)
    );
    s.write_all(big.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "a 16 KiB head: {answer:?}"
    );
    // So are many headers.
    let mut s = TcpStream::connect(&m).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n{many}\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "100 headers: {answer:?}"
    );
    // A megabyte is cut off without being answered 200.
    let mut s = TcpStream::connect(&m).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let _ = s.write_all(huge.as_bytes());
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains(" 200 "));

    // The daemon is unhurt: scrapes, its control socket and its ingress.
    drop(idle);
    scrape(&m);
    assert_eq!(h.run(&["ps"]).code, 0);
    assert!(h.proc().is_running());
}

#[test]
fn a_metrics_address_in_use_is_refused_with_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        Command::new(hostd_bin())
            .args(["serve", "--http", "none", "--metrics", &addr, "--data"])
            .arg(dir.path())
            .env_remove("CRANEFLEET_SOCKET"),
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "cannot serve metrics on {addr}: the address is in use; pick another --metrics address"
        )),
        "{}",
        r.stderr
    );
    // Only an address and port: never a name that could bind elsewhere.
    let r = run(
        Command::new(hostd_bin())
            .args(["serve", "--metrics", "localhost:9464", "--data"])
            .arg(dir.path()),
        None,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is not an address like"), "{}", r.stderr);
}
