//! The fleet bench: figures, not tests. Real processes on loopback.
//!
//! ```text
//! cargo build --release --workspace
//! cargo bench -p ssh-gateway --bench fleet            # every section
//! cargo bench -p ssh-gateway --bench fleet -- rollback
//! ```
//!
//! - `rollback`: wall time of `hostd --gateway … rollback` (command → every
//!   host serving the kept release) for 1, 3 and 10 hosts.
//! - `deploy`: deploy-to-ready of a 12 MB http component on 3 hosts (fetch
//!   through the tunnels, compile on each host, switch, first 200 from each).
//! - `scale` (only when named): HOSTS (default 200) agents on one gateway: join time, the
//!   gateway's idle CPU and RSS per host, deploy to all of them (first,
//!   another component, cached code), rollback, `logs --tail 100` fan-in,
//!   and how long all take to come back after the gateway is killed.
//! - `failover`: HOSTS (default 20) agents on two gateways sharing a real
//!   PostgreSQL (Debian's, started unprivileged in a temp dir): deploy and
//!   rollback beside the same fleet on SQLite, then how long a standby takes
//!   to be active after kill -9 of the active gateway (and after a clean
//!   stop), and until every host is back.
//! - `logs`: log lines/s from an app's store to an SSH client through the
//!   gateway, against OpenSSH's `ssh localhost cat FILE` of the same bytes
//!   (where an `sshd` is installed: `fixtures/bench-tools.sh`) and a raw
//!   russh channel, with CPU seconds per million lines. Each command's wall
//!   time, and its streaming rate: the wall time less what a command that
//!   moves nothing costs on the same path (process start, SSH handshake).

#[path = "../../fixtures/harness.rs"]
mod harness;
#[path = "fleet/peers.rs"]
mod peers;
#[allow(dead_code)]
#[path = "fleet/setup.rs"]
mod setup;

use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::*;
use peers::{openssh_cat, raw_russh};
use setup::*;

fn rollback() {
    println!(
        "\n## rollback: `hostd --gateway … rollback --to vN` wall time (every host switched when it returns)"
    );
    for hosts in [1usize, 3, 10] {
        let f = Fleet::start(hosts);
        let r = hosts.to_string();
        f.ops(&[
            "deploy",
            "api",
            fixture("ticker.wasm").to_str().unwrap(),
            "--replicas",
            &r,
            "--env",
            "TICK_MS=1000",
        ])
        .ok();
        f.ops(&[
            "deploy",
            "api",
            fixture("ticker.component.wasm").to_str().unwrap(),
            "--env",
            "TICK_MS=1000",
        ])
        .ok();
        let mut wall = Vec::new();
        let mut inside = Vec::new();
        for i in 0..10 {
            let to = if i % 2 == 0 { "v1" } else { "v2" };
            let t = Instant::now();
            let out = f
                .ops(&["rollback", "api", "--to", to, "--json"])
                .ok()
                .json();
            wall.push(t.elapsed().as_secs_f64() * 1000.0);
            inside.push(out["switch_ms"].as_f64().unwrap_or(0.0));
        }
        println!(
            "  {hosts:>2} host(s): wall p50 {:>6.1} ms, max {:>6.1} ms; inside the gateway p50 {:>5.1} ms (10 rollbacks)",
            percentile(&mut wall.clone(), 0.5),
            percentile(&mut wall, 1.0),
            percentile(&mut inside, 0.5)
        );
    }
}

fn deploy() {
    println!(
        "\n## deploy-to-ready: a 12 MB http component (http-hello padded with a custom section) on 3 hosts"
    );
    let f = Fleet::start(3);
    let base = std::fs::read(fixture("http-hello.wasm")).unwrap();
    let mut big = base.clone();
    let name = b"cranefleet-padding";
    let payload = (12usize << 20) - base.len() - name.len() - 16;
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.resize(body.len() + payload, 0x5a);
    big.push(0);
    let mut n = body.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            big.push(b);
            break;
        }
        big.push(b | 0x80);
    }
    big.extend_from_slice(&body);
    let path = f.dir.path().join("big.wasm");
    std::fs::write(&path, &big).unwrap();
    let t = Instant::now();
    f.ops(&["deploy", "big", path.to_str().unwrap(), "--replicas", "3"])
        .ok();
    let deployed = t.elapsed();
    for (_, http, _) in &f.agents {
        wait_for("200 from every host", || {
            let r = http_get(*http)?;
            (r == 200).then_some(())
        });
    }
    println!(
        "  {} bytes: deploy command {:.2} s (fetch + compile on 3 hosts in parallel, then switch); serving on all 3 after {:.2} s",
        big.len(),
        deployed.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
}

fn logs() {
    const LINES: u64 = 300_000;
    println!("\n## logs: records from a host's store to an SSH client through the gateway");
    println!(
        "  (SSH ciphers, every hop and peer: {})",
        if schema::tunnel::hardware_aes() {
            "AES-256-GCM first (this CPU does AES in hardware)"
        } else {
            "ChaCha20-Poly1305 first"
        }
    );
    let f = Fleet::start(1);
    let stored = fill_store(&f, LINES);
    const RUNS: usize = 3;
    // What connecting costs (process start, SSH handshake, auth, a request
    // answered): a read of one record.
    let connect = median_secs(RUNS, || {
        f.ops_cmd()
            .args(["logs", "spam", "--tail", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
    });
    for (what, extra) in [
        ("every record", vec![]),
        (
            "--where 'line contains \"7\"'",
            vec!["--where", "line contains \"7\""],
        ),
    ] {
        let read = read_logs(&f, &extra, RUNS);
        let (n, whole) = (read.lines, percentile(&mut read.secs.clone(), 0.5));
        println!(
            "  {what:<32} {n:>8} lines: command {:>9.0} lines/s (median of {}), streaming {:>9.0} lines/s (less {:.0} ms to connect); {:.1} CPU s per million lines (gateway + agent)",
            n / whole,
            read.secs
                .iter()
                .map(|s| format!("{:.0} ms", s * 1e3))
                .collect::<Vec<_>>()
                .join(", "),
            n / (whole - connect).max(1e-3),
            connect * 1e3,
            percentile(&mut read.cpus.clone(), 0.5)
        );
        if extra.is_empty() {
            compare_with_peers(&f, &read, whole, connect, RUNS);
        }
    }
    println!(
        "  ({stored} records stored of 4 × {LINES} written; the rest were dropped at capture, as hostd reports, because the app wrote them faster than any store)"
    );
}

/// Deploys the log flooder four times, `lines` lines each, so a read's
/// fixed costs (process start, SSH handshake) are a small part of its
/// time; the number of records stored.
fn fill_store(f: &Fleet, lines: u64) -> u64 {
    let mut stored = 0;
    for run in 1..=4 {
        f.ops(&[
            "deploy",
            "spam",
            fixture("logspam.wasm").to_str().unwrap(),
            "--env",
            &format!("LINES={lines}"),
            "--env",
            "LONG_LINE=10",
            "--env",
            "STAY=1",
            "--env",
            &format!("RUN={run}"),
        ])
        .ok();
        // The app floods faster than any store; wait until what it wrote is stored.
        stored = wait_settled("the store to settle", Duration::from_millis(300), || {
            let r = f
                .ops(&["logs", "spam", "--tail", "1", "--json"])
                .ok()
                .json_lines();
            r.first().and_then(|v| v["seq"].as_u64()).unwrap_or(0)
        });
    }
    stored
}

/// `runs` reads of every stored record (with `extra` arguments).
struct Read {
    /// Each read's wall time.
    secs: Vec<f64>,
    /// Each read's CPU seconds per million lines, gateway and agent.
    cpus: Vec<f64>,
    /// Lines a read returned.
    lines: f64,
    /// What the last read printed.
    output: Vec<u8>,
}

fn read_logs(f: &Fleet, extra: &[&str], runs: usize) -> Read {
    let pids: Vec<u32> = f.procs.iter().map(|p| p.pid()).collect();
    let mut read = Read {
        secs: Vec::new(),
        cpus: Vec::new(),
        lines: 0.0,
        output: Vec::new(),
    };
    for _ in 0..runs {
        let cpu_before: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
        let t = Instant::now();
        let mut args = vec!["logs", "spam", "--since", "0"];
        args.extend(extra.iter().copied());
        let out = f
            .ops_cmd()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        read.secs.push(t.elapsed().as_secs_f64());
        read.lines = out.stdout.iter().filter(|b| **b == b'\n').count() as f64;
        let cpu = pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - cpu_before;
        read.cpus.push(cpu / read.lines.max(1.0) * 1e6);
        read.output = out.stdout;
    }
    read
}

/// The same bytes through OpenSSH (where an `sshd` is installed) and a
/// bare russh channel, against ours (`whole` seconds a read, `connect`
/// of them connecting).
fn compare_with_peers(f: &Fleet, read: &Read, whole: f64, connect: f64, runs: usize) {
    let (n, bigfile) = (read.lines, &read.output);
    let ours_streaming = n / (whole - connect).max(1e-3);
    match openssh_cat(f, bigfile, runs) {
        Some((cat, connect)) => println!(
            "  OpenSSH `ssh localhost cat FILE` {n:>8} lines ({:.0} MB): command {:>9.0} lines/s, streaming {:>9.0} lines/s (less {:.0} ms for `ssh localhost true`); cranefleet / OpenSSH: command {:.2}x, streaming {:.2}x",
            bigfile.len() as f64 / 1e6,
            n / cat,
            n / (cat - connect).max(1e-3),
            connect * 1e3,
            cat / whole,
            ours_streaming / (n / (cat - connect).max(1e-3)),
        ),
        None => println!(
            "  OpenSSH: no sshd here (fixtures/bench-tools.sh installs it); raw russh only"
        ),
    }
    let mut peer: Vec<f64> = (0..runs).map(|_| raw_russh(n as u64)).collect();
    let peer = percentile(&mut peer, 0.5);
    println!(
        "  raw russh channel in one process {n:>8} lines: streaming {peer:>9.0} lines/s; cranefleet streaming / raw russh = {:.2}x",
        ours_streaming / peer
    );
}

/// A fleet of HOSTS (default 200) real agents on one gateway: joining,
/// idle cost, deploy, rollback and logs fan-in at that size.
fn scale() {
    let hosts: usize = std::env::var("HOSTS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(200);
    println!(
        "\n## scale: {hosts} `hostd agent --http none --max-instances 8` on one gateway, real SSH tunnels"
    );
    let t = Instant::now();
    let mut f = Fleet::start_with(hosts, &["--http", "none", "--max-instances", "8"]);
    println!(
        "  {hosts} agents started and joined a fresh gateway: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let agents_rss: u64 = f.procs[1..].iter().map(|p| rss_kib(p.pid())).sum();
    println!(
        "  agents' RSS: {} MiB in all, {} MiB each",
        agents_rss >> 10,
        (agents_rss / hosts as u64) >> 10
    );
    let gw = f.procs[0].pid();
    let (cpu0, rss0) = (cpu_seconds(gw), rss_kib(gw));
    std::thread::sleep(Duration::from_secs(10));
    let cpu = cpu_seconds(gw) - cpu0;
    println!(
        "  gateway idle (heartbeats) with {hosts} hosts: RSS {} MiB ({} KiB per host), CPU {:.1}% of a core ({:.0} µs per host per second)",
        rss0 >> 10,
        rss0 / hosts as u64,
        cpu / 10.0 * 100.0,
        cpu / 10.0 / hosts as f64 * 1e6
    );
    let r = hosts.to_string();
    let deploy = |file: &str| {
        let t = Instant::now();
        f.ops(&[
            "deploy",
            "api",
            fixture(file).to_str().unwrap(),
            "--replicas",
            &r,
            "--env",
            "TICK_MS=1000",
        ])
        .ok();
        t.elapsed().as_secs_f64()
    };
    let first = deploy("ticker.wasm");
    let cpu0 = cpu_seconds(gw);
    let second = deploy("ticker.component.wasm");
    let deploy_cpu = cpu_seconds(gw) - cpu0;
    let rss_deploy = rss_kib(gw);
    let cached = deploy("ticker.wasm");
    println!(
        "  deploy to all {hosts} (one replica each, every host running it when the command returns): first {first:.2} s, a second component {second:.2} s (gateway CPU {deploy_cpu:.2} s, RSS {} MiB), code every host has compiled {cached:.2} s (goal < 5 s)",
        rss_deploy >> 10
    );
    let (p50, max) = rollbacks(&f, ["v2", "v3"]);
    println!(
        "  rollback of all {hosts}: p50 {p50:.0} ms, max {max:.0} ms (6 rollbacks; goal p50 < 1 s)"
    );
    std::thread::sleep(Duration::from_secs(2));
    let mut lines = 0;
    let logs = median_secs(3, || {
        let out = f.ops(&["logs", "api", "--tail", "100"]).ok();
        lines = out.stdout.lines().count();
    });
    println!(
        "  logs api --tail 100 fanned in from {hosts} hosts: {:.0} ms ({lines} lines; median of 3; goal < 1 s)",
        logs * 1000.0
    );
    f.kill9(0);
    let t = Instant::now();
    f.restart(0);
    f.wait_up(hosts, Duration::from_secs(600));
    println!(
        "  every host back after a gateway kill -9 and restart: {:.1} s (goal < 10 s)",
        t.elapsed().as_secs_f64()
    );
}

/// Times of 6 rollbacks of `api` to each of `to` in turn: p50 and max, ms.
fn rollbacks(f: &Fleet, to: [&str; 2]) -> (f64, f64) {
    let mut wall = Vec::new();
    for i in 0..6 {
        let to = to[i % 2];
        let t = Instant::now();
        f.ops(&["rollback", "api", "--to", to]).ok();
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    (
        percentile(&mut wall.clone(), 0.5),
        percentile(&mut wall, 1.0),
    )
}

/// Two gateways on one PostgreSQL: what the database costs an operation
/// (beside the same fleet on SQLite), and how long a failover takes.
fn failover() {
    let hosts: usize = std::env::var("HOSTS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(20);
    println!(
        "\n## failover: {hosts} `hostd agent --http none` on two gateways sharing PostgreSQL (default 10 s lease)"
    );
    let pg = Postgres::start();
    let agent = ["--http", "none", "--max-instances", "8"];
    let deploy_both = |f: &Fleet| {
        let r = hosts.to_string();
        let mut times = Vec::new();
        for file in ["ticker.wasm", "ticker.component.wasm"] {
            let t = Instant::now();
            f.ops(&[
                "deploy",
                "api",
                fixture(file).to_str().unwrap(),
                "--replicas",
                &r,
                "--env",
                "TICK_MS=1000",
            ])
            .ok();
            times.push(t.elapsed().as_secs_f64());
        }
        times
    };
    for (label, db) in [("SQLite", None), ("PostgreSQL", Some(pg.database("fleet")))] {
        let f = Fleet::start_on(hosts, &agent, db.as_deref());
        let d = deploy_both(&f);
        let (p50, max) = rollbacks(&f, ["v1", "v2"]);
        println!(
            "  {label}: deploy to all {:.2} s then {:.2} s; rollback of all p50 {p50:.0} ms (max {max:.0})",
            d[0], d[1]
        );
        if db.is_none() {
            continue;
        }
        let mut f = f;
        let standby = f.procs.len() - 1;
        let standby_port = f.standby_port.unwrap();
        wait_for("the standby to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", standby_port)).ok()
        });
        f.kill9(0);
        let t = Instant::now();
        while !f.answers(standby_port) {
            assert!(t.elapsed() < Duration::from_secs(120), "no takeover");
            std::thread::sleep(Duration::from_millis(100));
        }
        let took = t.elapsed().as_secs_f64();
        f.wait_up(hosts, Duration::from_secs(600));
        let back = t.elapsed().as_secs_f64();
        let (p50, _) = rollbacks(&f, ["v1", "v2"]);
        println!(
            "  kill -9 of the active gateway: the standby active after {took:.1} s (goal < 15 s), all {hosts} hosts back after {back:.1} s; a rollback there p50 {p50:.0} ms"
        );
        // The killed one comes back as a standby; a clean stop of the
        // active one lets the lease go at once.
        f.restart(0);
        std::thread::sleep(Duration::from_secs(2));
        f.procs[standby].stop();
        let t = Instant::now();
        while !f.answers(f.port) {
            assert!(t.elapsed() < Duration::from_secs(120), "no takeover");
            std::thread::sleep(Duration::from_millis(100));
        }
        let took = t.elapsed().as_secs_f64();
        f.wait_up(hosts, Duration::from_secs(600));
        println!(
            "  clean stop (SIGTERM) of the active gateway: the other active after {took:.1} s, all hosts back after {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    let want = bench_sections("fleet bench");
    // 200 processes: only when asked for by name.
    if std::env::args().any(|a| a == "scale") {
        scale();
    }
    if want("rollback") {
        rollback();
    }
    if want("deploy") {
        deploy();
    }
    if want("logs") {
        logs();
    }
    if want("failover") {
        failover();
    }
}
