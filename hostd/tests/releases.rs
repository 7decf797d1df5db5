//! Releases: numbered per app, kept precompiled, rolled back without
//! compiling, and never lost across restarts.

mod common;

use common::*;

fn compiles_logged(h: &Hostd) -> usize {
    h.daemon_log().matches("compiled with Cranelift").count()
}

fn cache_files(h: &Hostd) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(h.data().join("cache"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn rollback_restores_previous_release_without_compiling() {
    let h = Hostd::start();
    h.deploy(
        "api",
        "ticker.wasm",
        &["--env", "TICK_MS=50", "--env", "VERSION=one"],
    );
    h.deploy(
        "api",
        "ticker.component.wasm",
        &["--env", "TICK_MS=50", "--env", "VERSION=two"],
    );
    h.wait_log("api", "v2 running", |r| line(r).contains("version=two"));
    let compiles = compiles_logged(&h);
    let files = cache_files(&h);

    let out = h.json(&["rollback", "api"]);
    assert_eq!(out["from"], "v2");
    assert_eq!(out["to"], "v1");
    h.wait_running("api", "v1", 1);
    h.wait_log("api", "v1 running again", |r| {
        r["release"] == "v1" && line(r).contains("version=one") && r["seq"].as_u64() > Some(0)
    });
    assert_eq!(
        compiles_logged(&h),
        compiles,
        "rollback compiled something:\n{}",
        h.daemon_log()
    );
    assert_eq!(cache_files(&h), files);
    assert_eq!(
        h.releases("api"),
        vec![
            ("v2".into(), "superseded".into()),
            ("v1".into(), "active".into())
        ]
    );
    // Forward again with --to.
    let out = h.json(&["rollback", "api", "--to", "v2"]);
    assert_eq!(out["to"], "v2");
    h.wait_running("api", "v2", 1);
    assert_eq!(compiles_logged(&h), compiles);
}

#[test]
fn versions_are_monotonic_and_a_redeploy_keeps_the_scale() {
    let h = Hostd::start();
    h.deploy("w", "ticker.wasm", &["--replicas", "2"]);
    h.json(&["scale", "w", "3"]);
    let out = h.deploy("w", "ticker.wasm", &["--env", "X=1"]);
    assert_eq!(out["version"], "v2");
    assert_eq!(
        out["replicas"], 3,
        "a deploy without --replicas keeps the app's scale"
    );
    assert_eq!(
        out["compile_ms"], 0,
        "same artifact: compiled code is reused"
    );
    let rel = h.json(&["releases", "w"]);
    let r = &rel[0];
    for field in ["version", "digest", "created", "by", "state"] {
        assert!(!r[field].is_null(), "releases lacks {field}: {r}");
    }
    assert!(r["by"].as_str().unwrap().starts_with("local:"));
    assert_eq!(rel[0]["digest"], rel[1]["digest"]);
}

#[test]
fn only_the_last_five_releases_stay_precompiled() {
    let h = Hostd::start();
    let fixtures = [
        "ticker.wasm",
        "ticker.component.wasm",
        "hello.wasm",
        "spin.wasm",
        "crash.wasm",
        "job.wasm",
        "memhog.wasm",
    ];
    for f in fixtures {
        h.deploy("many", f, &["--kind", "worker", "--replicas", "0"]);
    }
    let rel = h.json(&["releases", "many"]);
    let kept: Vec<(String, bool)> = rel
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_string(),
                r["kept"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        vec![
            ("v7".into(), true),
            ("v6".into(), true),
            ("v5".into(), true),
            ("v4".into(), true),
            ("v3".into(), true),
            ("v2".into(), false),
            ("v1".into(), false)
        ]
    );
    assert_eq!(cache_files(&h).len(), 5, "{:?}", cache_files(&h));
    let r = h.run(&["rollback", "many", "--to", "v1"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("v1 is no longer kept on this host"),
        "{}",
        r.stderr
    );
    h.json(&["rollback", "many", "--to", "v3"]);
}

#[test]
fn restart_restores_every_release_from_cache_without_compiling() {
    let mut h = Hostd::start();
    h.deploy(
        "a",
        "ticker.wasm",
        &["--env", "TICK_MS=50", "--replicas", "2"],
    );
    h.deploy("b", "ticker.component.wasm", &["--env", "TICK_MS=50"]);
    h.deploy("b", "ticker.component.wasm", &["--env", "TICK_MS=60"]);
    h.json(&["rollback", "b"]);
    let before = (
        h.json(&["releases", "a"]),
        h.json(&["releases", "b"]),
        h.json(&["audit"]),
    );
    let compiles = compiles_logged(&h);
    h.restart();
    assert_eq!(
        (
            h.json(&["releases", "a"]),
            h.json(&["releases", "b"]),
            h.json(&["audit"])
        ),
        before
    );
    h.wait_running("a", "v1", 2);
    h.wait_running("b", "v1", 1);
    assert_eq!(
        compiles_logged(&h),
        compiles,
        "restart compiled:\n{}",
        h.daemon_log()
    );
    h.wait_log("a", "the restore note", |r| {
        line(r).contains("restored from cached code")
    });
}

#[test]
fn a_crash_loses_no_release_and_no_audit_entry() {
    let mut h = Hostd::start();
    h.deploy("a", "ticker.wasm", &["--env", "TICK_MS=50"]);
    h.deploy("a", "ticker.component.wasm", &["--env", "TICK_MS=50"]);
    h.json(&["scale", "a", "2"]);
    let before = (h.json(&["releases", "a"]), h.json(&["audit"]));
    h.crash_and_restart();
    assert_eq!((h.json(&["releases", "a"]), h.json(&["audit"])), before);
    h.wait_running("a", "v2", 2);
}

#[test]
fn corrupt_or_foreign_compiled_code_is_recompiled_never_loaded() {
    let mut h = Hostd::start();
    h.deploy("a", "ticker.wasm", &["--env", "TICK_MS=50"]);
    h.deploy("b", "ticker.component.wasm", &["--env", "TICK_MS=50"]);
    h.stop();
    let files = cache_files(&h);
    assert_eq!(files.len(), 2);
    // Truncate one cached file; replace the other with code for the other CPU.
    let a_digest = h.json_offline_digest("ticker.wasm");
    for f in &files {
        let path = h.data().join("cache").join(f);
        if f.starts_with(&a_digest) {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        } else {
            let other = if cfg!(target_arch = "x86_64") {
                "aarch64-unknown-linux-gnu"
            } else {
                "x86_64-unknown-linux-gnu"
            };
            let out = h.data().join("foreign.cwasm");
            run(
                std::process::Command::new(hostd_bin())
                    .args([
                        "precompile",
                        fixture("ticker.component.wasm").to_str().unwrap(),
                        "--target",
                        other,
                        "-o",
                    ])
                    .arg(&out),
                None,
            )
            .ok();
            std::fs::copy(&out, &path).unwrap();
        }
    }
    h.restart();
    h.wait_running("a", "v1", 1);
    h.wait_running("b", "v1", 1);
    let log = h.daemon_log();
    assert_eq!(
        log.matches("does not match its recorded sha256").count(),
        2,
        "{log}"
    );
    h.wait_log("a", "a tick after recompiling", |r| {
        line(r).starts_with("tick 2")
    });
    h.wait_log("b", "a tick after recompiling", |r| {
        line(r).starts_with("tick 2")
    });
}

trait DigestOf {
    fn json_offline_digest(&self, fixture_name: &str) -> String;
}

impl DigestOf for Hostd {
    /// The sha256 hex of a fixture, as hostd names its files.
    fn json_offline_digest(&self, fixture_name: &str) -> String {
        let out = run(
            std::process::Command::new(hostd_bin())
                .args([
                    "precompile",
                    fixture(fixture_name).to_str().unwrap(),
                    "--json",
                    "-o",
                ])
                .arg(self.data().join("digest.cwasm")),
            None,
        )
        .ok()
        .json();
        out["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string()
    }
}

#[test]
fn a_deploy_says_by_name_what_it_did_to_the_env_and_keep_env_keeps_it() {
    let h = Hostd::start();
    let first = h.deploy(
        "envy",
        "ticker.wasm",
        &[
            "--env",
            "TICK_MS=1000",
            "--env",
            "DB_URL=postgres://u:hunter2@db",
            "--env",
            "MODE=a",
        ],
    );
    assert!(
        first.get("env_changes").is_none(),
        "a first release: {first}"
    );
    // The next deploy's env replaces the whole env, and says what went.
    let path = fixture("ticker.wasm");
    let r = h.run(&[
        "deploy",
        "envy",
        path.to_str().unwrap(),
        "--env",
        "TICK_MS=1000",
        "--env",
        "MODE=b",
        "--env",
        "NEW=1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "env: DB_URL removed; MODE changed; NEW added (a deploy's --env replaces the running release's env; --keep-env keeps it and sets --env over it)"
        ),
        "{}",
        r.stdout
    );
    // Names, never values.
    assert!(
        !r.stdout.contains("hunter2") && !r.stdout.contains("MODE=b"),
        "{}",
        r.stdout
    );
    // --keep-env: the running env stays, --env over it.
    let kept = h.deploy("envy", "ticker.wasm", &["--keep-env", "--env", "EXTRA=2"]);
    assert_eq!(
        kept["env_changes"],
        serde_json::json!({"added": ["EXTRA"], "removed": [], "changed": []}),
        "{kept}"
    );
    let info = h.json(&["info", "envy"]);
    assert_eq!(
        info["env"],
        serde_json::json!(["EXTRA", "MODE", "NEW", "TICK_MS"]),
        "{info}"
    );
    // The same env again: nothing said.
    let r = h.run(&["deploy", "envy", path.to_str().unwrap(), "--keep-env"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("env:"), "{}", r.stdout);
}
