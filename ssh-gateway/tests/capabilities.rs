//! Capabilities across a fleet: two hosts sharing one key-value state in a
//! real Redis (the gateway's fleet-wide default), config and secrets set
//! through the gateway and carried to hosts inside the tunnel only, `kv`
//! through the gateway (shared store, or `--host` for a host's own).

mod common;

use common::*;

/// No file under `dir` holds `needle`.
fn nowhere_in_files(dir: &std::path::Path, needle: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            nowhere_in_files(&path, needle);
        } else if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds the secret",
                path.display()
            );
        }
    }
}

#[test]
fn two_replicas_on_two_hosts_share_one_counter_and_a_secret_reaches_them_sealed() {
    let redis = Redis::start();
    let mut f = Fleet::start_with(&["--keyvalue-url", &redis.url()]);
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let wasm = fixture("kv.wasm");
    f.ops(&[
        "deploy",
        "kvapp",
        wasm.to_str().unwrap(),
        "--kind",
        "http",
        "--replicas",
        "2",
    ])
    .ok();
    let placed = f.json(&["ps"]);
    let row = placed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["app"] == "kvapp")
        .unwrap()
        .clone();
    assert_eq!(row["host"], "h1,h2", "one replica per host: {row}");
    let incr = |i: usize| {
        get(
            &format!("127.0.0.1:{}", f.agents[i].http),
            "kvapp.localhost",
            "/incr?key=visits",
        )
    };
    assert_eq!(incr(0).text(), "1\n");
    assert_eq!(incr(1).text(), "2\n");
    assert_eq!(incr(0).text(), "3\n");
    let info = f.json(&["info", "kvapp"]);
    assert_eq!(
        (info["keyvalue"].as_str(), info["hosts"].clone()),
        (Some("redis"), serde_json::json!(["h1", "h2"]))
    );
    // Operators read and write the shared store through the gateway;
    // viewers may read, not write.
    assert_eq!(f.json(&["kv", "kvapp", "get", "visits"])["value"], "3");
    let r = f.ssh("victor", &["kv", "kvapp", "get", "visits"], None);
    assert_eq!((r.code, r.stdout.as_str()), (0, "3\n"));
    let r = f.ssh("victor", &["kv", "kvapp", "set", "visits", "0"], None);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is a viewer"), "{}", r.stderr);
    f.ops(&["kv", "kvapp", "set", "greeting", "hi"]).ok();
    assert_eq!(
        get(
            &format!("127.0.0.1:{}", f.agents[1].http),
            "kvapp.localhost",
            "/get?key=greeting"
        )
        .text(),
        "hi"
    );

    // A secret through the gateway: a new release on both hosts, read by
    // the app, written nowhere in the clear.
    let secret = "tok-6e2b-Secret";
    let out = f.json(&[
        "config",
        "set",
        "kvapp",
        &format!("TOKEN={secret}"),
        "--secret",
    ]);
    assert_eq!(
        (out["from"].as_str(), out["version"].as_str()),
        (Some("v1"), Some("v2"))
    );
    for i in 0..2 {
        let r = get(
            &format!("127.0.0.1:{}", f.agents[i].http),
            "kvapp.localhost",
            "/config?key=TOKEN",
        );
        assert_eq!(r.text(), secret, "host {i}");
    }
    let shown = f.ssh("victor", &["config", "kvapp"], None);
    assert_eq!(shown.stdout, "TOKEN=(secret)\n");
    assert_eq!(
        f.ssh("victor", &["config", "set", "kvapp", "A=1"], None)
            .code,
        1
    );
    for args in [
        &["config", "kvapp", "--json"][..],
        &["releases", "kvapp", "--json"],
        &["audit", "--json"],
        &["ps", "kvapp", "--json"],
        &["info", "kvapp", "--json"],
    ] {
        let r = f.ops(args).ok();
        assert!(!r.stdout.contains(secret), "{args:?}");
    }
    assert!(!f.gateway_log().contains(secret));
    nowhere_in_files(&f.gw_data(), secret);
    for i in 0..2 {
        assert!(!f.agent_log(i).contains(secret));
        nowhere_in_files(&f.agents[i].data, secret);
    }
    // The counter lives on across the config release and a rollback, which
    // takes the secret away again.
    assert_eq!(incr(1).text(), "4\n");
    f.ops(&["rollback", "kvapp"]).ok();
    assert_eq!(
        get(
            &format!("127.0.0.1:{}", f.agents[0].http),
            "kvapp.localhost",
            "/config?key=TOKEN"
        )
        .status,
        404
    );
    assert_eq!(incr(0).text(), "5\n");
}

#[test]
fn a_hosts_own_store_is_reached_with_host_and_the_gateway_says_so_without_it() {
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    let wasm = fixture("kv.wasm");
    f.ops(&["deploy", "kvapp", wasm.to_str().unwrap(), "--kind", "http"])
        .ok();
    let r = f.ops(&["kv", "kvapp", "get", "k"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("keeps its key-value state on each host (SQLite): pass --host NAME (h1)"),
        "{}",
        r.stderr
    );
    f.ops(&["kv", "kvapp", "set", "k", "from-gw", "--host", "h1"])
        .ok();
    let at = format!("127.0.0.1:{}", f.agents[0].http);
    assert_eq!(get(&at, "kvapp.localhost", "/get?key=k").text(), "from-gw");
    assert_eq!(get(&at, "kvapp.localhost", "/incr?key=n").text(), "1\n");
    let v = f.json(&["kv", "kvapp", "get", "n", "--host", "h1"]);
    assert_eq!(v["value"], "1");
    let keys = f.json(&["kv", "kvapp", "list", "--host", "h1"]);
    assert_eq!(keys["keys"], serde_json::json!(["k", "n"]));
    let r = f.ops(&["kv", "kvapp", "get", "k", "--host", "nope"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("host nope is not connected"),
        "{}",
        r.stderr
    );
    let audit = f.ops(&["audit"]).ok().stdout;
    assert!(audit.contains("set k in kvapp/default on h1"), "{audit}");
    assert!(!audit.contains("from-gw"), "{audit}");
}

#[test]
fn the_python_app_on_two_hosts_counts_visits_in_one_shared_redis_counter() {
    let redis = Redis::start();
    let mut f = Fleet::start();
    f.add_agent("h1", &[]);
    f.add_agent("h2", &[]);
    let wasm = fixture("visits.wasm");
    let url = redis.url();
    f.ops(&[
        "deploy",
        "visits",
        wasm.to_str().unwrap(),
        "--kind",
        "http",
        "--replicas",
        "2",
        "--keyvalue-url",
        &url,
    ])
    .ok();
    let visit = |i: usize| {
        get(
            &format!("127.0.0.1:{}", f.agents[i].http),
            "visits.localhost",
            "/visit",
        )
        .text()
    };
    assert_eq!(visit(0), "visits: 1\n");
    assert_eq!(visit(1), "visits: 2\n");
    assert_eq!(visit(1), "visits: 3\n");
    assert_eq!(visit(0), "visits: 4\n");
    assert_eq!(f.json(&["kv", "visits", "get", "visits"])["value"], "4");
}
