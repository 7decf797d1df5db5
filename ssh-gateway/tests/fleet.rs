//! A gateway and hostd agents on loopback: deploy, scale, roll back, logs.

mod common;

use std::process::Stdio;

use common::*;

#[test]
fn deploy_stages_on_every_chosen_host_then_switches() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let path = fixture("ticker.wasm");
    let r = f
        .ops(&[
            "deploy",
            "ticker",
            path.to_str().unwrap(),
            "--replicas",
            "3",
            "--env",
            "TICK_MS=100",
        ])
        .ok();
    assert!(r.stdout.contains("deployed ticker v1"), "{}", r.stdout);
    for h in ["h1", "h2"] {
        assert!(
            r.stderr.contains(&format!("{h}: staged v1")),
            "progress per host:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!("{h}: active v1")),
            "{}",
            r.stderr
        );
    }
    // Staging comes before any activation.
    let last_staged = r.stderr.rfind("staged v1").unwrap();
    let first_active = r.stderr.find("active v1").unwrap();
    assert!(last_staged < first_active, "{}", r.stderr);
    f.wait_running("ticker", "v1", 3);
    assert_eq!(
        f.spread("ticker").values().copied().collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(f.releases("ticker"), vec![("v1".into(), "active".into())]);
    let ps = f.json(&["ps"]);
    assert_eq!(ps[0]["host"], "h1,h2");
    assert_eq!(ps[0]["running"], 3);
    // Each host has it, numbered as the gateway numbered it, and managed.
    for i in 0..2 {
        let rel = f.local(i, &["releases", "ticker", "--json"]).ok().json();
        assert_eq!(rel[0]["version"], "v1");
        assert_eq!(rel[0]["by"], "alice");
        let r = f.local(i, &["scale", "ticker", "5"]);
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("managed by the gateway"), "{}", r.stderr);
    }
    let hosts = f.json(&["hosts"]);
    assert_eq!(hosts.as_array().unwrap().len(), 2);
    assert!(hosts[0]["labels"]["arch"].is_string());
}

#[test]
fn openssh_client_runs_commands_with_the_clis_output_and_exit_status() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    let bytes = std::fs::read(fixture("ticker.wasm")).unwrap();
    let r = f.ssh(
        "alice",
        &["deploy", "w", "-", "--env", "TICK_MS=100", "--json"],
        Some(&bytes),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["version"], "v1");
    let r = f.ssh("alice", &["ps", "--json"], None);
    assert_eq!(r.code, 0);
    assert_eq!(r.json()[0]["app"], "w");
    let r = f.ssh("alice", &["releases", "nope"], None);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "error: unknown app \"nope\": `ps` lists the fleet's apps"
    );
    let r = f.ssh("alice", &["scale", "w"], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = f.ssh("alice", &["logs", "w", "--tail", "3", "--json"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Quoting survives the trip through one SSH command string.
    let r = f.ssh("alice", &["scale", "'w'", "2"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = f.ssh("alice", &["help"], None);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("rollback"), "{}", r.stdout);
}

#[test]
fn rollback_fleet_wide_needs_no_fetch_and_no_compile() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "api",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "2",
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.ops(&[
        "deploy",
        "api",
        fixture("ticker.component.wasm").to_str().unwrap(),
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.wait_running("api", "v2", 2);
    let compiles = |f: &Fleet| {
        (0..2)
            .map(|i| f.agent_log(i).matches("compiled with Cranelift").count())
            .sum::<usize>()
    };
    let before = compiles(&f);
    let r = f.ops(&["rollback", "api", "--json"]).ok();
    let out = r.json();
    assert_eq!(
        (out["from"].as_str(), out["to"].as_str()),
        (Some("v2"), Some("v1"))
    );
    assert!(
        !r.stderr.contains("fetch"),
        "rollback fetched:\n{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("staged"),
        "rollback staged:\n{}",
        r.stderr
    );
    f.wait_running("api", "v1", 2);
    assert_eq!(compiles(&f), before, "rollback compiled on a host");
    assert_eq!(
        f.releases("api"),
        vec![
            ("v2".into(), "superseded".into()),
            ("v1".into(), "active".into())
        ]
    );
}

#[test]
fn scale_replaces_replicas_without_a_new_release() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "w",
        fixture("ticker.wasm").to_str().unwrap(),
        "--env",
        "TICK_MS=100",
    ])
    .ok();
    f.wait_running("w", "v1", 1);
    let out = f.json(&["scale", "w", "4"]);
    assert_eq!(
        (out["from"].as_u64(), out["replicas"].as_u64()),
        (Some(1), Some(4))
    );
    f.wait_running("w", "v1", 4);
    assert_eq!(
        f.spread("w").values().copied().collect::<Vec<_>>(),
        vec![2, 2]
    );
    f.json(&["scale", "w", "1"]);
    f.wait_running("w", "v1", 1);
    assert_eq!(f.releases("w").len(), 1);
}

#[test]
fn labels_decide_where_replicas_go() {
    let mut f = Fleet::start();
    f.add_agent("eu1", &["region=eu"]);
    f.add_agent("us1", &["region=us"]);
    f.ops(&[
        "deploy",
        "w",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "3",
        "--label",
        "region=us",
    ])
    .ok();
    f.wait_running("w", "v1", 3);
    assert_eq!(
        f.spread("w").keys().cloned().collect::<Vec<_>>(),
        vec!["us1".to_string()]
    );
    let r = f.ops(&[
        "deploy",
        "x",
        fixture("ticker.wasm").to_str().unwrap(),
        "--label",
        "region=mars",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("no host that is up carries the labels region=mars"),
        "{}",
        r.stderr
    );
}

#[test]
fn logs_fan_in_from_every_host_and_resume_after_a_tunnel_cut() {
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
        "TICK_MS=50",
    ])
    .ok();
    f.wait_running("t", "v1", 2);
    let recs = f
        .ops(&["logs", "t", "--json", "--tail", "50"])
        .ok()
        .json_lines();
    let hosts: std::collections::BTreeSet<&str> =
        recs.iter().map(|r| r["host"].as_str().unwrap()).collect();
    assert_eq!(hosts.into_iter().collect::<Vec<_>>(), vec!["h1", "h2"]);

    let mut follower = f.ops_child(&["logs", "t", "-f", "--json", "--tail", "0"]);
    let mut lines = Lines::new(follower.stdout.take().unwrap());
    let parse = |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap();
    lines.wait_for("records from h2", |l| parse(l)["host"] == "h2");
    // Cut h2's tunnel: kill it and start it again on the same data.
    f.kill_agent(1);
    f.start_agent(1, &[]);
    f.wait_host_up("h2");
    let after_restart = lines.wait_for("h2's restart note", |l| {
        let v = parse(l);
        v["host"] == "h2"
            && v["line"]
                .as_str()
                .unwrap_or("")
                .contains("restored from cached code")
    });
    let restart_seq = parse(&after_restart)["seq"].as_u64().unwrap();
    lines.wait_for("more records from h2", |l| {
        parse(l)["host"] == "h2" && parse(l)["seq"].as_u64().unwrap() > restart_seq + 5
    });
    let _ = follower.kill();
    let _ = follower.wait();
    for host in ["h1", "h2"] {
        let seqs: Vec<u64> = lines
            .seen
            .iter()
            .map(|l| parse(l))
            .filter(|v| v["host"] == host)
            .map(|v| v["seq"].as_u64().unwrap())
            .collect();
        assert!(seqs.len() > 5, "{host}: {seqs:?}");
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{host}: a gap or a duplicate in {seqs:?}"
        );
    }

    // A bulk read merges the hosts' streams: every stored record of each
    // host once, in its order; the text form has a line for each.
    let all = f
        .ops(&["logs", "t", "--since", "0", "--json"])
        .ok()
        .json_lines();
    for host in ["h1", "h2"] {
        let seqs: Vec<u64> = all
            .iter()
            .filter(|v| v["host"] == host)
            .map(|v| v["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs.first(), Some(&1), "{host}");
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{host}: a gap or a duplicate in a bulk read"
        );
    }
    let text = f.ops(&["logs", "t", "--since", "0"]).ok().stdout;
    assert!(
        text.lines().count() >= all.len(),
        "the text read has fewer lines"
    );
    // The last N of the merged records, N in all.
    let tail = f
        .ops(&["logs", "t", "--tail", "7", "--json"])
        .ok()
        .json_lines();
    assert_eq!(tail.len(), 7);
}

#[test]
fn rm_stops_the_app_on_every_host() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    f.ops(&[
        "deploy",
        "w",
        fixture("ticker.wasm").to_str().unwrap(),
        "--replicas",
        "2",
    ])
    .ok();
    f.wait_running("w", "v1", 2);
    f.ops(&["rm", "w", "--confirm", "w"]).ok();
    for i in 0..2 {
        wait_for("the app gone from the host", || {
            (f.local(i, &["ps", "--json"])
                .ok()
                .json()
                .as_array()
                .unwrap()
                .is_empty())
            .then_some(())
        });
    }
    assert_eq!(f.ops(&["releases", "w"]).code, 1);
    let audit = f.json(&["audit"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["app"] == "w")
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["deploy", "rm"]);
}

#[test]
fn the_gateway_keeps_the_artifacts_of_its_last_releases_only() {
    let mut f = Fleet::start_with(&["--keep-releases", "2"]);
    f.add_agent("h1", &[]);
    // Seven releases, seven artifacts: one module padded to seven sizes.
    let base = std::fs::read(fixture("ticker.wasm")).unwrap();
    for i in 0..7 {
        let wasm = padded_wasm(&base, base.len() + 64 + 16 * i);
        f.ops_stdin(&["deploy", "w", "-", "--env", "TICK_MS=1000"], Some(&wasm))
            .ok();
    }
    f.wait_running("w", "v7", 1);
    let artifacts = |f: &Fleet| {
        std::fs::read_dir(f.gw_data().join("artifacts"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".wasm"))
            })
            .count()
    };
    assert_eq!(artifacts(&f), 2, "the gateway keeps v6 and v7 only");
    let kept = |f: &Fleet| -> Vec<(String, bool)> {
        f.json(&["releases", "w"])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["version"].as_str().unwrap().to_string(),
                    r["kept"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let want: Vec<(String, bool)> = (1..=7).rev().map(|v| (format!("v{v}"), v >= 6)).collect();
    assert_eq!(kept(&f), want, "the history stays; old artifacts go");

    // v1: the host pruned its code (it keeps 5) and the gateway its
    // artifact. Refused, with what to do; nothing switches.
    let r = f.ops(&["rollback", "w", "--to", "v1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("no longer has its artifact") && r.stderr.contains("deploy it again"),
        "{}",
        r.stderr
    );
    assert_eq!(f.releases("w")[0], ("v7".into(), "active".into()));

    // v4: the gateway let its artifact go, but the host keeps its code.
    f.ops(&["rollback", "w", "--to", "v4"]).ok();
    f.wait_running("w", "v4", 1);

    // A restart loses nothing and deletes nothing it should keep.
    f.stop_gateway();
    f.start_gateway();
    assert_eq!(kept(&f), want);
    assert_eq!(artifacts(&f), 2);
    let states = f.releases("w");
    assert_eq!(states.len(), 7);
    assert!(
        states.contains(&("v4".into(), "active".into())),
        "{states:?}"
    );
}

#[test]
fn keeping_no_release_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gw");
    for n in ["0", "-1", "many"] {
        let out = std::process::Command::new(gateway_bin())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg(format!("--keep-releases={n}"))
            .arg("--data")
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--keep-releases {n}: {err}");
        assert!(err.contains("--keep-releases"), "{err}");
        assert!(!data.exists(), "a refused start created {}", data.display());
    }
}

/// Reports of finished bulk reads (more than 1000 records) in a host's log.
fn bulk_reads_answered(f: &Fleet, agent: usize) -> Vec<u64> {
    f.agent_log(agent)
        .lines()
        .filter(|l| l.contains("logs request answered"))
        .filter_map(|l| {
            let n = l.split("sent=").nth(1)?.split_whitespace().next()?;
            n.parse().ok()
        })
        .filter(|n| *n > 1000)
        .collect()
}

#[test]
fn a_client_that_stops_reading_holds_up_the_hosts_read_not_gateway_memory() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    // A store far bigger than every window and buffer on the way (the
    // tunnel's credit, SSH windows, sockets, pipes): releases of a flooding
    // app until the host holds 400 000 records. (Lines the app writes
    // faster than the store takes them are dropped: only the count stored
    // matters here.)
    let mut stored = 0;
    for run in 1.. {
        f.ops(&[
            "deploy",
            "spam",
            fixture("logspam.wasm").to_str().unwrap(),
            "--env",
            "LINES=150000",
            "--env",
            "LONG_LINE=10",
            "--env",
            "STAY=1",
            "--env",
            &format!("RUN={run}"),
        ])
        .ok();
        let every = std::time::Duration::from_millis(500);
        stored = wait_settled("the store to settle", every, || {
            let r = f
                .ops(&["logs", "spam", "--tail", "1", "--json"])
                .ok()
                .json_lines();
            r.first().and_then(|v| v["seq"].as_u64()).unwrap_or(0)
        });
        if stored >= 400_000 {
            break;
        }
    }
    let before = bulk_reads_answered(&f, 0);
    // OpenSSH's client stops taking data from the gateway once its stdout,
    // which nobody reads here, is full.
    let reader = || {
        let mut c = f.ssh_cmd("alice", &["logs", "spam", "--since", "0"]);
        c.stdin(Stdio::null()).stdout(Stdio::piped());
        c
    };
    let waits = |f: &Fleet| {
        f.agent_log(0)
            .matches("logs request waits for the gateway's credit")
            .count()
    };
    let waited = waits(&f);
    let mut stalled = reader().stderr(Stdio::piped()).spawn().unwrap();
    // The read goes on until the tunnel's credit runs out; then the host waits.
    wait_for("the host to wait for credit", || {
        (waits(&f) > waited).then_some(())
    });
    assert_eq!(
        bulk_reads_answered(&f, 0),
        before,
        "the host finished a read of {stored} records that nobody consumed: something buffered it"
    );
    if let Some(status) = stalled.try_wait().unwrap() {
        let mut err = String::new();
        std::io::Read::read_to_string(stalled.stderr.as_mut().unwrap(), &mut err).unwrap();
        panic!("the client ended ({status}): {err}\n{}", f.gateway_log());
    }
    // Reading now gets everything, in order, and the host finishes.
    let mut out = String::new();
    std::io::Read::read_to_string(stalled.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(stalled.wait().unwrap().success());
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.len() as u64 >= stored.min(400_000),
        "{} lines",
        lines.len()
    );
    let all = f.ops(&["logs", "spam", "--since", "0"]).ok().stdout;
    assert_eq!(lines.len(), all.lines().count());
    wait_for("the host to report the read", || {
        (bulk_reads_answered(&f, 0).len() > before.len()).then_some(())
    });
    // A client that goes away mid-read cancels the host's request (which
    // would otherwise wait for credit until the tunnel closed).
    let cancelled = |f: &Fleet| f.agent_log(0).matches("logs request cancelled").count();
    let was = cancelled(&f);
    let mut gone = reader().stderr(Stdio::null()).spawn().unwrap();
    let mut first = [0u8; 4096];
    std::io::Read::read_exact(gone.stdout.as_mut().unwrap(), &mut first).unwrap();
    gone.kill().unwrap();
    gone.wait().unwrap();
    wait_for("the host to drop the abandoned read", || {
        (cancelled(&f) > was).then_some(())
    });
}

#[test]
fn hosts_and_clients_take_a_list_of_gateways_and_use_the_first_that_answers() {
    use std::process::Command;
    let f = Fleet::start();
    let dead = format!("127.0.0.1:{}", free_port());
    // An agent given the list joins the gateway that answers.
    let key = keygen(f.dir.path(), "h9-host");
    f.enroll("host", &key, "h9");
    let mut agent = Proc::spawn(
        "hostd agent",
        Command::new(hostd_bin())
            .args([
                "agent",
                "--gateway",
                &format!("{dead},{}", f.addr()),
                "--name",
                "h9",
                "--http",
                "none",
                "--host-key",
            ])
            .arg(&key)
            .arg("--data")
            .arg(f.path("h9"))
            .env_remove("CRANEFLEET_GATEWAY")
            .env("CRANEFLEET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    f.wait_host_up("h9");
    // So do commands.
    let cmd = |gateways: &str| {
        run(
            Command::new(hostd_bin())
                .args([
                    "--gateway",
                    gateways,
                    "--accept-new-host-key",
                    "hosts",
                    "--json",
                ])
                .env("HOME", f.path("home"))
                .env_remove("CRANEFLEET_GATEWAY")
                .env("CRANEFLEET_LOG", "warn"),
            None,
        )
    };
    let hosts = cmd(&format!("alice@{dead},alice@{}", f.addr())).ok().json();
    assert_eq!(hosts[0]["name"], "h9", "{hosts}");
    // When none answers, the error names what each said.
    let other = format!("127.0.0.1:{}", free_port());
    let r = cmd(&format!("alice@{dead},alice@{other}"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no gateway answered"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&dead) && r.stderr.contains(&other),
        "{}",
        r.stderr
    );
    agent.stop();
}
