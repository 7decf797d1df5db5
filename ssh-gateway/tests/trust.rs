//! Trust boundaries, attacked as an attacker would: hostile terminal sizes,
//! connections that never authenticate, floods from one address, and a
//! gateway out of file descriptors. Real gateway processes, real OpenSSH
//! clients, raw TCP.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::pty::Pty;
use common::*;

/// Waits until the console has sent more than `bytes` bytes (a redraw).
fn wait_for_output_after(p: &Pty, bytes: u64) {
    wait_for("the console to draw again", || {
        (p.received() > bytes).then_some(())
    });
}

fn mib(kib: u64) -> u64 {
    kib / 1024
}

#[test]
fn a_viewer_claiming_a_65535_square_terminal_gets_a_bounded_console_and_the_gateway_lives() {
    let mut f = Fleet::start();
    let before = f.gateway().rss_kib().expect("gateway RSS");

    let mut p = f.ssh_console("victor", (65_535, 65_535), (200, 60));
    p.wait_text(" cranefleet ");
    assert!(
        f.gateway().is_running(),
        "the gateway died drawing a huge terminal"
    );
    let drawn = f.gateway().rss_kib().expect("gateway RSS");
    assert!(
        drawn < before + 64 * 1024,
        "a console session cost {} MiB (from {} to {} MiB)",
        mib(drawn - before),
        mib(before),
        mib(drawn)
    );

    // window-change: to a normal size, then to an absurd one again.
    let sent = p.received();
    p.claim_size(80, 24);
    wait_for_output_after(&p, sent);
    let sent = p.received();
    p.claim_size(65_535, 65_535);
    wait_for_output_after(&p, sent);
    // A second absurd session at once.
    let mut q = f.ssh_console("victor", (2_000, 2_000), (200, 60));
    q.wait_text(" cranefleet ");
    assert!(
        f.gateway().is_running(),
        "the gateway died on window-change"
    );
    let after = f.gateway().rss_kib().expect("gateway RSS");
    assert!(
        after < before + 96 * 1024,
        "two console sessions cost {} MiB",
        mib(after - before)
    );

    // Still a working console, and a working gateway.
    for s in [&mut p, &mut q] {
        s.send(b"q");
        assert_eq!(s.wait_exit(), Some(0), "the screen:\n{}", s.screen());
    }
    f.ops(&["ps"]).ok();
}

/// Reads until the peer closes; `Err` if it was still open after `limit`.
fn wait_closed(c: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    c.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(got),
            Err(e) => return Err(format!("still open: {e}")),
        }
    }
}

#[test]
fn connections_that_never_authenticate_are_closed_after_the_login_grace_time() {
    let mut f = Fleet::start_with(&["--login-grace-time", "2"]);
    let fds_before = f.gateway().open_fds().expect("gateway fds");
    let mut idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(f.addr()).expect("connect"))
        .collect();
    // Some say hello and stall inside the handshake.
    for c in &mut idle[..10] {
        c.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n").unwrap();
    }
    let start = Instant::now();
    for (i, c) in idle.iter_mut().enumerate() {
        let left = DEADLINE.saturating_sub(start.elapsed());
        if let Err(e) = wait_closed(c, left) {
            panic!(
                "unauthenticated connection {i} {e} after {:?}",
                start.elapsed()
            );
        }
    }
    drop(idle);
    wait_for("the gateway to close their descriptors", || {
        (f.gateway().open_fds()? <= fds_before + 2).then_some(())
    });
    assert!(
        f.gateway_log()
            .contains("did not authenticate within the login grace time")
    );
    // An operator that does authenticate is served as ever.
    f.ops(&["ps"]).ok();
}

#[test]
fn a_flood_from_one_address_leaves_others_served_and_ends_with_the_flood() {
    let mut f = Fleet::start_with(&["--per-source-max-startups", "8", "--max-startups", "64"]);
    // The harness's "is it listening" probe has come and gone by now.
    f.ops(&["ps"]).ok();
    let addr: SocketAddr = f.addr().parse().unwrap();
    let mut flood: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    // Past the per-source share, connections are closed at once, before the
    // server says a word; the first 8 get the SSH banner and are held.
    let mut closed_unheard = 0;
    for c in &mut flood {
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut b = [0u8; 64];
        if let Ok(0) = c.read(&mut b) {
            closed_unheard += 1
        }
    }
    assert_eq!(closed_unheard, 32, "8 of 40 are let in to authenticate");
    assert!(f.gateway().is_running());

    // Another address is served while the flood holds its share.
    let mut other = Command::new("ssh");
    other
        .args(["-b", "127.0.0.2", "-p", &f.port.to_string(), "-i"])
        .arg(f.path("alice"))
        .args(SSH_OPTIONS)
        .args(["alice@127.0.0.1", "ps"]);
    let r = run(&mut other, None);
    assert_eq!(r.code, 0, "an operator from 127.0.0.2: {}", r.stderr);

    // The flood ends: the flooding address is served at once, no lockout.
    drop(flood);
    wait_for("the flooding address to be served again", || {
        (f.ops_stdin(&["ps"], None).code == 0).then_some(())
    });
}

#[test]
fn running_out_of_file_descriptors_slows_the_gateway_but_never_stops_it() {
    let mut f = Fleet::start_with(&[
        "--max-startups",
        "5000",
        "--per-source-max-startups",
        "5000",
        "--login-grace-time",
        "600",
    ]);
    f.stop_gateway();
    f.gateway_nofile = Some(128);
    f.start_gateway();
    let _ = net::raise_nofile_limit();
    let addr: SocketAddr = f.addr().parse().unwrap();
    // More connections than the gateway has descriptors, until it says it
    // ran out (the kernel queues what the gateway cannot accept).
    let mut flood = Vec::new();
    let start = Instant::now();
    while !f.gateway_log().contains("out of descriptors or memory") {
        assert!(
            start.elapsed() < DEADLINE && flood.len() < 2_000,
            "the gateway never ran out of descriptors with {} connections open:\n{}",
            flood.len(),
            f.gateway_log()
        );
        for _ in 0..16 {
            if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                flood.push(c);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        f.gateway().is_running(),
        "the gateway exited when it ran out of descriptors:\n{}",
        f.gateway_log()
    );
    drop(flood);
    // Served again once the flood is gone.
    wait_for("an operator to be served again", || {
        (f.ops_stdin(&["ps"], None).code == 0).then_some(())
    });
    assert!(f.gateway().is_running());
}

#[test]
fn a_host_key_flooding_fetches_it_never_reads_costs_the_gateway_a_bounded_slice() {
    use sha2::Digest as _;

    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    // A 16 MiB artifact stored on the gateway.
    let big = padded_wasm(
        &std::fs::read(fixture("ticker.component.wasm")).unwrap(),
        16 << 20,
    );
    let path = f.path("big.wasm");
    std::fs::write(&path, &big).unwrap();
    f.ops(&["deploy", "big", path.to_str().unwrap(), "--kind", "worker"])
        .ok();
    let digest = hex::encode(sha2::Sha256::digest(&big));

    // Another enrolled host key says hello, asks for that artifact 300 times
    // and never reads what comes back.
    let evil = keygen(f.dir.path(), "evil-host");
    f.enroll("host", &evil, "evil");
    let frames = fetch_flood_frames("evil", &digest, 300);
    let before = f.gateway().rss_kib().expect("gateway RSS");
    let (mut flood, stdin) = f.scripted_host("evil-host", &frames);
    // Either the gateway refuses the fetches past its limit, or its memory
    // grows with what was asked (the bug this guards against).
    wait_for("the gateway to refuse fetches past the limit", || {
        let refused = f
            .gateway_log()
            .contains("refused a fetch: 2 are in flight for this host");
        let grown = f.gateway().rss_kib()? > before + 64 * 1024;
        (refused || grown).then_some(())
    });
    let during = f.gateway().rss_kib().expect("gateway RSS");
    assert!(
        during < before + 64 * 1024,
        "300 unread fetches of 16 MiB cost the gateway {} MiB",
        mib(during.saturating_sub(before))
    );
    // The fleet is served meanwhile.
    f.ops(&["ps"]).ok();
    drop(stdin);
    let _ = flood.kill();
    let _ = flood.wait();
    assert!(f.gateway().is_running());
}

#[test]
fn a_host_key_asking_for_a_path_instead_of_a_digest_gets_nothing_but_a_refusal() {
    use schema::tunnel::{self, HostMsg};

    let mut f = Fleet::start();
    // A file outside the artifact store, named as an artifact would be.
    let secret = f.dir.path().join("secret.wasm");
    std::fs::write(&secret, b"SECRET-CONTENT-OF-THE-GATEWAY-MACHINE").unwrap();
    let artifacts = f.gw_data().join("artifacts");
    let up = artifacts.components().count() - f.dir.path().components().count();
    let traversal = format!("{}secret", "../".repeat(up));

    let evil = keygen(f.dir.path(), "evil-host");
    f.enroll("host", &evil, "evil");
    let mut frames = Vec::new();
    tunnel::encode_msg(&host_hello("evil"), &mut frames);
    for digest in [traversal.as_str(), secret.to_str().unwrap()] {
        tunnel::encode_msg(
            &HostMsg::Fetch {
                digest: digest.to_string(),
                offset: 0,
            },
            &mut frames,
        );
    }
    let (mut host, stdin) = f.scripted_host("evil-host", &frames);
    let mut stdout = host.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if text.matches("not a sha256 digest").count() >= 2 || text.contains("SECRET-CONTENT") {
                break;
            }
        }
        got
    });
    wait_for("both refusals", || reader.is_finished().then_some(()));
    let got = reader.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("not a sha256 digest").count(), 2, "{text}");
    assert!(
        !text.contains("SECRET-CONTENT"),
        "the gateway sent a file by path"
    );
    drop(stdin);
    let _ = host.kill();
    let _ = host.wait();
    assert!(f.gateway().is_running());
}

#[test]
fn what_a_peer_puts_in_names_reaches_operators_as_text_never_as_terminal_commands() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    // A viewer's refused command: its argument lands in the audit log.
    let r = run(
        &mut f.ssh_cmd("victor", &["rollback", "'api\u{1b}]0;pwned\u{7}\u{1b}[2J'"]),
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.stderr.contains('\u{1b}'), "{:?}", r.stderr);
    // And an app whose log line is an escape sequence.
    f.ops(&[
        "deploy",
        "w",
        fixture("ticker.wasm").to_str().unwrap(),
        "--kind",
        "worker",
        "--env",
        "TICK_MS=50",
        "--env",
        "GREETING=\u{1b}[31m\u{1b}]0;pwned\u{7}",
    ])
    .ok();
    wait_for("a tick with the greeting", || {
        f.ops(&["logs", "w", "--tail", "5"])
            .stdout
            .contains("greeting=")
            .then_some(())
    });
    for cmd in [
        &["audit"][..],
        &["hosts"],
        &["ps"],
        &["logs", "w", "--tail", "20"],
    ] {
        let r = f.ops(cmd);
        assert_eq!(r.code, 0, "{cmd:?}: {}", r.stderr);
        for bad in ['\u{1b}', '\u{7}', '\u{9b}'] {
            assert!(
                !r.stdout.contains(bad),
                "{cmd:?} printed {bad:?}:\n{:?}",
                r.stdout
            );
        }
    }
    let audit = f.ops(&["audit"]).stdout;
    assert!(
        audit.contains("\\x1b]0;pwned\\x07"),
        "escaped, still readable:\n{audit}"
    );
}

#[test]
fn a_host_not_placed_on_an_app_cannot_abort_its_canary() {
    use schema::tunnel::{self, HostEvent, HostMsg};
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    let v1 = fixture("http-version-v1.wasm");
    f.ops(&["deploy", "ver", v1.to_str().unwrap()]).ok();
    let v2 = fixture("http-version-v2.wasm");
    f.ops(&[
        "deploy",
        "ver",
        v2.to_str().unwrap(),
        "--canary",
        "10%",
        "--canary-window-s",
        "3600",
    ])
    .ok();
    let evil = keygen(f.dir.path(), "evil-host");
    f.enroll("host", &evil, "evil");
    let mut frames = Vec::new();
    tunnel::encode_msg(&host_hello("evil"), &mut frames);
    tunnel::encode_msg(
        &HostMsg::Event(HostEvent::CanaryTripped {
            app: "ver".into(),
            version: schema::Version(2),
            detail: "\u{1b}[2J gate tripped, trust me".into(),
        }),
        &mut frames,
    );
    let (mut host, stdin) = f.scripted_host("evil-host", &frames);
    wait_for("the evil host up", || {
        (f.host_state("evil").as_deref() == Some("up")).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let ps = f.json(&["ps"]);
    assert_eq!(
        ps[0]["canary"]["version"], "v2",
        "the canary is still live: {ps}"
    );
    let audit = f.ops(&["audit"]).ok().stdout;
    assert!(!audit.contains("trust me"), "{audit}");
    assert!(!audit.contains('\u{1b}'), "{audit}");
    drop(stdin);
    let _ = host.kill();
    let _ = host.wait();
}
