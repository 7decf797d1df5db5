//! Canary releases on one host: a share of requests on the new release,
//! steps, a gate comparing the two releases, promotion and abort by
//! themselves and by hand.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn release_state(h: &Hostd, app: &str, v: &str) -> (String, String) {
    let rows = h.json(&["releases", app]);
    let r = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == v)
        .unwrap_or_else(|| panic!("no {v} in {rows}"))
        .clone();
    (
        r["state"].as_str().unwrap().to_string(),
        r["detail"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_good_canary_walks_its_steps_under_load_and_is_promoted_by_itself() {
    let h = Hostd::start();
    h.deploy("ver", "http-version-v1.wasm", &["--replicas", "4"]);
    let addr = h.http_addr();
    let load = Load::start(std::slice::from_ref(&addr), "ver.localhost", 3, 0);
    let out = h.deploy(
        "ver",
        "http-version-v2.wasm",
        &[
            "--canary",
            "10%",
            "--canary-steps",
            "50%",
            "--canary-window-s",
            "2",
        ],
    );
    assert_eq!(out["state"], "canary", "{out}");
    assert_eq!(out["canary"]["share"], 10, "{out}");
    assert_eq!(out["canary"]["stable"], "v1", "{out}");
    assert_eq!(out["canary"]["steps"], 2, "{out}");
    assert_eq!(release_state(&h, "ver", "v2").0, "canary");
    let row = h.app("ver");
    assert_eq!(
        row["release"], "v1",
        "the stable release is still the active one: {row}"
    );
    assert_eq!(row["canary"]["version"], "v2", "{row}");
    // It reaches 50 %, then is promoted, by itself.
    wait_for("the canary's second step", || {
        let r = h.app("ver");
        (r["canary"]["share"] == 50 || r["release"] == "v2").then_some(())
    });
    wait_for("the promotion", || {
        let r = h.app("ver");
        (r["release"] == "v2" && r["canary"].is_null()).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let seen = load.finish();
    let failed: Vec<_> = seen.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        seen.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(seen.iter().any(|(_, b)| b == "version v1"));
    assert!(seen.iter().any(|(_, b)| b == "version v2"));
    assert_eq!(get(&addr, "ver.localhost", "/").text(), "version v2\n");
    assert_eq!(release_state(&h, "ver", "v2").0, "active");
    assert_eq!(release_state(&h, "ver", "v1").0, "superseded");
    let actions: Vec<String> = h
        .json(&["audit"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("canary-step canary v2 at 50% (step 2 of 2)")),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a.starts_with("promote v2 (was v1)")),
        "{actions:?}"
    );
    let events = h.run(&["events"]).ok().stdout;
    assert!(events.contains("promote"), "{events}");
}

#[test]
fn a_canary_that_fails_30_percent_of_its_requests_is_aborted_at_its_first_step() {
    let h = Hostd::start();
    // The stable release answers every path 200; the canary (http-hello)
    // answers /status/500 with 500: with every third request asking for
    // it, the canary fails a third of its requests.
    h.deploy("ver", "http-version-v1.wasm", &["--replicas", "4"]);
    let addr = h.http_addr();
    let load = Load::start(std::slice::from_ref(&addr), "ver.localhost", 3, 3);
    std::thread::sleep(Duration::from_millis(300));
    let out = h.deploy(
        "ver",
        "http-hello.wasm",
        &[
            "--kind",
            "http",
            "--canary",
            "10%",
            "--canary-steps",
            "50%",
            "--canary-window-s",
            "3600",
        ],
    );
    assert_eq!(out["state"], "canary", "{out}");
    wait_for("the abort", || {
        (release_state(&h, "ver", "v2").0 == "failed").then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let seen = load.finish();
    let (state, detail) = release_state(&h, "ver", "v2");
    assert_eq!(state, "failed");
    assert!(
        detail.contains("gate `canary.error_rate > 2 * stable.error_rate"),
        "{detail}"
    );
    assert!(
        detail.contains("canary.error_rate="),
        "the values that tripped it: {detail}"
    );
    let row = h.app("ver");
    assert_eq!(row["release"], "v1", "{row}");
    assert!(row["canary"].is_null(), "{row}");
    // Every failed request was the canary's, and the canary only had its share.
    let failed = seen.iter().filter(|(s, _)| *s == 500).count();
    let other = seen.iter().filter(|(s, _)| *s != 500 && *s != 200).count();
    assert_eq!(other, 0, "no request failed for the split itself: {seen:?}");
    assert!(
        (failed as f64) <= seen.len() as f64 * 0.10 * 0.34 + 10.0,
        "{failed} of {} requests failed: at most the canary's 10% share of a third",
        seen.len()
    );
    // After the abort, only the stable release answers.
    for _ in 0..20 {
        assert_eq!(get(&addr, "ver.localhost", "/status/500").status, 200);
    }
    h.wait_log("ver", "the abort's system record", |r| {
        r["stream"] == "system" && line(r).contains("canary v2 aborted (gate `")
    });
    let events = h.run(&["events"]).ok().stdout;
    assert!(events.contains("abort"), "{events}");
    let audit = h.json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "abort" && e["key"] == "hostd"),
        "{audit}"
    );
}

#[test]
fn the_split_holds_its_share_and_sticky_routing_keeps_a_user_on_one_release() {
    let h = Hostd::start();
    h.deploy("ver", "http-version-v1.wasm", &[]);
    let addr = h.http_addr();
    h.deploy(
        "ver",
        "http-version-v2.wasm",
        &["--canary", "10%", "--canary-window-s", "3600"],
    );
    let n = 10_000;
    let on_canary = (0..n)
        .filter(|_| get(&addr, "ver.localhost", "/").text() == "version v2\n")
        .count();
    // Binomial(10000, 0.1): mean 1000, σ 30; 5σ either side.
    assert!(
        (850..=1150).contains(&on_canary),
        "{on_canary} of {n} requests on a 10% canary"
    );
    h.json(&["abort", "ver"]);
    h.deploy(
        "ver",
        "http-version-v3.wasm",
        &[
            "--canary",
            "10%",
            "--canary-window-s",
            "3600",
            "--canary-sticky",
            "X-User",
        ],
    );
    let mut users_on_canary = 0;
    for u in 0..200 {
        let user = format!("user-{u}");
        let seen: std::collections::BTreeSet<String> = (0..5)
            .map(|_| get_with(&addr, "ver.localhost", "/", &[("X-User", &user)]).text())
            .collect();
        assert_eq!(seen.len(), 1, "{user} saw {seen:?}");
        if seen.contains("version v3\n") {
            users_on_canary += 1;
        }
    }
    // Binomial(200, 0.1): mean 20, σ 4.2.
    assert!(
        (3..=45).contains(&users_on_canary),
        "{users_on_canary} of 200 users"
    );
}

#[test]
fn promote_and_abort_by_hand_and_a_restart_resumes_without_promoting() {
    let mut h = Hostd::start();
    h.deploy("ver", "http-version-v1.wasm", &["--replicas", "2"]);
    let addr = h.http_addr();
    let refused = h.run(&["promote", "ver"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("ver has no live canary to promote"),
        "{}",
        refused.stderr
    );
    h.deploy(
        "ver",
        "http-version-v2.wasm",
        &["--canary", "20%", "--canary-window-s", "3600"],
    );
    h.restart();
    let row = h.app("ver");
    assert_eq!(row["release"], "v1", "a restart never promotes: {row}");
    assert_eq!(row["canary"]["version"], "v2", "the canary resumed: {row}");
    assert_eq!(row["canary"]["share"], 20, "{row}");
    assert!(
        (0..200).any(|_| get(&addr, "ver.localhost", "/").text() == "version v2\n"),
        "the resumed canary serves its share"
    );
    let load = Load::start(std::slice::from_ref(&addr), "ver.localhost", 2, 0);
    let out = h.json(&["promote", "ver"]);
    assert_eq!(out["action"], "promoted", "{out}");
    assert_eq!(out["version"], "v2");
    assert_eq!(get(&addr, "ver.localhost", "/").text(), "version v2\n");
    h.deploy(
        "ver",
        "http-version-v3.wasm",
        &["--canary", "50%", "--canary-window-s", "3600"],
    );
    let text = h.run(&["abort", "ver"]).ok().stdout;
    assert!(
        text.contains("aborted ver v3 (v2 serves alone; v3 is failed)"),
        "{text}"
    );
    for _ in 0..20 {
        assert_eq!(get(&addr, "ver.localhost", "/").text(), "version v2\n");
    }
    let seen = load.finish();
    assert!(
        seen.iter().all(|(s, _)| *s == 200),
        "no failed request across promote and abort: {:?}",
        seen.iter()
            .filter(|(s, _)| *s != 200)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(release_state(&h, "ver", "v3").0, "failed");
    assert!(release_state(&h, "ver", "v3").1.contains("aborted by"));
    // A rollback during a canary drops the canary first.
    h.deploy(
        "ver",
        "http-version-v1.wasm",
        &["--canary", "50%", "--canary-window-s", "3600"],
    );
    h.json(&["rollback", "ver"]);
    let row = h.app("ver");
    assert!(row["canary"].is_null(), "{row}");
    assert_eq!(release_state(&h, "ver", "v4").0, "failed");
}

#[test]
fn bad_canaries_are_refused_and_nothing_switches() {
    let h = Hostd::start();
    let wasm = fixture("http-version-v2.wasm");
    let f = wasm.to_str().unwrap();
    // No active release to compare with.
    let r = h.run(&["deploy", "ver", f, "--canary", "10%"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("no active release to compare a canary with"),
        "{}",
        r.stderr
    );
    h.deploy("ver", "http-version-v1.wasm", &[]);
    let releases = || h.json(&["releases", "ver"]).as_array().unwrap().len();
    let before = releases();
    for (args, says) in [
        (vec!["--canary", "0%"], "from 1% to 99%"),
        (vec!["--canary", "150%"], "from 1% to 99%"),
        (
            vec!["--canary", "50%", "--canary-steps", "10%"],
            "steps must rise: 10% comes after 50%",
        ),
        (
            vec!["--canary", "10%", "--health-rule", "canary.nope > 1"],
            "nope",
        ),
        (
            vec!["--canary-hosts", "1"],
            "--canary-hosts moves whole hosts of a fleet",
        ),
        (vec!["--canary-window-s", "5"], "need a canary"),
    ] {
        let mut a = vec!["deploy", "ver", f];
        a.extend(args.iter().copied());
        let r = h.run(&a);
        assert_ne!(r.code, 0, "{args:?} was accepted");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert_eq!(h.app("ver")["release"], "v1");
        assert!(h.app("ver")["canary"].is_null());
    }
    assert_eq!(releases(), before, "nothing recorded");
    // A canary while another runs.
    h.deploy(
        "ver",
        "http-version-v2.wasm",
        &["--canary", "10%", "--canary-window-s", "3600"],
    );
    let r = h.run(&[
        "deploy",
        "ver",
        fixture("http-version-v3.wasm").to_str().unwrap(),
        "--canary",
        "10%",
    ]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("ver has a live canary (v2)"),
        "{}",
        r.stderr
    );
    let r = h.run(&[
        "deploy",
        "ver",
        fixture("http-version-v3.wasm").to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0, "a plain deploy waits for the canary to end too");
    assert!(
        r.stderr.contains("`promote ver` or `abort ver` first"),
        "{}",
        r.stderr
    );
    let row: Value = h.app("ver");
    assert_eq!(row["release"], "v1");
    assert_eq!(row["canary"]["version"], "v2");
}

#[test]
fn a_worker_canary_takes_its_share_of_replicas_and_a_crashing_one_is_aborted() {
    let h = Hostd::start();
    h.deploy(
        "tick",
        "ticker.wasm",
        &["--replicas", "4", "--env", "TICK_MS=100"],
    );
    h.wait_running("tick", "v1", 4);
    // A canary that crashes at start: the worker gate (restarts) trips.
    let out = h.deploy(
        "tick",
        "crash.wasm",
        &[
            "--kind",
            "worker",
            "--canary",
            "25%",
            "--canary-window-s",
            "3600",
        ],
    );
    assert_eq!(out["state"], "canary", "{out}");
    assert_eq!(
        out["canary"]["gate"], "canary.restarts > stable.restarts + 2",
        "a worker's default gate reads restarts: {out}"
    );
    wait_for("the crashing canary's abort", || {
        (release_state(&h, "tick", "v2").0 == "failed").then_some(())
    });
    let (_, detail) = release_state(&h, "tick", "v2");
    assert!(detail.contains("canary.restarts="), "{detail}");
    h.wait_running("tick", "v1", 4);
    // A good one: half the replicas, then all of them.
    h.deploy(
        "tick",
        "ticker.wasm",
        &[
            "--env",
            "TICK_MS=100",
            "--env",
            "VERSION=v3",
            "--canary",
            "50%",
            "--canary-window-s",
            "3",
        ],
    );
    let instances = h.json(&["ps", "tick"]);
    let canary: Vec<&Value> = instances
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["instance"].as_str().unwrap().starts_with("tick.canary-"))
        .collect();
    assert_eq!(canary.len(), 2, "half of 4 replicas: {instances}");
    assert!(canary.iter().all(|i| i["release"] == "v3"), "{instances}");
    wait_for("the promotion", || {
        let r = h.app("tick");
        (r["release"] == "v3" && r["canary"].is_null()).then_some(())
    });
    h.wait_running("tick", "v3", 4);
}

#[test]
fn a_message_canary_takes_its_share_of_messages_and_a_failing_one_loses_none() {
    let redis = Redis::start();
    let h = Hostd::start();
    let src = format!("redis://127.0.0.1:{}/jobs", redis.port);
    let trigger = ["--stream", src.as_str(), "--group", "g", "--replicas", "4"];
    h.deploy("mapp", "message-handler.wasm", &trigger);
    let mut args = trigger.to_vec();
    args.extend(["--canary", "20%", "--canary-window-s", "3600"]);
    let out = h.deploy("mapp", "message-fail.wasm", &args);
    assert_eq!(out["state"], "canary", "{out}");
    redis.xadd_payloads("jobs", 0..400);
    wait_for("the failing canary's abort", || {
        (release_state(&h, "mapp", "v2").0 == "failed").then_some(())
    });
    // Every message is handled in the end, by the stable release: what
    // the canary failed was retried.
    let all: std::collections::BTreeSet<String> = (0..400).map(|i| format!("m{i}")).collect();
    wait_for("400 messages handled", || {
        let got: std::collections::BTreeSet<String> = h
            .logs("mapp")
            .iter()
            .filter(|r| r["stream"] == "stdout")
            .filter_map(|r| line(r).strip_prefix("handled ").map(str::to_string))
            .collect();
        (got == all).then_some(())
    });
    // A good canary is promoted by itself.
    let mut args = trigger.to_vec();
    args.extend(["--canary", "50%", "--canary-window-s", "2"]);
    h.deploy("mapp", "message-handler.wasm", &args);
    redis.xadd_payloads("jobs", 400..600);
    wait_for("the promotion", || {
        let r = h.app("mapp");
        (r["release"] == "v3" && r["canary"].is_null()).then_some(())
    });
}
