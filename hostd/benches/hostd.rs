//! The hostd bench: figures, not tests. Run with
//!
//! ```text
//! hostd/benches/setup.sh                       # wrk + wasmtime-cli 48.0.8, once
//! cargo bench -p hostd --bench hostd           # every section
//! cargo bench -p hostd --bench hostd -- ingress
//! ```
//!
//! Sections:
//! - `compile`: Cranelift AOT time per fixture, and rollback switch time.
//! - `ingress`: req/s, p50/p99, CPU µs and page faults per request of the
//!   C hello and a componentize-py hello through hostd's ingress, a fresh
//!   instance per request and with `--reuse`, vs `wasmtime serve -S cli -O
//!   pooling-allocator` (and with `--max-instance-reuse-count`) on the same
//!   component, same wrk settings, same run.
//! - `switch`: a deploy/rollback every 500 ms under load: failed requests
//!   and the p99 against a run without switches.
//! - `canary`: ingress throughput with two releases sharing traffic against
//!   one release alone; a canary failing a third of its requests: the time
//!   from its first failed request to the last, and how many failed.
//! - `kv`: one wasi:keyvalue get or set per request (kv.wasm), the host's
//!   SQLite store and a real Redis, against `wasmtime serve -S cli -S
//!   keyvalue` (its in-memory store) on the same component and, for Redis,
//!   `redis-benchmark` on the same server; a request with no key-value call
//!   is the floor.
//! - `message`: stream messages handled end to end (XADD → handled →
//!   XACK) by a trivial handler on one host, against a native Rust consumer
//!   of the same stream doing the same work, in the same run; handling
//!   latency; and the same while a rollback switches every 500 ms (lost and
//!   doubly handled messages counted).
//! - `outbound`: the latency a guest's outgoing call adds (outbound.wasm
//!   calling a local upstream) through hostd and through `wasmtime serve -S
//!   cli -S http`, against calling the upstream directly.

#[path = "../../fixtures/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;

const WRK_THREADS: &str = "2";
const WRK_CONNECTIONS: &str = "32";
const WRK_SECONDS: u64 = 10;

fn hostd() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hostd"))
}

fn tool(name: &str) -> Option<PathBuf> {
    let local = workspace().join("hostd/benches/.tools/bin").join(name);
    if local.exists() {
        return Some(local);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

struct Host {
    dir: tempfile::TempDir,
    port: u16,
    proc: Proc,
}

impl Host {
    fn start() -> Host {
        let dir = tempfile::Builder::new()
            .prefix("hostd-bench")
            .tempdir()
            .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("hostd.log")).unwrap();
        let proc = Proc::spawn(
            "hostd serve",
            Command::new(hostd())
                .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--data"])
                .arg(dir.path())
                .env("CRANEFLEET_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log),
        );
        let h = Host { dir, port, proc };
        wait_for("hostd", || (h.run(&["ps"]).code == 0).then_some(()));
        h
    }

    fn run(&self, args: &[&str]) -> Run {
        run(
            Command::new(hostd())
                .arg("--data")
                .arg(self.dir.path())
                .args(args),
            None,
        )
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        self.run(&a).ok().json()
    }
}

/// What wrk measured.
#[derive(Debug, Default, Clone)]
struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    non_2xx: u64,
    socket_errors: u64,
}

fn ms(s: &str) -> f64 {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, host: Option<&str>, seconds: u64) -> Wrk {
    let wrk = tool("wrk").expect("wrk not found: run hostd/benches/setup.sh");
    let mut c = Command::new(wrk);
    c.args([
        "-t",
        WRK_THREADS,
        "-c",
        WRK_CONNECTIONS,
        "-d",
        &format!("{seconds}s"),
        "--latency",
    ]);
    if let Some(h) = host {
        c.args(["-H", &format!("Host: {h}")]);
    }
    let out = run(c.arg(url), None).ok().stdout;
    let mut w = Wrk::default();
    for line in out.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        match t.as_slice() {
            ["Requests/sec:", v] => w.rps = v.parse().unwrap_or(0.0),
            ["50%", v] => w.p50_ms = ms(v),
            ["99%", v] => w.p99_ms = ms(v),
            [n, "requests", "in", ..] => w.requests = n.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n] => w.non_2xx = n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                w.socket_errors = rest
                    .iter()
                    .filter_map(|x| x.trim_end_matches(',').parse::<u64>().ok())
                    .sum()
            }
            _ => {}
        }
    }
    w
}

fn print_wrk(name: &str, w: &Wrk) {
    println!(
        "  {name:<44} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>7.2} ms  ({} requests, {} non-2xx, {} socket errors)",
        w.rps, w.p50_ms, w.p99_ms, w.requests, w.non_2xx, w.socket_errors
    );
}

fn compile() {
    println!("\n## compile: Cranelift ahead of time (hostd precompile), and rollback switch");
    for f in [
        "hello.wasm",
        "ticker.wasm",
        "ticker.component.wasm",
        "http-hello.wasm",
    ] {
        for target in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] {
            let dir = tempfile::tempdir().unwrap();
            let mut best = u64::MAX;
            let mut size = 0;
            for _ in 0..5 {
                let out = run(
                    Command::new(hostd())
                        .args([
                            "precompile",
                            fixture(f).to_str().unwrap(),
                            "--target",
                            target,
                            "--json",
                            "-o",
                        ])
                        .arg(dir.path().join("o.cwasm")),
                    None,
                )
                .ok()
                .json();
                best = best.min(out["compile_ms"].as_u64().unwrap());
                size = out["output_bytes"].as_u64().unwrap();
            }
            println!("  {f:<24} {target:<28} {best:>5} ms (best of 5)  {size:>8} bytes");
        }
    }
    let h = Host::start();
    h.json(&[
        "deploy",
        "api",
        fixture("ticker.wasm").to_str().unwrap(),
        "--env",
        "TICK_MS=1000",
    ]);
    h.json(&[
        "deploy",
        "api",
        fixture("ticker.component.wasm").to_str().unwrap(),
        "--env",
        "TICK_MS=1000",
    ]);
    let mut switch = Vec::new();
    let mut wall = Vec::new();
    for i in 0..20 {
        let to = if i % 2 == 0 { "v1" } else { "v2" };
        let t = Instant::now();
        let out = h.json(&["rollback", "api", "--to", to]);
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
        switch.push(out["switch_ms"].as_u64().unwrap() as f64);
    }
    switch.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    println!(
        "  rollback (worker, 20 switches): switch p50 {:.0} ms, max {:.0} ms inside hostd; command wall p50 {:.1} ms, max {:.1} ms",
        switch[10], switch[19], wall[10], wall[19]
    );
}

/// CPU time and page faults of a process so far, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu: Duration,
    faults: u64,
}

fn usage(pid: u32) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // After ')': state(0) ppid pgrp session tty tpgid flags minflt(7)
    // cminflt majflt(9) cmajflt utime(11) stime(12).
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Usage {
        cpu: Duration::from_micros((get(11) + get(12)) * 1_000_000 / hz),
        faults: get(7) + get(9),
    }
}

/// One row of the ingress table: wrk's figures and what serving them cost
/// the server process.
struct Row {
    name: String,
    wrk: Wrk,
    cpu_us: f64,
    faults: f64,
}

/// Loads `url` for WRK_SECONDS after a warm-up, measuring process `pid`.
fn measure(name: String, pid: u32, url: &str, host: Option<&str>) -> Row {
    wrk(url, host, 2);
    let before = usage(pid);
    let w = wrk(url, host, WRK_SECONDS);
    let after = usage(pid);
    let n = w.requests.max(1) as f64;
    let row = Row {
        name,
        cpu_us: (after.cpu - before.cpu).as_secs_f64() * 1e6 / n,
        faults: (after.faults - before.faults) as f64 / n,
        wrk: w,
    };
    println!(
        "  {:<52} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>7.2} ms  {:>7.0} µs CPU/req  {:>7.1} faults/req  ({} non-2xx, {} socket errors)",
        row.name,
        row.wrk.rps,
        row.wrk.p50_ms,
        row.wrk.p99_ms,
        row.cpu_us,
        row.faults,
        row.wrk.non_2xx,
        row.wrk.socket_errors
    );
    row
}

/// Requests each reused instance serves in the reuse rows.
const REUSE: &str = "1000";

fn ingress() {
    println!(
        "\n## ingress: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s on the same 2 cores; CPU and page faults are the server process's, per request"
    );
    let wasmtime = tool("wasmtime");
    let version = wasmtime
        .as_ref()
        .map(|w| run(Command::new(w).arg("--version"), None).stdout)
        .unwrap_or_default();
    // INGRESS_ONLY=http-py.wasm (or http-hello.wasm) measures one
    // component; INGRESS_PEER=0 leaves wasmtime serve out (for trying a
    // change quickly; the figures to publish are of a whole run).
    let only = std::env::var("INGRESS_ONLY").ok();
    let with_peer = std::env::var("INGRESS_PEER").map_or(true, |v| v != "0");
    for (fixture_name, label) in [
        ("http-hello.wasm", "C hello (71 KB)"),
        ("http-py.wasm", "componentize-py hello (18 MB)"),
    ] {
        if only.as_deref().is_some_and(|o| o != fixture_name) {
            continue;
        }
        println!("\n### {label}: {fixture_name}");
        let wasm = fixture(fixture_name);
        let h = Host::start();
        let t = Instant::now();
        for (app, reuse) in [("fresh", None), ("reused", Some(REUSE))] {
            let mut args = vec!["deploy", app, wasm.to_str().unwrap(), "--replicas", "64"];
            if let Some(n) = reuse {
                args.extend(["--reuse", n]);
            }
            h.json(&args);
        }
        println!(
            "  (hostd compiled it twice in {:.1} s)",
            t.elapsed().as_secs_f64()
        );
        let pid = h.proc.pid();
        let url = format!("http://127.0.0.1:{}/", h.port);
        let fresh = measure(
            "hostd, a fresh instance per request".into(),
            pid,
            &url,
            Some("fresh.localhost"),
        );
        let reused = measure(
            format!("hostd --reuse {REUSE}"),
            pid,
            &url,
            Some("reused.localhost"),
        );
        drop(h);
        if !with_peer {
            continue;
        }
        let Some(wasmtime) = &wasmtime else {
            println!(
                "  wasmtime serve: not installed (hostd/benches/setup.sh installs it); no comparison"
            );
            continue;
        };
        let peer = |extra: &[&str]| {
            let port = free_port();
            let serve = Proc::spawn(
                "wasmtime serve",
                Command::new(wasmtime)
                    .args(["serve", "-S", "cli", "-O", "pooling-allocator"])
                    .args(extra)
                    .args(["--addr", &format!("127.0.0.1:{port}")])
                    .arg(&wasm)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            // It compiles the component before it listens: minutes for
            // CPython on one core.
            let start = Instant::now();
            while http(&format!("127.0.0.1:{port}"), "GET", "x", "/", b"").is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(600),
                    "wasmtime serve did not answer"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            let name = format!(
                "{} serve -S cli -O pooling-allocator {}",
                version.trim(),
                extra.join(" ")
            );
            let row = measure(
                name,
                serve.pid(),
                &format!("http://127.0.0.1:{port}/"),
                None,
            );
            drop(serve);
            row
        };
        let theirs = peer(&[]);
        let theirs_reused = peer(&["--max-instance-reuse-count", REUSE]);
        println!(
            "  without reuse: hostd / wasmtime serve {:.2}x req/s (goal ≥ 1.2x), p99 {:.2} vs {:.2} ms",
            fresh.wrk.rps / theirs.wrk.rps,
            fresh.wrk.p99_ms,
            theirs.wrk.p99_ms
        );
        println!(
            "  with reuse:    hostd --reuse / wasmtime serve {:.2}x req/s (goal ≥ {}), / wasmtime serve with reuse {:.2}x",
            reused.wrk.rps / theirs.wrk.rps,
            if fixture_name == "http-py.wasm" {
                "5x"
            } else {
                "2x"
            },
            reused.wrk.rps / theirs_reused.wrk.rps
        );
    }
}

/// Canaries: what a split costs the ingress, and how fast a bad canary is
/// cut off.
fn canary() {
    println!(
        "\n## canary: http-version-v1 (stable) and a canary, wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s"
    );
    let h = Host::start();
    let v = |n: &str| fixture(&format!("http-version-{n}.wasm"));
    h.json(&[
        "deploy",
        "ver",
        v("v1").to_str().unwrap(),
        "--replicas",
        "64",
    ]);
    let url = format!("http://127.0.0.1:{}/", h.port);
    let pid = h.proc.pid();
    let alone = measure("one release".into(), pid, &url, Some("ver.localhost"));
    h.json(&[
        "deploy",
        "ver",
        v("v2").to_str().unwrap(),
        "--canary",
        "50%",
        "--canary-window-s",
        "3600",
    ]);
    let split = measure(
        "two releases, 50% canary".into(),
        pid,
        &url,
        Some("ver.localhost"),
    );
    println!(
        "  two releases / one: {:.2}x req/s (goal ≥ 0.95x)",
        split.wrk.rps / alone.wrk.rps
    );
    h.json(&["abort", "ver"]);

    // A canary failing a third of its requests, under load from 2 threads.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(Instant, u16)>>> = Arc::default();
    let addr = format!("127.0.0.1:{}", h.port);
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (stop, seen, addr) = (stop.clone(), seen.clone(), addr.clone());
            std::thread::spawn(move || {
                let mut n = t as u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let path = if n.is_multiple_of(3) {
                        "/status/500"
                    } else {
                        "/"
                    };
                    if let Ok(r) = http(&addr, "GET", "ver.localhost", path, b"") {
                        seen.lock().unwrap().push((Instant::now(), r.status));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let deployed = Instant::now();
    h.json(&[
        "deploy",
        "ver",
        fixture("http-hello.wasm").to_str().unwrap(),
        "--kind",
        "http",
        "--canary",
        "10%",
        "--canary-window-s",
        "3600",
    ]);
    let live = Instant::now();
    let aborted = loop {
        let rel = h.json(&["releases", "ver"]);
        let failed = rel
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["version"] == "v3" && r["state"] == "failed");
        if failed {
            break Instant::now();
        }
        assert!(deployed.elapsed() < Duration::from_secs(60), "no abort");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let seen = seen.lock().unwrap();
    let bad: Vec<Instant> = seen
        .iter()
        .filter(|(_, s)| *s == 500)
        .map(|(t, _)| *t)
        .collect();
    let during = seen
        .iter()
        .filter(|(t, _)| *t >= live && *t <= aborted)
        .count();
    match (bad.first(), bad.last()) {
        (Some(first), Some(last)) => println!(
            "  bad canary (fails 1/3 of its requests) at 10%: first failed request {:.0} ms after the deploy returned, last {:.0} ms after the first ({} failed requests of {} while it was live; gate every 1 s); abort recorded {:.0} ms after the first",
            first.duration_since(live).as_secs_f64() * 1000.0,
            last.duration_since(*first).as_secs_f64() * 1000.0,
            bad.len(),
            during,
            aborted.saturating_duration_since(*first).as_secs_f64() * 1000.0,
        ),
        _ => println!("  bad canary: no failed request seen"),
    }
}

fn switch() {
    println!("\n## switch: deploy/rollback every 500 ms under wrk load (http-version-v1/v2)");
    let h = Host::start();
    let v1 = fixture("http-version-v1.wasm");
    let v2 = fixture("http-version-v2.wasm");
    h.json(&["deploy", "ver", v1.to_str().unwrap(), "--replicas", "64"]);
    h.json(&["deploy", "ver", v2.to_str().unwrap()]);
    let url = format!("http://127.0.0.1:{}/", h.port);
    wrk(&url, Some("ver.localhost"), 2);
    let calm = wrk(&url, Some("ver.localhost"), WRK_SECONDS);
    print_wrk("no switches", &calm);
    let data = h.dir.path().to_path_buf();
    let switcher = std::thread::spawn(move || {
        let mut n = 0;
        let end = Instant::now() + Duration::from_secs(WRK_SECONDS);
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(500));
            let to = if n % 2 == 0 { "v1" } else { "v2" };
            run(
                Command::new(hostd())
                    .arg("--data")
                    .arg(&data)
                    .args(["rollback", "ver", "--to", to]),
                None,
            )
            .ok();
            n += 1;
        }
        n
    });
    let busy = wrk(&url, Some("ver.localhost"), WRK_SECONDS);
    let switches = switcher.join().unwrap();
    print_wrk(&format!("{switches} switches during the run"), &busy);
    println!(
        "  failed requests during switches: {} (goal 0); p99 {:.2} ms vs {:.2} ms without switches",
        busy.non_2xx + busy.socket_errors,
        busy.p99_ms,
        calm.p99_ms
    );
}

/// Starts `wasmtime serve` on `wasm` with `flags`; None when not installed.
fn wasmtime_serve(wasm: &str, flags: &[&str]) -> Option<(Proc, u16, String)> {
    let wasmtime = tool("wasmtime")?;
    let version = run(Command::new(&wasmtime).arg("--version"), None)
        .stdout
        .trim()
        .to_string();
    let port = free_port();
    let proc = Proc::spawn(
        "wasmtime serve",
        Command::new(&wasmtime)
            .arg("serve")
            .args(flags)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .arg(fixture(wasm))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for("wasmtime serve", || {
        http(&format!("127.0.0.1:{port}"), "GET", "x", "/", b"").ok()
    });
    Some((proc, port, version))
}

const KV_SECONDS: u64 = 5;

fn kv() {
    println!(
        "\n## kv: one wasi:keyvalue call per request (kv.wasm, 100-byte values), wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{KV_SECONDS}s"
    );
    let redis = Redis::start();
    let h = Host::start();
    let wasm = fixture("kv.wasm");
    h.json(&[
        "deploy",
        "kvsql",
        wasm.to_str().unwrap(),
        "--kind",
        "http",
        "--replicas",
        "64",
    ]);
    h.json(&[
        "deploy",
        "kvred",
        wasm.to_str().unwrap(),
        "--kind",
        "http",
        "--replicas",
        "64",
        "--keyvalue-url",
        &redis.url(),
    ]);
    let value = "v".repeat(100);
    let base = format!("http://127.0.0.1:{}", h.port);
    let mut ours = Vec::new();
    for app in ["kvsql", "kvred"] {
        let host = format!("{app}.localhost");
        get(
            &format!("127.0.0.1:{}", h.port),
            &host,
            &format!("/set?key=k&value={value}"),
        );
        let floor = wrk(&format!("{base}/nothing"), Some(&host), KV_SECONDS);
        wrk(&format!("{base}/get?key=k"), Some(&host), 1);
        let g = wrk(&format!("{base}/get?key=k"), Some(&host), KV_SECONDS);
        let s = wrk(
            &format!("{base}/set?key=k&value={value}"),
            Some(&host),
            KV_SECONDS,
        );
        let name = if app == "kvsql" {
            "hostd, SQLite on the host"
        } else {
            "hostd, Redis"
        };
        print_wrk(&format!("{name}: no kv call (404)"), &floor);
        print_wrk(&format!("{name}: get"), &g);
        print_wrk(&format!("{name}: set"), &s);
        ours.push((name, g, s));
    }
    drop(h);
    match wasmtime_serve(
        "kv.wasm",
        &[
            "-S",
            "cli",
            "-S",
            "keyvalue",
            "-S",
            "config",
            "-O",
            "pooling-allocator",
            "--env",
            "KV_BUCKET=",
            "-S",
            &format!("keyvalue-in-memory-data=k={value}"),
        ],
    ) {
        Some((_p, port, version)) => {
            let base = format!("http://127.0.0.1:{port}");
            wrk(&format!("{base}/get?key=k"), None, 1);
            let g = wrk(&format!("{base}/get?key=k"), None, KV_SECONDS);
            let s = wrk(&format!("{base}/set?key=k&value={value}"), None, KV_SECONDS);
            print_wrk(&format!("{version} -S keyvalue (in memory): get"), &g);
            print_wrk(&format!("{version} -S keyvalue (in memory): set"), &s);
            for (name, og, os) in &ours {
                println!(
                    "  {name} / wasmtime serve: get {:.2}x, set {:.2}x req/s",
                    og.rps / g.rps,
                    os.rps / s.rps
                );
            }
        }
        None => println!("  wasmtime serve: not installed (hostd/benches/setup.sh); no comparison"),
    }
    match tool("redis-benchmark") {
        Some(rb) => {
            let out = run(
                Command::new(rb).args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &redis.port.to_string(),
                    "-t",
                    "get,set",
                    "-n",
                    "200000",
                    "-c",
                    WRK_CONNECTIONS,
                    "-d",
                    "100",
                    "--csv",
                ]),
                None,
            )
            .stdout;
            // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
            for line in out.lines().skip(1) {
                let f: Vec<&str> = line.split(',').map(|x| x.trim_matches('"')).collect();
                if f.len() >= 7 {
                    println!(
                        "  redis-benchmark -c{WRK_CONNECTIONS} -d100 {:<4} {:>9} ops/s   p50 {:>6} ms  p99 {:>7} ms (the server alone, no Wasm, no HTTP)",
                        f[0], f[1], f[4], f[6]
                    );
                }
            }
        }
        None => {
            println!("  redis-benchmark: not installed (fixtures/test-tools.sh); no comparison")
        }
    }
}

fn outbound() {
    println!(
        "\n## outbound: outbound.wasm calling a local upstream, wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{KV_SECONDS}s"
    );
    let up = Upstream::start("pong");
    let direct = wrk(&format!("{}/", up.url()), None, KV_SECONDS);
    print_wrk("the upstream called directly", &direct);
    let h = Host::start();
    h.json(&[
        "deploy",
        "out",
        fixture("outbound.wasm").to_str().unwrap(),
        "--kind",
        "http",
        "--replicas",
        "64",
        "--allow-outbound",
        &up.url(),
    ]);
    let path = format!("/call?to={}", urlencode(&format!("{}/", up.url())));
    let ours_url = format!("http://127.0.0.1:{}{path}", h.port);
    wrk(&ours_url, Some("out.localhost"), 1);
    let ours = wrk(&ours_url, Some("out.localhost"), KV_SECONDS);
    print_wrk("through an app on hostd", &ours);
    println!(
        "  added by hostd + the guest: p50 {:+.2} ms, p99 {:+.2} ms",
        ours.p50_ms - direct.p50_ms,
        ours.p99_ms - direct.p99_ms
    );
    drop(h);
    if let Some((_p, port, version)) = wasmtime_serve(
        "outbound.wasm",
        &["-S", "cli", "-S", "http", "-O", "pooling-allocator"],
    ) {
        let url = format!("http://127.0.0.1:{port}{path}");
        wrk(&url, None, 1);
        let theirs = wrk(&url, None, KV_SECONDS);
        print_wrk(&format!("through {version} serve -S http"), &theirs);
        println!(
            "  added by wasmtime serve + the guest: p50 {:+.2} ms, p99 {:+.2} ms",
            theirs.p50_ms - direct.p50_ms,
            theirs.p99_ms - direct.p99_ms
        );
    }
}

const MESSAGES: usize = 20_000;
/// The backlog consumed while rollbacks switch consumers every 500 ms.
const ROLLBACK_MESSAGES: usize = 100_000;

/// Waits until group `g` of `stream` has nothing pending and no lag.
fn wait_drained(redis: &Redis, stream: &str) -> Duration {
    let t = Instant::now();
    loop {
        if redis.group_state(stream) == (0, 0) {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "not drained: {:?}",
            redis.group_state(stream)
        );
    }
}

fn fill(redis: &Redis, stream: &str, n: usize) {
    redis.xadd_payloads(stream, 0..n);
}

/// A native consumer of the same group work: read 64 at a time, "handle"
/// (format the line the Wasm handler prints), acknowledge.
fn native(url: &str, stream: &str) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use redis::AsyncCommands;
        use redis::streams::{StreamReadOptions, StreamReadReply};
        let client = redis::Client::open(url).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let _: redis::RedisResult<()> = c.xgroup_create_mkstream(stream, "native", "0").await;
        let t = Instant::now();
        let mut sink = Vec::new();
        let mut done = 0;
        while done < MESSAGES {
            let opts = StreamReadOptions::default()
                .group("native", "bench")
                .count(64)
                .block(1000);
            let r: Option<StreamReadReply> =
                c.xread_options(&[stream], &[">"], &opts).await.unwrap();
            let ids: Vec<_> = r
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect();
            let mut acks = Vec::new();
            for id in &ids {
                let p: Vec<u8> = id.get("payload").unwrap_or_default();
                sink.push(format!("handled {}", String::from_utf8_lossy(&p)));
                acks.push(id.id.clone());
            }
            if !acks.is_empty() {
                let _: () = c.xack(stream, "native", &acks).await.unwrap();
            }
            done += ids.len();
        }
        t.elapsed()
    })
}

fn message() {
    println!(
        "\n## message: {MESSAGES} stream messages, message-handler.wasm (prints a line), --replicas 8, one host"
    );
    let redis = Redis::start();
    fill(&redis, "jobs", MESSAGES);
    let h = Host::start();
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    // Compiled and stored first (no consumer at 0 replicas); the clock
    // runs from the scale that starts the consumer to the last XACK.
    h.json(&[
        "deploy",
        "q",
        fixture("message-handler.wasm").to_str().unwrap(),
        "--stream",
        &src,
        "--group",
        "g",
        "--replicas",
        "0",
    ]);
    let t = Instant::now();
    h.json(&["scale", "q", "8"]);
    wait_drained(&redis, "jobs");
    let ours = t.elapsed();
    let ours_rate = MESSAGES as f64 / ours.as_secs_f64();
    // Handling latency, from the records hostd writes per message.
    let logs = h
        .run(&["logs", "q", "--since", "0", "--json"])
        .ok()
        .json_lines();
    let mut ms: Vec<f64> = logs
        .iter()
        .filter_map(|r| {
            let l = r["line"].as_str()?;
            let x = l.strip_prefix("message jobs ")?;
            let t = x.rsplit_once(" in ")?.1.strip_suffix(" ms")?;
            t.parse().ok()
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        ms.get(((ms.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "  hostd (XADD backlog -> handled -> XACK)      {ours_rate:>9.0} msg/s ({:.2} s from the scale to the last XACK), handling p50 {:.2} ms, p99 {:.2} ms ({} records)",
        ours.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        ms.len()
    );
    let native_t = native(&redis.url(), "jobs");
    let native_rate = MESSAGES as f64 / native_t.as_secs_f64();
    println!(
        "  native Rust consumer of the same stream      {native_rate:>9.0} msg/s ({:.2} s)",
        native_t.as_secs_f64()
    );
    println!("  hostd / native: {:.2}x", ours_rate / native_rate);
    drop(h);

    // Rollbacks every 500 ms while a fresh backlog is consumed.
    let redis2 = Redis::start();
    fill(&redis2, "jobs", ROLLBACK_MESSAGES);
    let h = Host::start();
    let src = format!("redis://127.0.0.1:{}/jobs", redis2.port);
    let m = fixture("message-handler.wasm");
    h.json(&[
        "deploy",
        "q",
        m.to_str().unwrap(),
        "--stream",
        &src,
        "--group",
        "g",
        "--replicas",
        "0",
    ]);
    h.json(&[
        "deploy",
        "q",
        m.to_str().unwrap(),
        "--stream",
        &src,
        "--group",
        "g",
        "--replicas",
        "8",
    ]);
    let t = Instant::now();
    let data = h.dir.path().to_path_buf();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let switcher = std::thread::spawn(move || {
        let mut n = 0;
        while !s2.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(500));
            let to = if n % 2 == 0 { "v1" } else { "v2" };
            run(
                Command::new(hostd())
                    .arg("--data")
                    .arg(&data)
                    .args(["rollback", "q", "--to", to, "--json"]),
                None,
            );
            n += 1;
        }
        n
    });
    wait_drained(&redis2, "jobs");
    let took = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let switches = switcher.join().unwrap();
    let logs = h
        .run(&["logs", "q", "--since", "0", "--json"])
        .ok()
        .json_lines();
    let mut seen = std::collections::HashMap::new();
    for r in &logs {
        if let Some(p) = r["line"].as_str().and_then(|l| l.strip_prefix("handled ")) {
            *seen.entry(p.to_string()).or_insert(0u32) += 1;
        }
    }
    let lost = (0..ROLLBACK_MESSAGES)
        .filter(|i| !seen.contains_key(&format!("m{i}")))
        .count();
    let twice = seen.values().filter(|n| **n > 1).count();
    println!(
        "  with a rollback every 500 ms ({switches} switches): {:>9.0} msg/s; lost {lost}, handled twice {twice} (goal 0 and 0)",
        ROLLBACK_MESSAGES as f64 / took.as_secs_f64()
    );
}

fn main() {
    let want = bench_sections("hostd bench");
    if want("compile") {
        compile();
    }
    if want("ingress") {
        ingress();
    }
    if want("switch") {
        switch();
    }
    if want("canary") {
        canary();
    }
    if want("kv") {
        kv();
    }
    if want("outbound") {
        outbound();
    }
    if want("message") {
        message();
    }
}
