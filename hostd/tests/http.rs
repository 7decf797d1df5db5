//! http apps: wasi:http components behind hostd's ingress.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::Value;

#[test]
fn routes_by_host_label_and_by_path_prefix() {
    let h = Hostd::start();
    let out = h.deploy("hello", "http-hello.wasm", &["--env", "GREETING=fleet"]);
    assert_eq!(
        out["kind"], "http",
        "inferred from the incoming-handler export"
    );
    let addr = h.http_addr();
    let r = get(&addr, "hello.localhost", "/some/path?x=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello fleet path=/some/path?x=1\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let r = get(&addr, "127.0.0.1", "/hello/inner/path?q=2");
    assert_eq!(
        r.text(),
        "hello fleet path=/inner/path?q=2\n",
        "the /APP prefix is stripped"
    );
    assert_eq!(
        get(&addr, "127.0.0.1", "/hello").text(),
        "hello fleet path=/\n"
    );
    let r = get(&addr, "nope.localhost", "/nope/x");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("no http app matches"), "{}", r.text());
    // The guest's stdout became log records, one instance per request.
    let rec = h.wait_log("hello", "the request line", |r| {
        line(r) == "request GET /some/path?x=1"
    });
    assert!(
        rec["instance"].as_str().unwrap().starts_with("hello.req-"),
        "{rec}"
    );
    let row = h.app("hello");
    assert_eq!(row["state"], "serving");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let h = Hostd::start();
    h.deploy("hello", "http-hello.wasm", &[]);
    let mut s = std::net::TcpStream::connect(h.http_addr()).unwrap();
    let mut buf = Vec::new();
    for i in 0..3 {
        write!(s, "GET /n{i} HTTP/1.1\r\nHost: hello.localhost\r\n\r\n").unwrap();
        // Read one response by its content-length.
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        let text = String::from_utf8_lossy(&head).to_lowercase();
        let len: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        buf.resize(len, 0);
        s.read_exact(&mut buf).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buf),
            format!("hello world path=/n{i}\n")
        );
    }
}

#[test]
fn wasi_cli_imports_are_linked_and_bodies_stream_both_ways() {
    let h = Hostd::start();
    h.deploy("hello", "http-hello.wasm", &[]);
    let addr = h.http_addr();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let r = http(&addr, "POST", "hello.localhost", "/echo", &body).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body == body,
        "echoed {} bytes of {}",
        r.body.len(),
        body.len()
    );
    let r = get(&addr, "hello.localhost", "/big?kb=4096");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 4096 * 1024);
    assert_eq!(get(&addr, "hello.localhost", "/status/418").status, 418);
}

#[test]
fn a_trap_is_a_500_and_a_system_record() {
    let h = Hostd::start();
    h.deploy("hello", "http-hello.wasm", &[]);
    let r = get(&h.http_addr(), "hello.localhost", "/trap");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("the app trapped"), "{}", r.text());
    let rec = h.wait_log("hello", "the trap", |r| {
        line(r).starts_with("request GET /trap trapped:")
    });
    assert_eq!(rec["stream"], "system");
    assert!(line(&rec).contains("unreachable"), "{rec}");
    assert!(!line(&rec).contains('\n'));
    // The next request is served by a fresh instance.
    assert_eq!(get(&h.http_addr(), "hello.localhost", "/ok").status, 200);
}

#[test]
fn a_guest_that_never_answers_gets_504_and_is_interrupted() {
    let h = Hostd::start();
    h.deploy("hello", "http-hello.wasm", &["--timeout-ms", "500"]);
    let r = get(&h.http_addr(), "hello.localhost", "/hang");
    assert_eq!(r.status, 504);
    assert!(
        r.text().contains("did not answer within 500 ms"),
        "{}",
        r.text()
    );
    h.wait_log("hello", "the interruption", |r| {
        line(r).contains("ran past its deadline of 500 ms; instance interrupted")
    });
    wait_for("no instance left running", || {
        (h.app("hello")["running"] == 0).then_some(())
    });
    assert_eq!(get(&h.http_addr(), "hello.localhost", "/").status, 200);
}

#[test]
fn an_oversized_request_body_is_refused_with_413() {
    let h = Hostd::start_with(&["--max-request-body-mb", "1"]);
    h.deploy("hello", "http-hello.wasm", &[]);
    let addr = h.http_addr();
    let big = vec![b'x'; 2 << 20];
    let r = http(&addr, "POST", "hello.localhost", "/echo", &big).unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    // Chunked: no length up front, refused once the limit is passed.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "POST /echo HTTP/1.1\r\nHost: hello.localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap();
    let chunk = vec![b'y'; 256 * 1024];
    for _ in 0..8 {
        if write!(s, "{:x}\r\n", chunk.len())
            .and_then(|_| s.write_all(&chunk))
            .and_then(|_| s.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let r = parse_response(&raw).unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    // Small bodies still pass.
    assert_eq!(
        http(&addr, "POST", "hello.localhost", "/echo", b"small")
            .unwrap()
            .text(),
        "small"
    );
}

#[test]
fn a_client_that_disconnects_mid_response_leaves_nothing_running() {
    let h = Hostd::start();
    h.deploy(
        "hello",
        "http-hello.wasm",
        &["--replicas", "2", "--timeout-ms", "20000"],
    );
    for path in ["/big?kb=200000", "/hang"] {
        let mut s = std::net::TcpStream::connect(h.http_addr()).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: hello.localhost\r\n\r\n").unwrap();
        if path.starts_with("/big") {
            let mut b = vec![0u8; 64 * 1024];
            s.read_exact(&mut b).unwrap();
        } else {
            wait_for("the hanging request to start", || {
                (h.app("hello")["running"] == 1).then_some(())
            });
        }
        drop(s);
        wait_for("the instance to end after the client left", || {
            (h.app("hello")["running"] == 0).then_some(())
        });
    }
    assert_eq!(get(&h.http_addr(), "hello.localhost", "/").status, 200);
}

#[test]
fn replicas_bound_concurrent_instances_and_the_queue_is_bounded() {
    let h = Hostd::start();
    h.deploy("hello", "http-hello.wasm", &["--replicas", "1"]);
    let addr = h.http_addr();
    let max_running = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (max_running, stop, data) = (max_running.clone(), stop.clone(), h.data().to_path_buf());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let r = run(
                    std::process::Command::new(hostd_bin())
                        .arg("--data")
                        .arg(&data)
                        .args(["ps", "--json"]),
                    None,
                );
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.stdout) {
                    let n = v[0]["running"].as_u64().unwrap_or(0);
                    max_running.fetch_max(n, Ordering::SeqCst);
                }
            }
        })
    };
    // 40 requests at once against 1 replica and a queue of 32: some wait, the rest get 503.
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..40)
        .map(|_| {
            let (addr, statuses) = (addr.clone(), statuses.clone());
            std::thread::spawn(move || {
                let r = get(&addr, "hello.localhost", "/sleep?ms=100");
                statuses
                    .lock()
                    .unwrap()
                    .push((r.status, r.header("retry-after").map(String::from)));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let s = statuses.lock().unwrap();
    let ok = s.iter().filter(|(c, _)| *c == 200).count();
    let busy: Vec<_> = s.iter().filter(|(c, _)| *c == 503).collect();
    assert_eq!(ok + busy.len(), 40, "{s:?}");
    assert!(ok >= 2, "queued requests were served: {s:?}");
    assert!(
        !busy.is_empty(),
        "over the queue bound requests get 503: {s:?}"
    );
    assert!(busy.iter().all(|(_, ra)| ra.as_deref() == Some("1")));
    assert!(
        max_running.load(Ordering::SeqCst) <= 1,
        "never more instances than replicas"
    );
}

/// Runs GETs in a loop on `threads` threads; returns (total, failures, versions seen in order).
struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<(u64, Vec<String>, Vec<String>)>>,
}

impl Load {
    fn start(addr: &str, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let (addr, stop) = (addr.to_string(), stop.clone());
                std::thread::spawn(move || {
                    let (mut n, mut failures, mut seen) = (0u64, Vec::new(), Vec::<String>::new());
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        match http(&addr, "GET", "ver.localhost", "/", b"") {
                            Ok(r) if r.status == 200 => {
                                let v = r.text().trim().to_string();
                                if seen.last() != Some(&v) {
                                    seen.push(v);
                                }
                            }
                            Ok(r) => failures.push(format!("{} {}", r.status, r.text())),
                            Err(e) => failures.push(e.to_string()),
                        }
                    }
                    (n, failures, seen)
                })
            })
            .collect();
        Load { stop, handles }
    }

    fn finish(self) -> (u64, Vec<String>, Vec<Vec<String>>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = 0;
        let mut failures = Vec::new();
        let mut seen = Vec::new();
        for h in self.handles {
            let (n, f, s) = h.join().unwrap();
            total += n;
            failures.extend(f);
            seen.push(s);
        }
        (total, failures, seen)
    }
}

#[test]
fn deploy_and_rollback_switch_with_zero_failed_requests() {
    let h = Hostd::start();
    h.deploy("ver", "http-version-v1.wasm", &["--replicas", "8"]);
    let addr = h.http_addr();
    assert_eq!(get(&addr, "ver.localhost", "/").text(), "version v1\n");
    let load = Load::start(&addr, 4);
    let served = |h: &Hostd, v: &str| {
        let want = format!("version {v}\n");
        wait_for(&format!("{v} to be served"), || {
            (get(&h.http_addr(), "ver.localhost", "/").text() == want).then_some(())
        });
    };
    h.deploy("ver", "http-version-v2.wasm", &[]);
    served(&h, "v2");
    h.json(&["rollback", "ver"]);
    served(&h, "v1");
    h.deploy("ver", "http-version-v3.wasm", &[]);
    served(&h, "v3");
    let (total, failures, seen) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total > 20, "the load ran ({total} requests)");
    for s in seen {
        // Each client saw the switches in order, never going back to an old version.
        let order = ["version v1", "version v2", "version v1", "version v3"];
        let mut i = 0;
        for v in &s {
            while i < order.len() && order[i] != v {
                i += 1;
            }
            assert!(i < order.len(), "out-of-order versions {s:?}");
        }
    }
}

#[test]
fn a_failing_health_check_rolls_back_and_marks_the_release_failed() {
    let h = Hostd::start();
    h.deploy(
        "ver",
        "http-version-v1.wasm",
        &["--health-path", "/healthz"],
    );
    let path = fixture("http-version-unhealthy.wasm");
    let r = h.run(&[
        "deploy",
        "ver",
        path.to_str().unwrap(),
        "--health-path",
        "/healthz",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "ver v2 failed its health check: GET /healthz returned 500; rolled back v2 -> v1"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        h.releases("ver"),
        vec![
            ("v2".into(), "failed".into()),
            ("v1".into(), "active".into())
        ]
    );
    let rel = h.json(&["releases", "ver"]);
    assert!(
        rel[0]["detail"].as_str().unwrap().contains("health check"),
        "{rel}"
    );
    assert_eq!(
        get(&h.http_addr(), "ver.localhost", "/").text(),
        "version v1\n"
    );
    let rec = h.wait_log("ver", "the failure record", |r| {
        line(r).contains("failed its health check")
    });
    assert_eq!(rec["stream"], "system");
    // A healthy deploy passes its check.
    assert_eq!(
        h.deploy(
            "ver",
            "http-version-v3.wasm",
            &["--health-path", "/healthz"]
        )["version"],
        "v3"
    );
    assert_eq!(
        get(&h.http_addr(), "ver.localhost", "/").text(),
        "version v3\n"
    );
}

#[test]
fn http_apps_serve_again_after_a_restart_without_compiling() {
    let mut h = Hostd::start();
    h.deploy("hello", "http-hello.wasm", &["--env", "GREETING=again"]);
    assert_eq!(get(&h.http_addr(), "hello.localhost", "/").status, 200);
    let compiles = h.daemon_log().matches("compiled with Cranelift").count();
    h.restart();
    assert_eq!(
        get(&h.http_addr(), "hello.localhost", "/x").text(),
        "hello again path=/x\n"
    );
    assert_eq!(
        h.daemon_log().matches("compiled with Cranelift").count(),
        compiles
    );
}

#[test]
fn scaling_an_http_app_to_zero_answers_503() {
    let h = Hostd::start();
    h.deploy("hello", "http-hello.wasm", &[]);
    h.json(&["scale", "hello", "0"]);
    let r = get(&h.http_addr(), "hello.localhost", "/");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("scaled to 0"), "{}", r.text());
    h.json(&["scale", "hello", "2"]);
    assert_eq!(get(&h.http_addr(), "hello.localhost", "/").status, 200);
}

#[test]
fn ps_shows_an_http_apps_requests_errors_and_p99_and_the_rate_falls_to_zero_when_traffic_stops() {
    let h = Hostd::start();
    h.deploy("web", "http-hello.wasm", &[]);
    let addr = h.http_addr();
    for _ in 0..8 {
        assert_eq!(get(&addr, "web.localhost", "/").status, 200);
    }
    for _ in 0..2 {
        assert_eq!(get(&addr, "web.localhost", "/status/503").status, 503);
    }
    let row = h.app("web");
    let q = &row["requests"];
    assert_eq!(q["requests"], 10, "{row}");
    assert_eq!(q["errors"], 2, "{row}");
    assert!(
        (q["error_rate"].as_f64().unwrap_or(0.0) - 0.2).abs() < 1e-9,
        "{row}"
    );
    assert!(q["p99_ms"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
    assert!(row["rps"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
    assert_eq!(
        row["hosts"],
        serde_json::json!([row["host"].clone()]),
        "{row}"
    );
    // The table says the same.
    let text = h.run(&["ps"]).ok().stdout;
    assert!(
        text.contains("ERR%") && text.contains("20.0%") && text.contains("P99"),
        "{text}"
    );
    // Traffic stops: the rate says so within seconds, the minute's figures
    // stay.
    let row = wait_for("the rate to fall to 0", || {
        let row = h.app("web");
        (row["rps"].as_f64() == Some(0.0)).then_some(row)
    });
    assert_eq!(row["requests"]["errors"], 2, "{row}");
}

#[test]
fn every_request_gets_an_access_record_that_the_filter_language_reads_unless_the_app_turns_it_off()
{
    let h = Hostd::start();
    h.deploy("web", "http-hello.wasm", &[]);
    let addr = h.http_addr();
    for _ in 0..3 {
        assert_eq!(get(&addr, "web.localhost", "/ok?token=secret").status, 200);
    }
    assert_eq!(get(&addr, "web.localhost", "/status/503").status, 503);
    let errors = wait_for("the 5xx access record", || {
        let r = h
            .run(&[
                "logs",
                "web",
                "--since",
                "0",
                "--json",
                "--where",
                "status >= 500",
            ])
            .ok()
            .json_lines();
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e["stream"], "access", "{e}");
    assert_eq!(e["method"], "GET", "{e}");
    assert_eq!(e["path"], "/status/503", "{e}");
    assert_eq!(e["status"], 503, "{e}");
    assert!(e["latency_ms"].as_f64().is_some_and(|l| l > 0.0), "{e}");
    assert!(e["bytes"].as_u64().is_some_and(|b| b > 0), "{e}");
    assert!(
        e["instance"].as_str().unwrap_or("").starts_with("web.req-"),
        "{e}"
    );
    let all = h
        .run(&[
            "logs",
            "web",
            "--since",
            "0",
            "--json",
            "--where",
            "stream == access",
        ])
        .ok()
        .json_lines();
    assert_eq!(all.len(), 4, "one per request: {all:?}");
    // The query string (where tokens travel) is not recorded.
    assert!(
        all.iter().all(|r| r["path"] != "/ok?token=secret"),
        "{all:?}"
    );
    assert!(
        all.iter()
            .all(|r| !r["line"].as_str().unwrap_or("").contains("secret")),
        "{all:?}"
    );
    let slow = h
        .run(&[
            "logs",
            "web",
            "--since",
            "0",
            "--json",
            "--where",
            "latency_ms > 60000",
        ])
        .ok()
        .json_lines();
    assert!(slow.is_empty(), "{slow:?}");
    // Turned off: the next requests leave no access record.
    h.deploy("web", "http-hello.wasm", &["--access-log", "off"]);
    assert_eq!(get(&addr, "web.localhost", "/after").status, 200);
    h.wait_log("web", "the request after", |r| {
        line(r) == "request GET /after"
    });
    let after = h
        .run(&[
            "logs",
            "web",
            "--since",
            "0",
            "--json",
            "--where",
            "stream == access",
        ])
        .ok()
        .json_lines();
    assert_eq!(after.len(), 4, "{after:?}");
}

/// The guest's own count of the requests its instance served.
fn count(addr: &str, app: &str) -> String {
    let r = get(addr, &format!("{app}.localhost"), "/count");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text().trim().to_string()
}

#[test]
fn with_reuse_one_instance_serves_n_requests_then_a_fresh_one_takes_over() {
    let h = Hostd::start();
    let out = h.deploy("warm", "http-hello.wasm", &["--reuse", "3"]);
    assert_eq!(out["state"], "active", "{out}");
    h.deploy("cold", "http-hello.wasm", &[]);
    let addr = h.http_addr();
    let counts: Vec<String> = (0..7).map(|_| count(&addr, "warm")).collect();
    assert_eq!(
        counts,
        [
            "count 1", "count 2", "count 3", "count 1", "count 2", "count 3", "count 1"
        ],
        "the guest's global counter: 3 requests per instance, then a fresh one"
    );
    // Without reuse every request meets a fresh instance.
    for _ in 0..3 {
        assert_eq!(count(&addr, "cold"), "count 1");
    }
    // The access records name the instance that served each request: the
    // first three share one.
    let recs = wait_for("7 access records", || {
        let recs: Vec<Value> = h
            .logs("warm")
            .into_iter()
            .filter(|r| r["stream"] == "access")
            .collect();
        (recs.len() == 7).then_some(recs)
    });
    let names: Vec<&str> = recs
        .iter()
        .map(|r| r["instance"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], names[1]);
    assert_eq!(names[1], names[2]);
    assert_ne!(names[2], names[3]);
    assert_eq!(names[3], names[5]);
    // ps and info say so.
    let row = h.app("warm");
    assert_eq!(row["detail"], "reuse 3: 1 warm instance", "{row}");
    let hosts = h.json(&["hosts"]);
    assert!(
        hosts[0]["memory_bytes"].as_u64().unwrap() > 0,
        "the warm instance's memory is counted: {hosts}"
    );
    assert!(h.app("cold")["detail"].is_null());
    let info = h.json(&["info", "warm"]);
    assert_eq!(info["http"]["reuse"], 3, "{info}");
    let text = h.run(&["info", "warm"]).ok().stdout;
    assert!(
        text.contains("instances reused for 3 requests (globals survive between requests)"),
        "{text}"
    );
    assert!(
        h.run(&["info", "cold"])
            .ok()
            .stdout
            .contains("a fresh instance per request")
    );
}

#[test]
fn with_reuse_a_trap_or_a_deadline_discards_the_instance() {
    let h = Hostd::start();
    h.deploy(
        "warm",
        "http-hello.wasm",
        &["--reuse", "100", "--timeout-ms", "500"],
    );
    let addr = h.http_addr();
    assert_eq!(count(&addr, "warm"), "count 1");
    assert_eq!(count(&addr, "warm"), "count 2");
    assert_eq!(get(&addr, "warm.localhost", "/trap").status, 500);
    assert_eq!(
        count(&addr, "warm"),
        "count 1",
        "a trapped instance is never entered again"
    );
    assert_eq!(count(&addr, "warm"), "count 2");
    assert_eq!(get(&addr, "warm.localhost", "/hang").status, 504);
    assert_eq!(
        count(&addr, "warm"),
        "count 1",
        "an interrupted instance is dropped"
    );
}

#[test]
fn with_reuse_a_release_switch_never_lets_an_old_instance_serve_a_request() {
    let h = Hostd::start();
    h.deploy(
        "ver",
        "http-version-v1.wasm",
        &["--reuse", "1000", "--replicas", "1"],
    );
    let addr = h.http_addr();
    for n in 1..=3 {
        assert_eq!(count(&addr, "ver"), format!("version v1 count {n}"));
    }
    h.deploy("ver", "http-version-v2.wasm", &[]);
    assert_eq!(count(&addr, "ver"), "version v2 count 1");
    // Back to v1: a fresh v1 instance, not the one that counted to 3.
    h.json(&["rollback", "ver"]);
    assert_eq!(count(&addr, "ver"), "version v1 count 1");
    // A restart gives fresh instances too.
    h.json(&["restart", "ver"]);
    assert_eq!(count(&addr, "ver"), "version v1 count 1");

    // Under load on 4 replicas: once a deploy or rollback has returned,
    // every request is answered by the new release, and none fails.
    h.json(&["scale", "ver", "4"]);
    let load = Load::start(&addr, 4);
    for (switch, want) in [
        ("v3", "version v3"),
        ("rollback", "version v1"),
        ("v2", "version v2"),
    ] {
        std::thread::sleep(std::time::Duration::from_millis(300));
        if switch == "rollback" {
            h.json(&["rollback", "ver", "--to", "v1"]);
        } else {
            h.deploy("ver", &format!("http-version-{switch}.wasm"), &[]);
        }
        for _ in 0..30 {
            let got = get(&addr, "ver.localhost", "/").text();
            assert_eq!(got.trim(), want, "after the switch to {switch}");
        }
    }
    let (total, failures, _) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[test]
fn with_reuse_the_memory_cap_holds_across_requests() {
    let h = Hostd::start();
    h.deploy(
        "warm",
        "http-hello.wasm",
        &["--reuse", "1000", "--memory-mb", "32"],
    );
    let addr = h.http_addr();
    // Each request keeps 2 MiB more in the same instance, until the cap.
    let mut kept = Vec::new();
    let refused = (0..20).find_map(|_| {
        let r = get(&addr, "warm.localhost", "/grow?kb=2048");
        if r.status == 200 {
            kept.push(r.text());
            None
        } else {
            Some(r)
        }
    });
    let refused =
        refused.unwrap_or_else(|| panic!("the cap stops the growth before 40 MiB: {kept:?}"));
    assert_eq!(refused.status, 500, "{}", refused.text());
    assert!(
        kept.len() >= 3 && kept.len() < 8,
        "2 MiB a request under a 32 MiB cap (17 MiB declared): {kept:?}"
    );
    assert_eq!(
        kept.last().map(String::as_str),
        Some(format!("grown 2048 total {}\n", kept.len() * 2048).as_str()),
        "one instance kept every grant"
    );
    h.wait_log("warm", "the refusal", |r| {
        line(r).contains("memory.grow was refused at the cap of 32 MiB")
    });
    assert_eq!(
        count(&addr, "warm"),
        "count 1",
        "the instance that hit the cap is gone"
    );
}
