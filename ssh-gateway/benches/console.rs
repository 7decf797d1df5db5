//! The console bench: input-to-screen latency, figures not tests.
//!
//! ```text
//! cargo build --release --workspace
//! cargo bench -p ssh-gateway --bench console
//! ```
//!
//! A real gateway with two hostd agents on loopback. The console runs on a
//! pty, driven like a person at a terminal: a key is written into the pty
//! and the clock stops when the screen (reconstructed from the output bytes
//! by a terminal emulator) shows its effect. Two front doors:
//!
//! - `ssh -t` (OpenSSH): the key crosses SSH to the gateway, which updates
//!   the app and draws the change back into the channel.
//! - `console --gateway`: the key stays local; only commands cross SSH.
//!
//! Two kinds of keypress each: a character typed in the `:` prompt (it
//! appears on the status line) and `?`/Esc (the key list opens and closes,
//! a larger redraw). p50/p99 over 200 keypresses of each.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::pty::Pty;
use common::*;

const KEYS: usize = 200;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Milliseconds from writing `key` to the screen satisfying `shown`.
fn press(p: &mut Pty, key: &[u8], shown: impl Fn(&vt100::Screen) -> bool) -> f64 {
    let t = Instant::now();
    p.send(key);
    assert!(
        p.wait_within(Duration::from_secs(10), shown),
        "no effect of {key:?}; the screen:\n{}",
        p.screen()
    );
    t.elapsed().as_secs_f64() * 1e3
}

/// The status line (second row from the bottom at this size).
fn status(s: &vt100::Screen) -> String {
    let (rows, cols) = s.size();
    s.contents_between(rows - 2, 0, rows - 2, cols)
}

fn measure(door: &str, mut p: Pty) {
    p.wait("the overview", |s| {
        s.contents().contains("hosts 2/2 up") && s.contents().contains("ticker")
    });
    // Warm up: the first keys pay for lazy setup on both sides.
    for _ in 0..5 {
        press(&mut p, b"?", |s| s.contents().contains("show every key"));
        press(&mut p, b"\x1b", |s| {
            !s.contents().contains("show every key")
        });
    }
    let mut typing = Vec::with_capacity(KEYS);
    press(&mut p, b":", |s| status(s).starts_with(':'));
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    let mut typed = String::new();
    for i in 0..KEYS {
        if typed.len() == 40 {
            // Ctrl-U empties the line (not measured).
            press(&mut p, b"\x15", |s| status(s).trim_end() == ":");
            typed.clear();
        }
        let c = letters[i % letters.len()];
        typed.push(c as char);
        let want = format!(":{typed}");
        typing.push(press(&mut p, &[c], |s| status(s).trim_end() == want));
    }
    press(&mut p, b"\x1b", |s| !status(s).starts_with(':'));
    let mut help = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        if i % 2 == 0 {
            help.push(press(&mut p, b"?", |s| {
                s.contents().contains("show every key")
            }));
        } else {
            help.push(press(&mut p, b"\x1b", |s| {
                !s.contents().contains("show every key")
            }));
        }
    }
    p.send(b"q");
    p.wait_exit();
    for (what, v) in [
        ("prompt character", &mut typing),
        ("? / Esc (key list)", &mut help),
    ] {
        let (p50, p99, max) = (percentile(v, 0.5), percentile(v, 0.99), percentile(v, 1.0));
        println!(
            "  {door:<22} {what:<20} p50 {p50:>6.2} ms   p99 {p99:>6.2} ms   max {max:>6.2} ms   ({} keys)",
            v.len()
        );
    }
}

fn main() {
    println!(
        "# console bench ({} cores): input-to-screen latency on loopback",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "ticker",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "2",
        "--env",
        "TICK_MS=1000",
    ])
    .ok();

    let mut ssh = Command::new("ssh");
    ssh.args(["-t", "-p", &f.port.to_string(), "-i"])
        .arg(f.path("alice"))
        .args(SSH_OPTIONS)
        .arg("alice@127.0.0.1");
    measure(
        "ssh -t (gateway draws)",
        Pty::spawn("ssh -t", &mut ssh, 120, 36),
    );

    let console = gateway_bin().with_file_name("console");
    assert!(
        console.exists(),
        "console is not built: run `cargo build --release --workspace` first"
    );
    let mut local = Command::new(console);
    local
        .args([
            "--gateway",
            &format!("alice@{}", f.addr()),
            "--accept-new-host-key",
            "--identity",
        ])
        .arg(f.path("alice"))
        .env("HOME", f.path("home"));
    measure(
        "console --gateway",
        Pty::spawn("console", &mut local, 120, 36),
    );
}
