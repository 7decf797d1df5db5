//! The command surface of CLI.md: JSON shapes, stdin, manifests, precompile, rm.

mod common;

use std::process::Command;

use common::*;

#[test]
fn json_shapes_have_the_fields_scripts_rely_on() {
    let h = Hostd::start();
    h.deploy("api", "ticker.wasm", &["--env", "TICK_MS=50"]);
    h.wait_running("api", "v1", 1);
    let has = |v: &serde_json::Value, fields: &[&str]| {
        for f in fields {
            assert!(v.get(*f).is_some(), "missing {f} in {v}");
        }
    };
    has(
        &h.json(&["ps"])[0],
        &[
            "app", "kind", "release", "replicas", "running", "host", "state",
        ],
    );
    has(
        &h.json(&["ps", "api"])[0],
        &[
            "app", "kind", "release", "replicas", "running", "host", "state", "instance",
        ],
    );
    has(
        &h.json(&["releases", "api"])[0],
        &["version", "digest", "created", "by", "state"],
    );
    let hosts = h.json(&["hosts"]);
    has(
        &hosts[0],
        &[
            "name",
            "arch",
            "state",
            "last_seen",
            "labels",
            "apps",
            "instances",
        ],
    );
    assert_eq!(hosts[0]["name"], "testhost");
    assert_eq!(hosts[0]["state"], "up");
    assert_eq!(hosts[0]["instances"], 1);
    has(
        &h.json(&["audit"])[0],
        &["time", "key", "action", "app", "detail"],
    );
    let rec = h.wait_log("api", "a tick", |r| line(r).starts_with("tick"));
    has(
        &rec,
        &[
            "seq", "time", "host", "app", "release", "instance", "stream", "line",
        ],
    );
    assert!(rec["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn deploy_reads_stdin_and_manifests() {
    let h = Hostd::start();
    let bytes = std::fs::read(fixture("ticker.wasm")).unwrap();
    let r = h
        .run_stdin(&["deploy", "fromstdin", "-", "--json"], &bytes)
        .ok();
    assert_eq!(r.json()["version"], "v1");

    let dir = h.data().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("ticker.component.wasm"), dir.join("ticker.wasm")).unwrap();
    std::fs::write(
        dir.join("worker.toml"),
        "name = \"fromtoml\"\nkind = \"worker\"\nreplicas = 2\nartifact = \"ticker.wasm\"\n[env]\nTICK_MS = \"50\"\nGREETING = \"toml\"\n",
    )
    .unwrap();
    let out = h.json(&[
        "deploy",
        "--manifest",
        dir.join("worker.toml").to_str().unwrap(),
        "--env",
        "GREETING=flag",
    ]);
    assert_eq!(out["app"], "fromtoml");
    assert_eq!(out["replicas"], 2);
    h.wait_running("fromtoml", "v1", 2);
    h.wait_log("fromtoml", "a tick", |r| line(r).contains("greeting=flag"));
}

#[test]
fn rm_stops_and_forgets_an_app_but_the_audit_log_remembers() {
    let h = Hostd::start();
    h.deploy("gone", "ticker.wasm", &["--env", "TICK_MS=50"]);
    h.deploy("stays", "ticker.wasm", &["--env", "TICK_MS=50"]);
    h.wait_running("gone", "v1", 1);
    // Without its name repeated, rm is refused and changes nothing.
    for (args, says) in [
        (
            vec!["rm", "gone"],
            "repeat its name to confirm, `rm gone --confirm gone`",
        ),
        (
            vec!["rm", "gone", "--confirm", "stays"],
            "--confirm names \"stays\", not \"gone\": nothing removed",
        ),
    ] {
        let r = h.run(&args);
        assert_eq!(r.code, 2, "a usage error: {}", r.stderr);
        assert!(r.stderr.contains(says), "{}", r.stderr);
        assert_eq!(h.json(&["ps"]).as_array().unwrap().len(), 2);
    }
    h.json(&["rm", "gone", "--confirm", "gone"]);
    let ps = h.json(&["ps"]);
    assert_eq!(ps.as_array().unwrap().len(), 1, "{ps}");
    assert_eq!(h.run(&["releases", "gone"]).code, 1);
    let audit = h.json(&["audit"]);
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["app"] == "gone")
        .map(|a| {
            (
                a["action"].as_str().unwrap().into(),
                a["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        actions.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        vec!["deploy", "rm"]
    );
    assert!(actions[0].1.starts_with("local:"));
    // The same artifact is still used by `stays`: it must not be deleted.
    h.wait_running("stays", "v1", 1);
    assert_eq!(
        std::fs::read_dir(h.data().join("artifacts"))
            .unwrap()
            .count(),
        1
    );
    // A new app of the same name starts over at v1.
    assert_eq!(h.deploy("gone", "ticker.wasm", &[])["version"], "v1");
}

#[test]
fn precompile_targets_both_architectures_from_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    for (target, input) in [
        ("x86_64-unknown-linux-gnu", "ticker.wasm"),
        ("aarch64-unknown-linux-gnu", "ticker.wasm"),
        ("x86_64-unknown-linux-gnu", "http-hello.wasm"),
        ("aarch64-unknown-linux-gnu", "ticker.component.wasm"),
    ] {
        let out = dir.path().join(format!("{target}-{input}.cwasm"));
        let r = run(
            Command::new(hostd_bin())
                .args([
                    "precompile",
                    fixture(input).to_str().unwrap(),
                    "--target",
                    target,
                    "--json",
                    "-o",
                ])
                .arg(&out),
            None,
        )
        .ok()
        .json();
        assert_eq!(r["target"], target);
        assert!(r["digest"].as_str().unwrap().starts_with("sha256:"));
        let expect = if input.contains("component") || input.starts_with("http") {
            "component"
        } else {
            "module"
        };
        assert_eq!(r["artifact"], expect);
        assert_eq!(
            r["output_bytes"].as_u64().unwrap(),
            std::fs::metadata(&out).unwrap().len()
        );
        assert!(r["compile_ms"].is_u64());
        let elf = std::fs::read(&out).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF");
        // e_machine: 0x3e x86_64, 0xb7 aarch64.
        assert_eq!(
            elf[18],
            if target.starts_with("x86_64") {
                0x3e
            } else {
                0xb7
            },
            "{target}"
        );
    }
    let r = run(
        Command::new(hostd_bin()).args([
            "precompile",
            fixture("ticker.wasm").to_str().unwrap(),
            "--target",
            "riscv64gc-unknown-linux-gnu",
        ]),
        None,
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unsupported target"), "{}", r.stderr);
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let r = run(
        Command::new(hostd_bin()).args(["precompile", junk.to_str().unwrap()]),
        None,
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("not a WebAssembly module or component"),
        "{}",
        r.stderr
    );
}

#[test]
fn commands_without_a_daemon_say_how_to_reach_one() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        Command::new(hostd_bin())
            .args(["--data"])
            .arg(dir.path())
            .args(["ps", "--local"]),
        None,
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cannot reach hostd at"), "{}", r.stderr);
    assert!(r.stderr.contains("hostd serve"), "{}", r.stderr);
}

#[test]
fn audit_lists_oldest_first_and_its_help_says_so() {
    let h = Hostd::start();
    h.deploy("api", "ticker.wasm", &["--env", "V=1"]);
    h.deploy("api", "ticker.wasm", &["--env", "V=2"]);
    h.json(&["scale", "api", "2"]);
    // The newest last, in the table and in the JSON (as logs): `--tail N`
    // keeps the newest N.
    let r = h.run(&["audit"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let actions: Vec<&str> = r
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(actions, vec!["deploy", "deploy", "scale"], "{}", r.stdout);
    let tail = h.json(&["audit", "--tail", "2"]);
    let actions: Vec<&str> = tail
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["deploy", "scale"], "{tail}");
    let help = h.run(&["audit", "--help"]);
    assert!(
        help.stdout.contains("oldest first, the newest last"),
        "{}",
        help.stdout
    );
    assert!(
        help.stdout.contains("the newest N, still oldest first"),
        "{}",
        help.stdout
    );
}
