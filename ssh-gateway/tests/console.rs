//! The console end to end: a real gateway and hostd agents, the console
//! driven through a pty like a person at a terminal — through OpenSSH's
//! `ssh -t` (the gateway draws it) and as the local `console --gateway`
//! binary (it draws itself and talks SSH to the gateway).

mod common;

use std::process::Command;

use common::pty::Pty;
use common::*;

/// The `console` binary, built next to the gateway by the workspace build.
/// A fleet of two hosts running `ticker` with two releases, v2 active.
fn fleet_with_two_releases() -> Fleet {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let path = fixture("ticker.wasm");
    for v in ["1", "2"] {
        f.ops(&[
            "deploy",
            "ticker",
            path.to_str().unwrap(),
            "--replicas",
            "2",
            "--env",
            "TICK_MS=1000",
            "--env",
            &format!("VERSION={v}"),
        ])
        .ok();
    }
    assert_eq!(f.releases("ticker")[0], ("v2".into(), "active".into()));
    f
}

/// The active release of `app`, as `hostd --gateway … releases` says.
fn active(f: &Fleet, app: &str) -> String {
    f.releases(app)
        .into_iter()
        .find(|(_, s)| s == "active")
        .map(|(v, _)| v)
        .unwrap_or_default()
}

/// `ssh -t` into the gateway with `key` (as user `key`), on a pty.
fn ssh_console(f: &Fleet, key: &str, cols: u16, rows: u16) -> Pty {
    f.ssh_console(key, (cols, rows), (cols, rows))
}

/// The local console binary on a pty, talking to the fleet as `key`.
fn local_console(f: &Fleet, key: &str, cols: u16, rows: u16) -> Pty {
    let mut cmd = Command::new(console_bin());
    cmd.args([
        "--gateway",
        &format!("{key}@{}", f.addr()),
        "--accept-new-host-key",
        "--identity",
    ])
    .arg(f.path(key))
    .env("HOME", f.path("home"))
    .env_remove("CRANEFLEET_GATEWAY");
    Pty::spawn("console", &mut cmd, cols, rows)
}

/// Waits for the overview with both hosts up and the app listed.
fn wait_overview(p: &Pty) {
    p.wait("the overview with both hosts up", |s| {
        let c = s.contents();
        c.contains("hosts 2/2 up") && c.contains("ticker")
    });
}

/// Types `:rollback ticker`, confirms with `y`, and waits for the outcome
/// on screen and in the fleet.
fn rollback_through_the_prompt(f: &Fleet, p: &mut Pty) {
    p.send(b":rollback ticker\r");
    // The release it goes to, named once the releases are in.
    p.wait_text("Roll back ticker from v2 to v1?");
    p.send(b"y");
    p.wait_text("ticker: v2 -> v1");
    assert_eq!(active(f, "ticker"), "v1");
    wait_app_release(p, "ticker", "v1");
}

/// Waits until the apps table shows `release` active for `app` (pushed by
/// the gateway's `watch` moments after a change).
fn wait_app_release(p: &Pty, app: &str, release: &str) {
    p.wait(&format!("{app} at {release} in the apps table"), |s| {
        s.contents().lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().filter(|w| *w != ">").collect();
            w.len() > 2 && w[0] == app && w[2] == release
        })
    });
}

/// Resizes the terminal and checks the console redrew at the new size (the
/// key hints sit on the last row) and still takes keys.
fn resize_and_check(p: &mut Pty, cols: u16, rows: u16) {
    p.resize(cols, rows);
    p.wait(&format!("a redraw at {cols}x{rows}"), |s| {
        let last = s.contents_between(rows - 1, 0, rows - 1, cols);
        s.size() == (rows, cols) && last.contains("? help") && s.contents().contains(" cranefleet ")
    });
    p.send(b"?");
    p.wait_text("show every key");
    p.send(b"\x1b");
    p.wait("the help to close", |s| {
        !s.contents().contains("show every key")
    });
}

fn quit(p: &mut Pty) {
    p.send(b"q");
    assert_eq!(
        p.wait_exit(),
        Some(0),
        "quitting ends the session with status 0; the screen:\n{}",
        p.screen()
    );
}

#[test]
fn rollback_typed_in_the_ssh_console_switches_the_active_release() {
    let f = fleet_with_two_releases();
    let mut p = ssh_console(&f, "alice", 120, 36);
    wait_overview(&p);
    p.wait_text("operator");
    rollback_through_the_prompt(&f, &mut p);
    resize_and_check(&mut p, 90, 28);
    // Keys still act on the fleet after the resize: roll forward again.
    p.send(b":rollback ticker --to v2\r");
    p.wait_text("Roll forward ticker from v1 to v2");
    p.send(b"y");
    p.wait_text("ticker: v1 -> v2");
    assert_eq!(active(&f, "ticker"), "v2");
    // Logs follow in the gateway's console too; `deploy` of a file is refused there.
    p.send(b"l");
    p.wait_text("tick ");
    p.send(b"\x1b");
    p.wait_text(" hosts (2) ");
    p.send(b":deploy x /tmp/x.wasm\r");
    p.wait_text("this console runs on the gateway");
    quit(&mut p);
    let audit = f.json(&["audit"]);
    let rollbacks = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "rollback" && e["key"] == "alice")
        .count();
    assert_eq!(
        rollbacks, 2,
        "both rollbacks are audited under the session's key: {audit}"
    );
}

#[test]
fn a_viewer_console_over_ssh_is_read_only() {
    let f = fleet_with_two_releases();
    let mut p = ssh_console(&f, "victor", 100, 30);
    wait_overview(&p);
    p.wait_text("viewer: read-only");
    p.send(b":rollback ticker\r");
    p.wait_text("read-only console (viewer key): rollback needs an operator key");
    // The single keys too.
    p.send(b"+");
    p.wait_text("scale needs an operator key");
    assert_eq!(active(&f, "ticker"), "v2");
    quit(&mut p);
}

#[test]
fn the_local_console_rolls_back_over_ssh_and_survives_a_resize() {
    let f = fleet_with_two_releases();
    let mut p = local_console(&f, "alice", 120, 36);
    wait_overview(&p);
    p.wait_text(&format!("alice@{}", f.addr()));
    rollback_through_the_prompt(&f, &mut p);
    resize_and_check(&mut p, 80, 24);
    // Enter opens the app: its releases, loaded over SSH.
    p.send(b"\r");
    p.wait("the app's releases", |s| {
        let c = s.contents();
        c.contains("v1") && c.contains("v2") && c.contains("superseded")
    });
    // A deploy typed in the local console sends the local file as stdin.
    p.send(b"\x1b");
    p.wait_text(" hosts (2) ");
    let wasm = fixture("ticker.wasm");
    p.send(
        format!(
            ":deploy w2 {} --replicas 1 --env TICK_MS=1000\r",
            wasm.display()
        )
        .as_bytes(),
    );
    p.wait_text("Deploy a new release of w2");
    p.send(b"y");
    p.wait_text("w2 v1 active");
    assert_eq!(f.releases("w2"), vec![("v1".into(), "active".into())]);
    // Logs follow over SSH: the ticker's lines appear.
    p.send(b":logs w2\r");
    p.wait_text("tick 1 version=dev");
    quit(&mut p);
}

#[test]
fn the_local_console_keeps_its_screen_through_a_gateway_restart_and_reconnects() {
    let mut f = fleet_with_two_releases();
    let mut p = local_console(&f, "alice", 120, 36);
    wait_overview(&p);
    f.kill_gateway();
    // What it last knew stays on screen, marked stale.
    p.wait("the console to say it lost the gateway", |s| {
        let c = s.contents();
        c.contains("DISCONNECTED (stale)") && c.contains("ticker")
    });
    f.start_gateway();
    p.wait("the console to reconnect by itself", |s| {
        let c = s.contents();
        !c.contains("DISCONNECTED") && c.contains("hosts 2/2 up") && c.contains("ticker")
    });
    // And it works as before: a rollback through the prompt.
    rollback_through_the_prompt(&f, &mut p);
    quit(&mut p);
}

#[test]
fn the_local_console_starts_read_only_for_a_viewer_key() {
    let f = fleet_with_two_releases();
    let mut p = local_console(&f, "victor", 100, 30);
    wait_overview(&p);
    p.wait_text("viewer: read-only");
    p.send(b":scale ticker 5\r");
    p.wait_text("scale needs an operator key");
    assert_eq!(f.json(&["ps"])[0]["replicas"], 2);
    quit(&mut p);
}

#[test]
fn a_shell_without_a_terminal_is_told_to_use_ssh_t_and_watch_streams_the_fleet() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    // No command and no tty: OpenSSH asks for a shell without a pty.
    let r = f.ssh("alice", &[], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("ssh -t"), "{}", r.stderr);
    // `watch --json` streams the fleet; the first line says who is watching.
    let mut child = Command::new("ssh")
        .args(["-p", &f.port.to_string(), "-i"])
        .arg(f.path("victor"))
        .args(SSH_OPTIONS)
        .args(["victor@127.0.0.1", "watch", "--json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::new(child.stdout.take().unwrap());
    let first = lines.wait_for("the first snapshot", |l| l.starts_with('{'));
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        (v["role"].as_str(), v["key"].as_str(), v["gateway"].as_str()),
        (Some("viewer"), Some("victor"), Some("testgw"))
    );
    assert_eq!(v["hosts"][0]["name"], "h1");
    // A change is pushed: a deploy makes the app appear without polling.
    f.ops(&[
        "deploy",
        "w",
        fixture("ticker.wasm").to_str().unwrap(),
        "--env",
        "TICK_MS=1000",
    ])
    .ok();
    let line = lines.wait_for("a snapshot with the new app", |l| {
        l.contains("\"app\":\"w\"")
    });
    assert!(
        !line.contains("\"role\""),
        "only the first line names the role: {line}"
    );
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

#[test]
fn console_demo_runs_a_fleet_that_plain_ssh_reaches_and_cleans_up() {
    let help = run(Command::new(console_bin()).args(["demo", "--help"]), None).ok();
    assert!(
        help.stdout.contains("ssh -t -p PORT -i DIR/operator_key"),
        "{}",
        help.stdout
    );
    let port = free_port();
    let mut cmd = Command::new(console_bin());
    cmd.args(["demo", "--no-console", "--port", &port.to_string()])
        .env_remove("CRANEFLEET_GATEWAY")
        .stdout(std::process::Stdio::piped());
    let mut demo = Proc::spawn("console demo", &mut cmd);
    let mut out = Lines::new(demo.child.stdout.take().unwrap());
    out.wait_for("the demo to be ready", |l| {
        l.contains("Ctrl-C stops the fleet")
    });
    let said = out.seen.join("\n");
    // The command it prints works as printed (the demo recorded the host key).
    let line = out
        .seen
        .iter()
        .find(|l| l.contains("releases hello"))
        .expect("an ssh command line")
        .clone();
    let argv: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
    let r = run(
        Command::new(argv[0])
            .args(["-o", "BatchMode=yes"])
            .args(&argv[1..]),
        None,
    );
    assert_eq!(r.code, 0, "{line}\n{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("active"), "{}", r.stdout);
    let curl = said
        .lines()
        .find(|l| l.contains("curl http://hello.localhost:"))
        .unwrap();
    let http = curl
        .trim()
        .trim_start_matches("curl http://hello.localhost:")
        .trim_end_matches('/');
    let resp = get(&format!("127.0.0.1:{http}"), "hello.localhost", "/");
    assert_eq!(resp.status, 200, "{}", resp.text());
    // The console over ssh -t on the demo fleet shows the three sample apps.
    let ssh_t = said
        .lines()
        .find(|l| l.trim_start().starts_with("ssh -t") && l.contains("operator_key"))
        .unwrap();
    let argv: Vec<&str> = ssh_t
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let mut p = Pty::spawn(
        "ssh -t demo",
        Command::new(argv[0]).args(&argv[1..]),
        120,
        36,
    );
    p.wait("the demo apps", |s| {
        let c = s.contents();
        ["hello", "ticker", "nightly", "hosts 2/2 up"]
            .iter()
            .all(|w| c.contains(w))
    });
    quit(&mut p);
    let dir = said
        .lines()
        .find_map(|l| l.split(" in ").nth(1).filter(|d| d.starts_with('/')))
        .unwrap()
        .trim()
        .to_string();
    assert!(std::path::Path::new(&dir).exists());
    demo.signal("INT");
    out.wait_for("the demo to stop", |l| {
        l.starts_with("stopped the demo fleet")
    });
    assert_eq!(demo.child.wait().unwrap().code(), Some(0));
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is removed");
}

/// A GET that may fail (a host restarting): traffic, not a check.
fn try_get(addr: &str, host: &str, path: &str) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

/// The screen, as `ssh -t` shows it now, kept for the README when
/// `CRANEFLEET_SCREENS=DIR` is set.
fn keep_screen(p: &Pty, name: &str) -> String {
    let s = p.screen();
    if let Some(dir) = std::env::var_os("CRANEFLEET_SCREENS") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{name}.txt")), &s);
    }
    s
}

#[test]
fn the_on_call_walk_through_works_over_ssh_t_at_160x48_and_80x24() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let good = fixture("http-version-v1.wasm");
    let bad = fixture("http-version-unhealthy.wasm");
    f.ops(&["deploy", "web", good.to_str().unwrap(), "--replicas", "2"])
        .ok();
    // Traffic on both hosts' ingress for the whole walk-through.
    let stop = Arc::new(AtomicBool::new(false));
    let addrs: Vec<String> = f
        .agents
        .iter()
        .map(|a| format!("127.0.0.1:{}", a.http))
        .collect();
    let traffic = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for a in &addrs {
                    try_get(a, "web.localhost", "/healthz");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    // v2 fails its requests; its health rule rolls it back: an event.
    f.ops(&[
        "deploy",
        "web",
        bad.to_str().unwrap(),
        "--health-rule",
        "errors > 3",
        "--health-window-s",
        "60",
    ])
    .ok();
    wait_for("the rule to roll v2 back", || {
        f.releases("web")
            .iter()
            .any(|(v, s)| v == "v2" && s == "failed")
            .then_some(())
    });
    // v3: the same code without a rule, failing now.
    f.ops(&["deploy", "web", bad.to_str().unwrap()]).ok();

    let mut p = f.ssh_console("alice", (160, 48), (160, 48));
    // 1. The header counts what happened; `e` says what.
    p.wait("new events counted in the header", |s| {
        let c = s.contents();
        c.contains("hosts 2/2 up") && !c.contains("events 0 ") && c.contains("events ")
    });
    p.send(b"e");
    p.wait("the feed naming the rollback of web", |s| {
        let c = s.contents();
        c.contains("events (") && c.contains("rollback") && c.contains("web")
    });
    keep_screen(&p, "1-events-160x48");
    p.send(b"\x1b");
    p.wait("the feed to close", |s| !s.contents().contains("events ("));
    // 2. The app: its error rate and p99, live.
    p.send(b":ps web\r");
    p.wait("web's error rate and p99", |s| {
        let c = s.contents();
        c.contains("req/s")
            && c.contains("p99")
            && c.contains("errors/s")
            && !c.contains("errors/s ▁ 0.0")
    });
    keep_screen(&p, "2-app-160x48");
    // 3. Its 5xx access records, filtered on the hosts.
    p.send(b"l");
    p.wait_text("version=bad");
    p.send(b"/status >= 500\r");
    p.wait("5xx access records only", |s| {
        let c = s.contents();
        c.contains("\"status\":500") && !c.contains("request GET /healthz version=bad")
    });
    keep_screen(&p, "3-logs-5xx-160x48");
    // Esc clears the filter, a second Esc leaves the logs.
    p.send(b"\x1b");
    p.wait("the filter cleared", |s| {
        s.contents().contains("version=bad") && !s.contents().contains("/status >= 500")
    });
    p.send(b"\x1b");
    p.wait("the logs to close", |s| {
        !s.contents().contains("logs web |")
    });
    // 4. Roll back, naming the release.
    p.send(b":rollback web --to v1\r");
    p.wait_text("Roll back web from v3 to v1");
    p.send(b"y");
    p.wait_text("web: v3 -> v1");
    // 5. The errors sparkline recovers.
    p.send(b":ps web\r");
    p.wait("errors back to 0 per second", |s| {
        s.contents()
            .lines()
            .any(|l| l.contains("errors/s") && l.contains(" 0.0  ("))
    });
    keep_screen(&p, "4-recovered-160x48");
    // The same at 80x24.
    p.resize(80, 24);
    // Redrawn at the new size (the key hints on the last row), not the old
    // screen cut by the terminal; the header keeps its clock whole.
    p.wait("the app view at 80x24", |s| {
        let c = s.contents();
        let head = c.lines().next().unwrap_or("").trim_end().to_string();
        let clock = head.rsplit(' ').next().unwrap_or("");
        s.size() == (24, 80)
            && s.contents_between(23, 0, 23, 80).contains("? help")
            && c.contains("req/s")
            && c.contains("errors/s")
            && clock.len() == 8
            && clock.chars().filter(|&ch| ch == ':').count() == 2
    });
    keep_screen(&p, "5-app-80x24");
    p.send(b"e");
    p.wait("the feed at 80x24", |s| s.contents().contains("events ("));
    keep_screen(&p, "6-events-80x24");
    quit(&mut p);
    stop.store(true, Ordering::SeqCst);
    let _ = traffic.join();
}
