//! What an on-call engineer does first, against a real gateway and agents:
//! stop an app and read what it did, trust `compile_ms`, trust host states.

mod common;

use common::*;

/// Lines of `app` the fleet's logs hold, as `logs --since 0 --json` says.
fn log_lines(f: &Fleet, app: &str) -> Vec<String> {
    f.ops(&["logs", app, "--since", "0", "--json"])
        .ok()
        .json_lines()
        .iter()
        .filter_map(|r| r["line"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn scaling_to_zero_keeps_the_app_its_releases_and_its_logs_on_the_hosts_that_ran_it() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    let wasm = fixture("ticker.wasm");
    f.ops(&[
        "deploy",
        "quiet",
        wasm.to_str().unwrap(),
        "--env",
        "TICK_MS=50",
        "--env",
        "VERSION=1",
    ])
    .ok();
    wait_for("some ticks logged", || {
        (log_lines(&f, "quiet")
            .iter()
            .filter(|l| l.starts_with("tick "))
            .count()
            >= 10)
            .then_some(())
    });
    let out = f.json(&["scale", "quiet", "0"]);
    assert_eq!(out["replicas"], 0, "{out}");
    // Through the gateway: the logs are still there, the app is stopped,
    // its releases kept.
    let ticks = log_lines(&f, "quiet")
        .iter()
        .filter(|l| l.starts_with("tick "))
        .count();
    assert!(ticks >= 10, "{ticks} ticks after scale 0");
    let ps = f.json(&["ps"]);
    let row = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["app"] == "quiet")
        .unwrap_or_else(|| panic!("quiet gone from ps: {ps}"))
        .clone();
    wait_for("quiet stopped", || {
        let ps = f.json(&["ps"]);
        ps.as_array()
            .unwrap()
            .iter()
            .find(|r| r["app"] == "quiet")
            .is_some_and(|r| r["state"] == "stopped" && r["running"] == 0)
            .then_some(())
    });
    assert_eq!(row["replicas"], 0, "{row}");
    assert_eq!(f.releases("quiet"), vec![("v1".into(), "active".into())]);
    // On the host itself, break-glass: still known, logs readable.
    let local = f.local(0, &["logs", "quiet", "--since", "0"]);
    assert_eq!(local.code, 0, "{}", local.stderr);
    assert!(local.stdout.contains("tick 1 "), "{}", local.stdout);
    // Back up: it runs again on the host that kept it, old logs intact.
    f.ops(&["scale", "quiet", "1"]).ok();
    f.wait_running("quiet", "v1", 1);
    assert!(
        log_lines(&f, "quiet").len() >= ticks,
        "the logs from before the scale survive"
    );
    // Only rm removes it.
    let r = f.ops(&["rm", "quiet", "--confirm", "quiet"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let local = f.local(0, &["logs", "quiet", "--since", "0"]);
    assert_ne!(local.code, 0, "rm removes the app from the host");
}

#[test]
fn a_deploy_through_the_gateway_reports_the_hosts_compile_time() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let out = f.json(&[
        "deploy",
        "web",
        fixture("http-hello.wasm").to_str().unwrap(),
        "--replicas",
        "2",
    ]);
    let ms = out["compile_ms"].as_u64().unwrap_or(0);
    assert!(ms > 0, "hosts compiled it, so it took time: {out}");
}

/// `hosts` as (name, state) pairs.
fn host_states(f: &Fleet) -> Vec<(String, String)> {
    let r = f.ops(&["hosts", "--json"]);
    if r.code != 0 {
        return Vec::new();
    }
    r.json()
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    (
                        h["name"].as_str().unwrap_or("").to_string(),
                        h["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn state_of(f: &Fleet, host: &str) -> String {
    host_states(f)
        .into_iter()
        .find(|(h, _)| h == host)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

#[test]
fn a_host_whose_tunnel_closes_is_down_at_once_not_after_the_grace_period() {
    // A grace period far longer than the test's wait: seeing `down` proves
    // it came from the closed tunnel.
    let mut f = Fleet::start_with(&["--down-after-s", "600"]);
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.stop_agent(1);
    wait_for("h2 shown down once its tunnel closed", || {
        (state_of(&f, "h2") == "down").then_some(())
    });
    assert_eq!(state_of(&f, "h1"), "up");
    let audit = f.json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "host-down"
                && e["detail"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("h2: tunnel closed")),
        "{audit}"
    );
    // Killed outright, the same: the kernel closes its connection.
    f.kill_agent(0);
    wait_for("h1 shown down once its process died", || {
        (state_of(&f, "h1") == "down").then_some(())
    });
    // Back: up again.
    f.start_agent(1, &[]);
    f.wait_host_up("h2");
}

#[test]
fn after_a_gateway_restart_a_host_is_connecting_until_it_speaks_and_a_dead_one_is_never_up() {
    let mut f = Fleet::start_with(&["--down-after-s", "600"]);
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.stop_gateway();
    f.kill_agent(1); // h2 dies while the gateway is away
    f.start_gateway();
    // Until h1's agent reconnects, both are connecting; h2 never comes up.
    let first = host_states(&f);
    assert!(
        first.iter().all(|(_, s)| s == "connecting" || s == "up"),
        "{first:?}"
    );
    assert_eq!(state_of(&f, "h2"), "connecting", "{first:?}");
    f.wait_host_up("h1");
    for _ in 0..5 {
        assert_eq!(state_of(&f, "h2"), "connecting");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `logs APP -f --json ARGS…` through the gateway, read until `enough`
/// says so; every record read.
fn follow_until(
    f: &Fleet,
    app: &str,
    args: &[&str],
    enough: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let mut all = vec!["logs", app, "-f", "--json"];
    all.extend_from_slice(args);
    let mut child = f.ops_child(&all);
    let mut lines = Lines::new(child.stdout.take().expect("stdout"));
    let parse = |seen: &[String]| -> Vec<serde_json::Value> {
        seen.iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    lines.wait_for_seen("enough followed records", |seen| enough(&parse(seen)));
    let _ = child.kill();
    let _ = child.wait();
    parse(&lines.seen)
}

fn time_of(r: &serde_json::Value) -> i64 {
    schema::time::parse_rfc3339(r["time"].as_str().unwrap_or("")).unwrap_or(0)
}

#[test]
fn following_logs_through_the_gateway_merges_the_hosts_by_time_and_tail_counts_in_total() {
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
        "TICK_MS=100",
    ])
    .ok();
    f.wait_running("ticker", "v1", 2);
    assert_eq!(f.spread("ticker").len(), 2, "one replica per host");
    std::thread::sleep(std::time::Duration::from_millis(1500));

    // `--since 6s`: the stored seconds, then what comes, one time line.
    let t0 = schema::time::now_millis();
    let recs = follow_until(&f, "ticker", &["--since", "6s"], |all| {
        ["h1", "h2"].iter().all(|h| {
            all.iter()
                .any(|r| r["host"] == *h && time_of(r) > t0 + 1000)
        })
    });
    let times: Vec<i64> = recs.iter().map(time_of).collect();
    let worst = times.windows(2).map(|w| w[0] - w[1]).max().unwrap_or(0);
    assert!(
        worst <= 100,
        "records go back in time by {worst} ms: {:?}",
        recs.iter()
            .map(|r| format!("{} {}", r["host"], r["time"]))
            .collect::<Vec<_>>()
    );
    assert!(recs.iter().any(|r| time_of(r) < t0), "the stored part");

    // `--tail 10`: ten in total from the past, not ten per host.
    let t1 = schema::time::now_millis();
    let recs = follow_until(&f, "ticker", &["--tail", "10"], |all| {
        ["h1", "h2"]
            .iter()
            .all(|h| all.iter().any(|r| r["host"] == *h && time_of(r) > t1 + 800))
    });
    let past = recs.iter().filter(|r| time_of(r) <= t1).count();
    assert!(
        (1..=10).contains(&past),
        "{past} records from before the command with --tail 10"
    );
}

#[test]
fn a_local_rollback_on_a_fleet_host_needs_local_by_name_and_is_audited_as_what_it_was() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    let wasm = fixture("ticker.wasm");
    for v in ["1", "2"] {
        f.ops(&[
            "deploy",
            "t",
            wasm.to_str().unwrap(),
            "--env",
            &format!("VERSION={v}"),
        ])
        .ok();
    }
    // No --local, no gateway configured in this shell: not a silent local
    // rollback.
    let r = run(
        std::process::Command::new(hostd_bin())
            .arg("--data")
            .arg(&f.agents[0].data)
            .args(["rollback", "t"])
            .env_remove("CRANEFLEET_GATEWAY"),
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("t is managed by the gateway")
            && r.stderr.contains("`hostd rollback t --local`")
            && r.stderr.contains("--gateway"),
        "{}",
        r.stderr
    );
    assert_eq!(f.releases("t")[0], ("v2".into(), "active".into()));
    // Break-glass by name, while the gateway is connected.
    f.local(0, &["rollback", "t"]).ok();
    wait_for("the gateway to adopt the local rollback", || {
        (f.releases("t")
            .iter()
            .any(|(v, s)| v == "v1" && s == "active"))
        .then_some(())
    });
    let audit = f.json(&["audit"]);
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["action"] == "rollback" && e["key"].as_str().unwrap_or("").starts_with("local:")
        })
        .unwrap_or_else(|| panic!("{audit}"))
        .clone();
    let detail = entry["detail"].as_str().unwrap_or("");
    assert!(detail.contains("with --local"), "{detail}");
    assert!(!detail.contains("while the gateway was away"), "{detail}");
}

#[test]
fn restart_through_the_gateway_restarts_the_app_on_every_host_that_runs_it() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "t",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "2",
        "--env",
        "TICK_MS=200",
    ])
    .ok();
    f.wait_running("t", "v1", 2);
    let out = f.json(&["restart", "t"]);
    assert_eq!(out["release"], "v1", "{out}");
    assert_eq!(out["hosts"], serde_json::json!(["h1", "h2"]), "{out}");
    f.wait_running("t", "v1", 2);
    let audit = f.json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "restart" && a["key"] == "alice"),
        "{audit}"
    );
    // A viewer may not.
    let r = f.ssh("victor", &["restart", "t"], None);
    assert_eq!(r.code, 1, "{}", r.stderr);
}

#[test]
fn events_list_hosts_going_and_coming_and_follow_prints_them_as_they_happen() {
    let mut f = Fleet::start_with(&["--down-after-s", "600"]);
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let mut child = f.ops_child(&["events", "-f", "--json"]);
    let mut lines = Lines::new(child.stdout.take().expect("stdout"));
    f.stop_agent(1);
    let down = lines.wait_for("the host-down event, followed", |l| {
        l.contains("\"host-down\"") && l.contains("h2: tunnel closed")
    });
    let v: serde_json::Value = serde_json::from_str(&down).unwrap_or_default();
    assert_eq!(v["key"], "gateway", "{v}");
    f.start_agent(1, &[]);
    lines.wait_for("the host-up event", |l| {
        l.contains("\"host-up\"") && l.contains("h2: back")
    });
    let _ = child.kill();
    let _ = child.wait();
    // Not followed: the same, as a list; deploys and scales are not events.
    f.ops(&["deploy", "t", fixture("ticker.wasm").to_str().unwrap()])
        .ok();
    let text = f.ops(&["events"]).ok().stdout;
    assert!(
        text.contains("host-down") && text.contains("host-up") && !text.contains("deploy"),
        "{text}"
    );
    // The console's feed rides on the watch stream (it runs until the
    // client goes: read one snapshot).
    let mut w = f.ops_child(&["watch", "--json"]);
    let mut wl = Lines::new(w.stdout.take().expect("stdout"));
    let snap = wl.wait_for("a snapshot", |l| l.starts_with('{'));
    let _ = w.kill();
    let _ = w.wait();
    let v: serde_json::Value = serde_json::from_str(&snap).unwrap_or_default();
    let events = v["events"].as_array().cloned().unwrap_or_default();
    assert!(events.iter().any(|e| e["action"] == "host-down"), "{v}");
}

/// The `error:` lines of a command's stderr.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("error:")).collect()
}

/// A failure is one line on stderr, `error: ` once in front of it, said
/// once: at `ssh gw`, `hostd --gateway` and `hostd --local` alike.
#[test]
fn a_failure_is_said_once_on_stderr_with_one_error_prefix_at_every_door() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    let health = ["--kind", "http", "--health-path", "/healthz"];
    let v1 = fixture("http-version-v1.wasm");
    let mut args = vec!["deploy", "web", v1.to_str().unwrap()];
    args.extend(health);
    f.ops(&args).ok();
    // A release the host finds unhealthy: the host's step says why, the
    // error line says what happened to the fleet and why, each once.
    let bad = fixture("http-version-unhealthy.wasm");
    let mut args = vec!["deploy", "web", bad.to_str().unwrap()];
    args.extend(health);
    let by_hostd = f.ops(&args);
    let artifact = std::fs::read(&bad).unwrap();
    let mut args = vec!["deploy", "web", "-"];
    args.extend(health);
    let by_ssh = f.ssh("alice", &args, Some(&artifact));
    for (r, v) in [(&by_hostd, "v2"), (&by_ssh, "v3")] {
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(
            error_lines(&r.stderr),
            vec![format!(
                "error: web {v} failed on h1 (health check GET /healthz returned 500); rolled back to v1 on every host"
            )],
            "{}",
            r.stderr
        );
        assert_eq!(r.stderr.matches("rolled back").count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("h1: failed: health check GET /healthz"),
            "{}",
            r.stderr
        );
    }
    // Refusals, through each door.
    let unknown = "error: unknown app \"nope\": `ps` lists the fleet's apps";
    let cases: Vec<(Run, i32, &str)> = vec![
        (f.ssh("alice", &["rollback", "nope"], None), 1, unknown),
        (f.ssh("alice", &["scale", "nope", "3"], None), 1, unknown),
        (
            f.ssh("alice", &["deploy", "nope", "x.wasm"], None),
            2,
            "error: through the gateway the artifact comes on stdin",
        ),
        (f.ops(&["rollback", "nope"]), 1, unknown),
        (f.ops(&["scale", "nope", "3"]), 1, unknown),
        (
            f.ops(&["deploy", "nope", "x.wasm"]),
            1,
            "error: cannot read x.wasm",
        ),
        (
            f.local(0, &["rollback", "nope"]),
            1,
            "error: unknown app \"nope\": `hostd ps` lists the apps on this host",
        ),
    ];
    for (r, code, said) in cases {
        assert_eq!(r.code, code, "{}", r.stderr);
        assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.starts_with(said), "{}", r.stderr);
    }
}

/// A deploy through the gateway says, by name, what it did to the env; the
/// JSON has the same in `env_changes`; `--keep-env` keeps the running env.
#[test]
fn a_deploy_through_the_gateway_says_what_it_did_to_the_env() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    let wasm = fixture("ticker.wasm");
    let path = wasm.to_str().unwrap();
    f.ops(&[
        "deploy",
        "envy",
        path,
        "--env",
        "TICK_MS=1000",
        "--env",
        "SECRETISH=s3cr3t",
    ])
    .ok();
    let out = f.json(&["deploy", "envy", path, "--env", "TICK_MS=500"]);
    assert_eq!(
        out["env_changes"],
        serde_json::json!({"added": [], "removed": ["SECRETISH"], "changed": ["TICK_MS"]}),
        "{out}"
    );
    // Over plain ssh, in words; never a value.
    let artifact = std::fs::read(&wasm).unwrap();
    let r = f.ssh(
        "alice",
        &["deploy", "envy", "-", "--keep-env", "--env", "MODE=x"],
        Some(&artifact),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("\nenv: MODE added\n"), "{}", r.stdout);
    let r = f.ssh("alice", &["deploy", "envy", "-"], Some(&artifact));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "env: MODE, TICK_MS removed (a deploy's --env replaces the running release's env; --keep-env keeps it and sets --env over it)"
        ),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("s3cr3t"), "{}", r.stdout);
}
