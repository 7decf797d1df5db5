//! Tables in colour on a terminal, and never anywhere else: the STATE
//! column by its state, headers bold, the columns where they are without
//! colour; plain into a pipe, with `--json`, with `NO_COLOR` (which wins
//! over `CLICOLOR_FORCE`) and on a `dumb` terminal.

mod common;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

use common::*;

/// What a terminal shows: the text without its SGR (colour) sequences.
fn visible(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('m').expect("an SGR sequence ends with m");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `args` with this environment (`NO_COLOR`, `CLICOLOR_FORCE` and `TERM`
/// as given, else unset), stdout into a pipe.
fn piped(h: &Hostd, env: &[(&str, &str)], args: &[&str]) -> Run {
    run(with_env(h.cmd(), env).args(args), None)
}

fn with_env(mut c: Command, env: &[(&str, &str)]) -> Command {
    for k in ["NO_COLOR", "CLICOLOR_FORCE", "TERM"] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// `args` with stdout on a pseudo-terminal, as a person runs it; returns
/// what the terminal received (its `\r\n` as `\n`) and the exit status.
fn on_a_terminal(h: &Hostd, env: &[(&str, &str)], args: &[&str]) -> (String, i32) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two fds into the given ints; no name buffer,
    // termios or window size is passed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just returned by openpty and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = with_env(h.cmd(), env);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn hostd");
    // The child holds the only slave now: the master reads until it exits.
    drop(cmd);
    let mut out = Vec::new();
    let mut master = std::fs::File::from(master);
    let mut buf = [0u8; 8192];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().expect("wait");
    (
        String::from_utf8_lossy(&out).replace("\r\n", "\n"),
        status.code().unwrap_or(-1),
    )
}

#[test]
fn tables_are_coloured_on_a_terminal_and_plain_everywhere_else() {
    let h = Hostd::start();
    h.deploy("api", "ticker.wasm", &["--env", "TICK_MS=50"]);
    h.wait_running("api", "v1", 1);

    // Into a pipe: plain, whatever TERM says.
    let plain = piped(&h, &[("TERM", "xterm-256color")], &["ps"])
        .ok()
        .stdout;
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(
        plain.starts_with("APP ") && plain.contains(" running "),
        "{plain}"
    );

    // On a terminal: the header bold, the state green, the columns as they
    // were (the escapes take no width).
    let (tty, code) = on_a_terminal(&h, &[("TERM", "xterm-256color")], &["ps"]);
    assert_eq!(code, 0, "{tty}");
    assert!(tty.starts_with("\x1b[1mAPP "), "{tty:?}");
    assert!(tty.contains("\x1b[32mrunning\x1b[0m"), "{tty:?}");
    assert_eq!(visible(&tty), plain);

    // NO_COLOR, or a dumb terminal: plain on a terminal too.
    for env in [
        [("TERM", "xterm-256color"), ("NO_COLOR", "1")],
        [("TERM", "dumb"), ("NO_COLOR", "")],
    ] {
        let (tty, code) = on_a_terminal(&h, &env, &["ps"]);
        assert_eq!(code, 0);
        assert!(!tty.contains('\x1b'), "{env:?}: {tty:?}");
        assert_eq!(tty, plain, "{env:?}");
    }

    // CLICOLOR_FORCE colours into a pipe; NO_COLOR wins over it.
    let forced = piped(&h, &[("CLICOLOR_FORCE", "1")], &["ps", "api"])
        .ok()
        .stdout;
    assert!(forced.contains("\x1b[32mrunning\x1b[0m"), "{forced:?}");
    let plain_instances = piped(&h, &[], &["ps", "api"]).ok().stdout;
    assert_eq!(visible(&forced), plain_instances);
    let both = piped(&h, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], &["ps"])
        .ok()
        .stdout;
    assert_eq!(both, plain);

    // --json is never coloured.
    let json = piped(&h, &[("CLICOLOR_FORCE", "1")], &["ps", "--json"]).ok();
    assert!(!json.stdout.contains('\x1b'), "{:?}", json.stdout);
    assert_eq!(json.json()[0]["state"], "running");

    // releases and hosts colour their own states; audit has a bold header.
    let rel = piped(&h, &[("CLICOLOR_FORCE", "1")], &["releases", "api"])
        .ok()
        .stdout;
    assert!(rel.starts_with("\x1b[1mVERSION "), "{rel:?}");
    assert!(rel.contains("\x1b[32mactive\x1b[0m"), "{rel:?}");
    let hosts = piped(&h, &[("CLICOLOR_FORCE", "1")], &["hosts"])
        .ok()
        .stdout;
    assert!(hosts.contains("\x1b[32mup\x1b[0m"), "{hosts:?}");
    let audit = piped(&h, &[("CLICOLOR_FORCE", "1")], &["audit"])
        .ok()
        .stdout;
    assert!(audit.starts_with("\x1b[1mTIME "), "{audit:?}");

    // A refusal reads and exits the same with colour on.
    let want = piped(&h, &[], &["releases", "nosuchapp"]);
    let got = piped(&h, &[("CLICOLOR_FORCE", "1")], &["releases", "nosuchapp"]);
    assert_eq!(want.code, 1, "{}", want.stderr);
    assert_eq!(
        (got.code, got.stderr, got.stdout),
        (want.code, want.stderr, want.stdout)
    );

    // What is not a table prints as the daemon wrote it.
    let info = piped(&h, &[("CLICOLOR_FORCE", "1")], &["info", "api"])
        .ok()
        .stdout;
    assert!(!info.contains('\x1b'), "{info:?}");
}
