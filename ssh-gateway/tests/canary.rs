//! Canaries through a gateway of two hosts: the gateway drives the steps
//! and the promotion; a host whose gate trips cuts its own share and the
//! gateway aborts everywhere; a gateway restart resumes without promoting.

mod common;

use std::time::Duration;

use common::*;

fn two_hosts() -> (Fleet, Vec<String>) {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let addrs = f
        .agents
        .iter()
        .map(|a| format!("127.0.0.1:{}", a.http))
        .collect();
    (f, addrs)
}

fn state_of(f: &Fleet, v: &str) -> String {
    f.releases("ver")
        .into_iter()
        .find(|(r, _)| r == v)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

#[test]
fn a_good_canary_walks_10_50_100_on_every_host_by_itself() {
    let (f, addrs) = two_hosts();
    let v1 = fixture("http-version-v1.wasm");
    f.ops(&["deploy", "ver", v1.to_str().unwrap(), "--replicas", "4"])
        .ok();
    for a in &addrs {
        wait_for("v1 on every host", || {
            (get(a, "ver.localhost", "/").text() == "version v1\n").then_some(())
        });
    }
    let load = Load::start(&addrs, "ver.localhost", 1, 0);
    let v2 = fixture("http-version-v2.wasm");
    let out = f.json(&[
        "deploy",
        "ver",
        v2.to_str().unwrap(),
        "--canary",
        "10%",
        "--canary-steps",
        "50%",
        "--canary-window-s",
        "2",
    ]);
    assert_eq!(out["state"], "canary", "{out}");
    assert_eq!(out["canary"]["share"], 10, "{out}");
    assert_eq!(state_of(&f, "v2"), "canary");
    let ps = f.json(&["ps"]);
    assert_eq!(ps[0]["release"], "v1", "{ps}");
    assert_eq!(ps[0]["canary"]["version"], "v2", "{ps}");
    wait_for("the promotion", || {
        let ps = f.json(&["ps"]);
        (ps[0]["release"] == "v2" && ps[0]["canary"].is_null()).then_some(())
    });
    for a in &addrs {
        wait_for("v2 on every host", || {
            (get(a, "ver.localhost", "/").text() == "version v2\n").then_some(())
        });
    }
    let seen = load.finish();
    let failed: Vec<_> = seen.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        seen.len(),
        &failed[..failed.len().min(5)]
    );
    assert_eq!(state_of(&f, "v2"), "active");
    let audit = f.ops(&["audit"]).ok().stdout;
    assert!(audit.contains("canary v2 at 50% (step 2 of 2)"), "{audit}");
    assert!(audit.contains("v2 (was v1), canary ended"), "{audit}");
}

#[test]
fn a_bad_canary_is_aborted_on_every_host_when_one_gate_trips() {
    let (f, addrs) = two_hosts();
    let v1 = fixture("http-version-v1.wasm");
    f.ops(&["deploy", "ver", v1.to_str().unwrap(), "--replicas", "4"])
        .ok();
    for a in &addrs {
        wait_for("v1 on every host", || {
            (get(a, "ver.localhost", "/").text() == "version v1\n").then_some(())
        });
    }
    let load = Load::start(&addrs, "ver.localhost", 1, 3);
    let bad = fixture("http-hello.wasm");
    let out = f.json(&[
        "deploy",
        "ver",
        bad.to_str().unwrap(),
        "--kind",
        "http",
        "--canary",
        "10%",
        "--canary-window-s",
        "3600",
    ]);
    assert_eq!(out["state"], "canary", "{out}");
    wait_for("the abort", || {
        (state_of(&f, "v2") == "failed").then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let seen = load.finish();
    let failed = seen.iter().filter(|(s, _)| *s == 500).count();
    assert_eq!(
        seen.iter().filter(|(s, _)| *s != 500 && *s != 200).count(),
        0,
        "no request failed for the split itself"
    );
    assert!(
        (failed as f64) <= seen.len() as f64 * 0.10 * 0.34 + 10.0,
        "{failed} of {} requests failed: at most the canary's share",
        seen.len()
    );
    for a in &addrs {
        for _ in 0..10 {
            assert_eq!(get(a, "ver.localhost", "/status/500").status, 200);
        }
    }
    let ps = f.json(&["ps"]);
    assert_eq!(ps[0]["release"], "v1", "{ps}");
    assert!(ps[0]["canary"].is_null(), "{ps}");
    let audit = f.json(&["audit"]);
    let abort = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "abort")
        .unwrap_or_else(|| panic!("no abort in {audit}"));
    assert!(
        abort["detail"]
            .as_str()
            .unwrap()
            .contains("gate tripped on h"),
        "{abort}"
    );
    let events = f.ops(&["events"]).ok().stdout;
    assert!(events.contains("abort"), "{events}");
}

#[test]
fn viewers_cannot_end_a_canary_and_a_gateway_restart_resumes_it_without_promoting() {
    let (mut f, addrs) = two_hosts();
    let v1 = fixture("http-version-v1.wasm");
    f.ops(&["deploy", "ver", v1.to_str().unwrap(), "--replicas", "2"])
        .ok();
    let v2 = fixture("http-version-v2.wasm");
    f.ops(&[
        "deploy",
        "ver",
        v2.to_str().unwrap(),
        "--canary",
        "30%",
        "--canary-window-s",
        "3600",
    ])
    .ok();
    for verb in ["promote", "abort"] {
        let r = f.ssh("victor", &[verb, "ver"], None);
        assert_ne!(r.code, 0, "a viewer ran {verb}");
        assert!(r.stderr.contains("viewer"), "{}", r.stderr);
    }
    // On a host, a fleet's canary is the gateway's: refused, nothing cut.
    for verb in ["promote", "abort"] {
        let r = f.local(0, &[verb, "ver"]);
        assert_ne!(r.code, 0, "{verb} ran on the host");
        assert!(r.stderr.contains("managed by the gateway"), "{}", r.stderr);
    }
    assert!(
        (0..100).any(|_| get(&addrs[0], "ver.localhost", "/").text() == "version v2\n"),
        "the refused abort left the canary's share on h1"
    );
    f.kill_gateway();
    f.start_gateway();
    f.wait_host_up("h1");
    f.wait_host_up("h2");
    let ps = f.json(&["ps"]);
    assert_eq!(ps[0]["release"], "v1", "a restart never promotes: {ps}");
    assert_eq!(ps[0]["canary"]["version"], "v2", "{ps}");
    assert_eq!(ps[0]["canary"]["share"], 30, "{ps}");
    for a in &addrs {
        assert!(
            (0..100).any(|_| get(a, "ver.localhost", "/").text() == "version v2\n"),
            "the canary still takes its share on {a}"
        );
    }
    // A host that restarts (losing what it held in memory) gets its share
    // of the canary back when it reconnects.
    f.kill_agent(1);
    f.start_agent(1, &[]);
    f.wait_host_up("h2");
    wait_for("the canary back on the restarted host", || {
        (0..50)
            .any(|_| {
                http(&addrs[1], "GET", "ver.localhost", "/", b"")
                    .is_ok_and(|r| r.text() == "version v2\n")
            })
            .then_some(())
    });
    // Through the gateway too, a second canary or a bad share is refused
    // and nothing changes.
    let v3 = fixture("http-version-v3.wasm");
    for (args, says) in [
        (vec!["--canary", "10%"], "ver has a live canary (v2)"),
        (vec!["--canary", "0%"], "from 1% to 99%"),
        (
            vec!["--canary", "30%", "--canary-steps", "20%"],
            "steps must rise",
        ),
    ] {
        let mut a = vec!["deploy", "ver", v3.to_str().unwrap()];
        a.extend(args.iter().copied());
        let r = f.ops(&a);
        assert_ne!(r.code, 0, "{args:?} accepted");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    assert_eq!(f.json(&["ps"])[0]["canary"]["version"], "v2");
    let out = f.json(&["promote", "ver"]);
    assert_eq!(out["action"], "promoted", "{out}");
    for a in &addrs {
        wait_for("v2 everywhere", || {
            (get(a, "ver.localhost", "/").text() == "version v2\n").then_some(())
        });
        for _ in 0..20 {
            assert_eq!(get(a, "ver.localhost", "/").text(), "version v2\n");
        }
    }
    assert_eq!(state_of(&f, "v2"), "active");
}

#[test]
fn canary_hosts_runs_the_new_release_whole_on_one_host_first() {
    let (f, addrs) = two_hosts();
    let v1 = fixture("http-version-v1.wasm");
    f.ops(&["deploy", "ver", v1.to_str().unwrap(), "--replicas", "2"])
        .ok();
    let v2 = fixture("http-version-v2.wasm");
    let too_many = f.ops(&["deploy", "ver", v2.to_str().unwrap(), "--canary-hosts", "2"]);
    assert_ne!(too_many.code, 0);
    assert!(
        too_many.stderr.contains("would be every host of ver"),
        "{}",
        too_many.stderr
    );
    let out = f.json(&[
        "deploy",
        "ver",
        v2.to_str().unwrap(),
        "--canary-hosts",
        "1",
        "--canary-window-s",
        "3600",
    ]);
    assert_eq!(out["state"], "canary", "{out}");
    assert_eq!(out["canary"]["hosts"], serde_json::json!(["h1"]), "{out}");
    // h1 serves the canary alone, h2 the stable release alone.
    for _ in 0..20 {
        assert_eq!(get(&addrs[0], "ver.localhost", "/").text(), "version v2\n");
        assert_eq!(get(&addrs[1], "ver.localhost", "/").text(), "version v1\n");
    }
    let text = f.ops(&["abort", "ver"]).ok().stdout;
    assert!(
        text.contains("aborted ver v2 (v1 serves alone; v2 is failed)"),
        "{text}"
    );
    for a in &addrs {
        for _ in 0..10 {
            assert_eq!(get(a, "ver.localhost", "/").text(), "version v1\n");
        }
    }
}
