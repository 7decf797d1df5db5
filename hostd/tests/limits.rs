//! What a client, a neighbour on the machine or a careless key may cost a
//! host: the ingress's caps and timeouts, file modes, unprotected keys.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Reads what the server sends until it closes (or `limit` passes).
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(got),
            Err(e) => return Err(format!("still open after {limit:?}: {e}")),
        }
    }
}

#[test]
fn two_host_headers_are_answered_400() {
    let h = Hostd::start();
    h.deploy("hello", "http-hello.wasm", &[]);
    let mut s = TcpStream::connect(h.http_addr()).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nHost: evil.localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let raw = read_until_closed(&mut s, DEADLINE).unwrap();
    let r = parse_response(&raw).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("more than one Host"), "{}", r.text());
    assert_eq!(get(&h.http_addr(), "hello.localhost", "/").status, 200);
}

#[test]
fn past_the_connection_cap_the_ingress_answers_503_and_the_control_socket_keeps_working() {
    let h = Hostd::start_with(&[
        "--http-max-connections",
        "8",
        "--http-header-timeout-s",
        "2",
    ]);
    h.deploy("hello", "http-hello.wasm", &[]);
    // Eight connections that never send a byte hold every slot.
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(h.http_addr()).unwrap())
        .collect();
    let full = wait_for("the cap to answer 503", || {
        let mut s = TcpStream::connect(h.http_addr()).ok()?;
        let raw = read_until_closed(&mut s, DEADLINE).ok()?;
        let r = parse_response(&raw).ok()?;
        (r.status == 503).then_some(r)
    });
    assert!(
        full.text().contains("as many http connections as it may"),
        "{}",
        full.text()
    );
    // The control socket is not the ingress's to starve.
    assert_eq!(h.run(&["ps"]).code, 0);
    // Headers that never come: each idle connection is closed after the
    // header timeout, and the slots serve again.
    for s in &mut idle {
        read_until_closed(s, DEADLINE).expect("the header timeout closes a silent connection");
    }
    wait_for("a slot to serve again", || {
        let r = http(&h.http_addr(), "GET", "hello.localhost", "/", b"").ok()?;
        (r.status == 200).then_some(())
    });
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let h = Hostd::start_with(&["--http-idle-timeout-s", "1"]);
    h.deploy("hello", "http-hello.wasm", &[]);
    let mut s = TcpStream::connect(h.http_addr()).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then closed once idle.
    let rest = read_until_closed(&mut s, DEADLINE).expect("the idle connection is closed");
    assert!(rest.is_empty() || rest.ends_with(b"\n"));
}

#[test]
fn a_hosts_files_are_its_owners_alone() {
    let mut h = Hostd::start();
    h.deploy("api", "ticker.wasm", &["--env", "SECRET=hunter2"]);
    assert_eq!(mode(h.data()), 0o700, "the data directory");
    for f in ["hostd.db", "hostd.db-wal", "logs.db"] {
        let p = h.data().join(f);
        if p.exists() {
            assert_eq!(mode(&p) & 0o077, 0, "{f} is readable by others");
        }
    }
    // A data directory others could read is taken back at the next start.
    std::fs::set_permissions(h.data(), std::fs::Permissions::from_mode(0o755)).unwrap();
    h.restart();
    assert_eq!(mode(h.data()), 0o700);
}

#[test]
fn an_agent_refuses_a_host_key_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("host_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (fixtures/test-tools.sh installs it)");
    assert!(made.success());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let data = dir.path().join("data");
    let r = run(
        std::process::Command::new(hostd_bin())
            .args(["--data", data.to_str().unwrap(), "--gateway", "127.0.0.1:1"])
            .args(["agent", "--http", "none", "--host-key"])
            .arg(&key),
        None,
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("UNPROTECTED PRIVATE KEY FILE") && r.stderr.contains("0644"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_emptied_database_beside_the_hosts_state_is_refused_and_nothing_is_deleted() {
    let mut h = Hostd::start();
    h.deploy("api", "ticker.wasm", &[]);
    h.wait_running("api", "v1", 1);
    h.stop();
    let count = |d: &str| std::fs::read_dir(h.data().join(d)).unwrap().count();
    let (artifacts, cache) = (count("artifacts"), count("cache"));
    assert!(artifacts > 0 && cache > 0);
    for f in ["hostd.db-wal", "hostd.db-shm"] {
        let _ = std::fs::remove_file(h.data().join(f));
    }
    std::fs::write(h.data().join("hostd.db"), b"").unwrap();
    let r = run(
        std::process::Command::new(hostd_bin())
            .args(["serve", "--http", "none", "--data"])
            .arg(h.data())
            .env_remove("CRANEFLEET_SOCKET"),
        None,
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("hostd.db is empty (0 bytes)")
            && r.stderr.contains("restore the database"),
        "{}",
        r.stderr
    );
    assert_eq!(
        (count("artifacts"), count("cache")),
        (artifacts, cache),
        "nothing deleted"
    );
}

#[test]
fn a_flood_of_long_lines_costs_a_bounded_queue_and_no_lifecycle_record_is_lost() {
    let h = Hostd::start();
    // A worker writing 16 KiB lines as fast as it can.
    let flood = h.data().join("flood.wasm");
    std::fs::write(
        &flood,
        ::wat::parse_str(
            r#"(module
              (import "wasi_snapshot_preview1" "fd_write"
                (func $fd_write (param i32 i32 i32 i32) (result i32)))
              (memory (export "memory") 1)
              (data (i32.const 0) "\10\00\00\00\00\40\00\00")
              (func (export "_start")
                (memory.fill (i32.const 16) (i32.const 120) (i32.const 16383))
                (i32.store8 (i32.const 16399) (i32.const 10))
                (loop $l
                  (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
                  (br $l))))"#,
        )
        .unwrap(),
    )
    .unwrap();
    let before = rss_kib_of(h.pid()).unwrap_or(0);
    let r = h.run(&[
        "deploy",
        "flood",
        flood.to_str().unwrap(),
        "--kind",
        "worker",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The writer cannot keep up with 16 KiB lines from a tight loop: lines
    // are dropped, and said to be.
    h.wait_log("flood", "a drop notice", |r| {
        r["stream"] == "system" && r["line"].as_str().unwrap_or("").contains("lines dropped")
    });
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(rss_kib_of(h.pid()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        peak < before + 400 * 1024,
        "the flood cost hostd {} MiB",
        (peak.saturating_sub(before)) >> 10
    );
    // A lifecycle record gets through the flood: a follower of the
    // system records (live, as they are committed) sees the scale.
    let mut follow = h
        .cmd()
        .args([
            "logs",
            "flood",
            "-f",
            "--tail",
            "0",
            "--where",
            "stream == \"system\"",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Lines::new(follow.stdout.take().unwrap());
    assert_eq!(h.run(&["scale", "flood", "0"]).code, 0);
    lines.wait_for("the scale record", |l| l.contains("scaled 1 -> 0"));
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn sigterm_ends_the_daemon_within_its_grace_whatever_an_apps_stop_grace() {
    let mut h = Hostd::start();
    // The longest stop grace there is, for an app that never stops by itself.
    h.deploy(
        "api",
        "ticker.wasm",
        &["--stop-grace-ms", "300000", "--replicas", "3"],
    );
    h.wait_running("api", "v1", 3);
    let started = std::time::Instant::now();
    h.proc().signal("TERM");
    wait_for("hostd to exit after SIGTERM", || {
        h.proc().child.try_wait().ok().flatten().map(|_| ())
    });
    // The daemon documents 10 s; a 5-minute stop grace does not hold it.
    println!("exited {:?} after SIGTERM", started.elapsed());
}

#[test]
fn daemon_limits_past_their_ceiling_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let max = u64::MAX.to_string();
    for flag in [
        "--max-artifact-mb",
        "--log-cap-mb",
        "--max-request-body-mb",
        "--http-max-connections",
        "--http-header-timeout-s",
        "--http-idle-timeout-s",
    ] {
        let r = run(
            std::process::Command::new(hostd_bin())
                .arg("--data")
                .arg(dir.path())
                .args(["serve", "--http", "none", flag, &max]),
            None,
        );
        assert_eq!(r.code, 2, "{flag}: {}", r.stderr);
        assert!(r.stderr.contains(flag), "{flag}: {}", r.stderr);
    }
}
