//! Every attack of the trust issue at once, for a minute: figures, not a
//! test. Real processes on loopback.
//!
//! ```text
//! cargo build --release --workspace
//! cargo bench -p ssh-gateway --bench attack            # 60 s
//! cargo bench -p ssh-gateway --bench attack -- 20      # 20 s
//! ```
//!
//! A gateway and a host serve an http app while, together:
//!
//! - raw TCP connections that never authenticate hold the SSH port (200 at
//!   a time, opened again as they are closed);
//! - unknown keys try to log in with 30 000-character user names;
//! - 2 000 half-open HTTP requests hold the host's ingress;
//! - an app floods its log with 16 KiB lines;
//! - an enrolled host key asks for a 16 MiB artifact 300 times and never
//!   reads;
//! - a viewer runs changes with escape sequences in their arguments;
//! - a compile bomb (150 000 functions) is deployed every two seconds.
//!
//! Every second it samples both daemons' memory, and whether `ps` through
//! the gateway (from the flooding address, and from another one: the
//! gateway caps unauthenticated connections per source) and a GET through
//! the ingress still answer. It prints the
//! peaks, the success rates, and whether both daemons lived.

#[path = "../../fixtures/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "fleet/setup.rs"]
mod setup;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use harness::*;
use setup::Fleet;

/// Runs `f` in a loop on a thread until `stop`.
fn attack(
    stop: &Arc<AtomicBool>,
    mut f: impl FnMut() + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            f();
        }
    })
}

fn wasm(dir: &std::path::Path, name: &str, wat: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, ::wat::parse_str(wat).unwrap()).unwrap();
    p.display().to_string()
}

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let f = Arc::new(Fleet::start(1));
    let dir = f.dir.path().to_path_buf();
    let (gw_pid, host_pid) = (f.procs[0].pid(), f.procs[1].pid());
    let http_port = f.agents[0].1;
    let gw_port = f.port;
    f.ops(&[
        "deploy",
        "web",
        fixture("http-hello.wasm").to_str().unwrap(),
    ])
    .ok();
    let flood = wasm(
        &dir,
        "flood.wasm",
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "\10\00\00\00\00\40\00\00")
          (func (export "_start")
            (memory.fill (i32.const 16) (i32.const 120) (i32.const 16383))
            (i32.store8 (i32.const 16399) (i32.const 10))
            (loop $l (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))))"#,
    );
    f.ops(&["deploy", "flood", &flood, "--kind", "worker"]).ok();
    // A 16 MiB artifact for the fetch flood.
    let big = padded_wasm(
        &std::fs::read(fixture("ticker.component.wasm")).unwrap(),
        16 << 20,
    );
    let big_path = dir.join("big.wasm");
    std::fs::write(&big_path, &big).unwrap();
    let digest = schema::artifact::digest(&big);
    f.ops(&[
        "deploy",
        "big",
        big_path.to_str().unwrap(),
        "--kind",
        "worker",
        "--replicas",
        "0",
    ])
    .ok();
    let funcs = "(func)".repeat(150_000);
    let bomb = wasm(
        &dir,
        "bomb.wasm",
        &format!(r#"(module {funcs} (func (export "_start")))"#),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    // Unauthenticated TCP connections holding the SSH port.
    threads.push(attack(&stop, move || {
        let held: Vec<TcpStream> = (0..200)
            .filter_map(|_| TcpStream::connect(("127.0.0.1", gw_port)).ok())
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        drop(held);
    }));
    // Unknown keys with huge user names.
    let stranger = keygen(&dir, "stranger");
    threads.push(attack(&stop, move || {
        let _ = Command::new("ssh")
            .args(["-p", &gw_port.to_string(), "-i"])
            .arg(&stranger)
            .args(SSH_OPTIONS)
            .arg(format!("{}@127.0.0.1", "u".repeat(30_000)))
            .arg("ps")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }));
    // Half-open HTTP requests on the ingress.
    threads.push(attack(&stop, move || {
        let held: Vec<TcpStream> = (0..2000)
            .filter_map(|_| {
                let mut s = TcpStream::connect(("127.0.0.1", http_port)).ok()?;
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: web.localhost\r\n");
                Some(s)
            })
            .collect();
        std::thread::sleep(Duration::from_secs(3));
        drop(held);
    }));
    // A host key asking for the big artifact 300 times, never reading.
    let evil = keygen(&dir, "evil-host");
    {
        let mut p = evil.as_os_str().to_owned();
        p.push(".pub");
        run(
            Command::new(setup::bin("ssh-gateway"))
                .arg("--data")
                .arg(dir.join("gw"))
                .args(["keys", "add", "--role", "host", "--name", "evil"])
                .arg(p),
            None,
        )
        .ok();
    }
    threads.push(attack(&stop, move || {
        let frames = fetch_flood_frames("evil", &digest, 300);
        if let Ok(mut c) = Command::new("ssh")
            .args(["-p", &gw_port.to_string(), "-i"])
            .arg(&evil)
            .args(SSH_OPTIONS)
            .arg("evil@127.0.0.1")
            .args(["-s", "cranefleet-tunnel"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            if let Some(mut i) = c.stdin.take() {
                let _ = i.write_all(&frames);
                std::thread::sleep(Duration::from_secs(5));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }));
    // Escape sequences in arguments, and compile bombs.
    let fleet = f.clone();
    threads.push(attack(&stop, move || {
        fleet.ops(&["rollback", "web\u{1b}]0;pwned\u{7}\u{1b}[2J"]);
        fleet.ops(&["deploy", "bomb", &bomb, "--kind", "worker"]);
        std::thread::sleep(Duration::from_secs(2));
    }));

    println!("# every attack at once for {secs} s");
    let started = Instant::now();
    let (mut gw_peak, mut host_peak) = (0u64, 0u64);
    let (gw_start, host_start) = (
        rss_kib_of(gw_pid).unwrap_or(0),
        rss_kib_of(host_pid).unwrap_or(0),
    );
    let (mut ps_ok, mut ps_other, mut http_ok, mut samples) = (0u32, 0u32, 0u32, 0u32);
    // An operator elsewhere: OpenSSH from another loopback address than
    // the flood's (the gateway caps unauthenticated connections per source).
    let ops_key = dir.join("ops");
    let from_elsewhere = || {
        Command::new("ssh")
            .args(["-b", "127.0.0.2", "-p", &gw_port.to_string(), "-i"])
            .arg(&ops_key)
            .args(SSH_OPTIONS)
            .arg("ops@127.0.0.1")
            .arg("ps")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        samples += 1;
        gw_peak = gw_peak.max(rss_kib_of(gw_pid).unwrap_or(0));
        host_peak = host_peak.max(rss_kib_of(host_pid).unwrap_or(0));
        if f.ops(&["ps"]).code == 0 {
            ps_ok += 1;
        }
        if from_elsewhere() {
            ps_other += 1;
        }
        if http(
            &format!("127.0.0.1:{http_port}"),
            "GET",
            "web.localhost",
            "/",
            b"",
        )
        .is_ok_and(|r| r.status == 200)
        {
            http_ok += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    println!(
        "gateway: {} at the end, memory {} MiB at start, {} MiB at the peak\n\
         hostd:   {} at the end, memory {} MiB at start, {} MiB at the peak\n\
         `ps` through the gateway answered {ps_other} of {samples} times from another address, \
         {ps_ok} of {samples} from the flooding one; GET through the ingress {http_ok} of {samples}",
        if alive(gw_pid) { "alive" } else { "DEAD" },
        gw_start >> 10,
        gw_peak >> 10,
        if alive(host_pid) { "alive" } else { "DEAD" },
        host_start >> 10,
        host_peak >> 10,
    );
}
