//! Bad input gets a clear error, exit 1 (or 2 for usage), and changes nothing.

mod common;

use common::*;
use serde_json::Value;

/// What must not change when a command is refused.
#[derive(Debug, PartialEq)]
struct Snapshot {
    releases: Value,
    apps: Vec<(String, String, String)>,
    cache: usize,
    artifacts: usize,
}

fn snapshot(h: &Hostd) -> Snapshot {
    let count = |d: &str| {
        std::fs::read_dir(h.data().join(d))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    let apps = h
        .json(&["ps"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["app"].as_str().unwrap().to_string(),
                r["release"].as_str().unwrap_or("").to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Snapshot {
        releases: h.json(&["releases", "api"]),
        apps,
        cache: count("cache"),
        artifacts: count("artifacts"),
    }
}

/// A host running `api` v1 (two replicas), ready to be sent bad input.
fn running_host() -> (Hostd, Snapshot) {
    let h = Hostd::start();
    h.deploy(
        "api",
        "ticker.wasm",
        &["--replicas", "2", "--env", "TICK_MS=100"],
    );
    h.wait_running("api", "v1", 2);
    let s = snapshot(&h);
    (h, s)
}

fn refused(h: &Hostd, before: &Snapshot, r: Run, expect: &str) {
    assert_eq!(
        r.code, 1,
        "expected exit 1, got {}:\n{}{}",
        r.code, r.stdout, r.stderr
    );
    assert!(
        r.stderr.contains(expect),
        "stderr lacks {expect:?}:\n{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.trim().lines().count(),
        1,
        "one line on stderr:\n{}",
        r.stderr
    );
    assert_eq!(&snapshot(h), before, "a refused command changed something");
    h.wait_running("api", "v1", 2);
}

#[test]
fn non_wasm_upload_is_refused() {
    let (h, before) = running_host();
    let r = h.run_stdin(&["deploy", "api", "-"], b"#!/bin/sh\necho not wasm\n");
    refused(&h, &before, r, "not a WebAssembly module or component");
    let r = h.run_stdin(&["deploy", "api", "-"], b"");
    refused(&h, &before, r, "an empty file");
}

#[test]
fn truncated_artifact_is_refused() {
    let (h, before) = running_host();
    let bytes = std::fs::read(fixture("ticker.component.wasm")).unwrap();
    let r = h.run_stdin(&["deploy", "api", "-"], &bytes[..bytes.len() * 2 / 3]);
    refused(&h, &before, r, "invalid or truncated");
}

#[test]
fn precompiled_file_is_refused_as_an_upload() {
    let (h, before) = running_host();
    for target in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] {
        let out = h.data().join(format!("{target}.cwasm"));
        run(
            std::process::Command::new(hostd_bin())
                .args([
                    "precompile",
                    fixture("ticker.wasm").to_str().unwrap(),
                    "--target",
                    target,
                    "-o",
                ])
                .arg(&out),
            None,
        )
        .ok();
        let r = h.run(&["deploy", "api", out.to_str().unwrap()]);
        refused(
            &h,
            &before,
            r,
            "precompiled .cwasm file; deploy the .wasm instead",
        );
    }
}

#[test]
fn module_built_for_the_wrong_kind_is_refused() {
    let (h, before) = running_host();
    let r = h.run(&["deploy", "api", fixture("noexport.wasm").to_str().unwrap()]);
    refused(
        &h,
        &before,
        r,
        "this module exports memory (memory), hello and no `_start`",
    );
    let r = h.run(&[
        "deploy",
        "api",
        fixture("noexport.wasm").to_str().unwrap(),
        "--kind",
        "worker",
    ]);
    refused(&h, &before, r, "no `_start`");
    let r = h.run(&[
        "deploy",
        "api",
        fixture("ticker.wasm").to_str().unwrap(),
        "--kind",
        "http",
    ]);
    refused(
        &h,
        &before,
        r,
        "an http app must be a wasi:http/proxy component",
    );
    let r = h.run(&[
        "deploy",
        "api",
        fixture("ticker.component.wasm").to_str().unwrap(),
        "--kind",
        "http",
    ]);
    refused(&h, &before, r, "this component exports wasi:cli/run@0.2");
    let r = h.run(&[
        "deploy",
        "api",
        fixture("http-hello.wasm").to_str().unwrap(),
        "--kind",
        "worker",
    ]);
    refused(&h, &before, r, "deploy it with --kind http");
}

#[test]
fn bad_manifest_is_refused_naming_the_field() {
    let (h, before) = running_host();
    let ticker = fixture("ticker.wasm");
    let t = ticker.to_str().unwrap();
    let r = h.run(&[
        "deploy",
        "api",
        t,
        "--schedule",
        "61 * * * *",
        "--kind",
        "job",
    ]);
    refused(&h, &before, r, "manifest field `schedule`");
    let r = h.run(&[
        "deploy",
        "api",
        t,
        "--schedule",
        "* * * * *",
        "--kind",
        "worker",
    ]);
    refused(&h, &before, r, "only jobs have a schedule");
    let r = h.run(&["deploy", "api", t, "--memory-mb", "0"]);
    refused(&h, &before, r, "`limits.memory_mb`");
    let r = h.run(&["deploy", "api", t, "--env", "1BAD=x"]);
    refused(&h, &before, r, "`env.1BAD`");
    let r = h.run(&["deploy", "Not_A_Name", t]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("invalid app name"), "{}", r.stderr);
    let manifest = h.data().join("api.toml");
    std::fs::write(
        &manifest,
        format!("name = \"api\"\nkind = \"worker\"\nreplica = 3\nartifact = \"{t}\"\n"),
    )
    .unwrap();
    let r = h.run(&["deploy", "--manifest", manifest.to_str().unwrap()]);
    refused(&h, &before, r, "unknown field `replica`");
}

#[test]
fn unknown_app_is_refused_by_every_command() {
    let (h, before) = running_host();
    for args in [
        vec!["ps", "nope"],
        vec!["releases", "nope"],
        vec!["rollback", "nope"],
        vec!["scale", "nope", "2"],
        vec!["logs", "nope"],
        vec!["rm", "nope", "--confirm", "nope"],
    ] {
        let r = h.run(&args);
        refused(&h, &before, r, "unknown app \"nope\"");
    }
}

#[test]
fn impossible_rollbacks_and_scales_are_refused() {
    let (h, before) = running_host();
    let r = h.run(&["rollback", "api"]);
    refused(&h, &before, r, "no earlier healthy release");
    let r = h.run(&["rollback", "api", "--to", "v9"]);
    refused(&h, &before, r, "api has no release v9");
    let r = h.run(&["rollback", "api", "--to", "v1"]);
    refused(&h, &before, r, "already the active release");
    h.deploy("cron", "job.wasm", &["--schedule", "@every 1h"]);
    let before = snapshot(&h);
    let r = h.run(&["scale", "cron", "3"]);
    refused(&h, &before, r, "runs one at a time");
    let audit = h.json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "rollback"
                && a["detail"].as_str().unwrap().starts_with("refused")),
        "refusals are audited: {audit}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let (h, before) = running_host();
    for args in [
        vec!["scale", "api"],
        vec!["scale", "api", "many"],
        vec!["frobnicate"],
        vec!["rollback", "api", "--to", "x"],
    ] {
        let r = h.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("Usage") || r.stderr.contains("error"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(snapshot(&h), before);
}

#[test]
fn a_malformed_frame_closes_that_connection_not_the_daemon() {
    use std::io::{Read, Write};
    let (h, before) = running_host();
    for garbage in [
        &b"\xff\xff\xff\xffjunk"[..],
        b"\x00\x00\x00\x05\x63hello",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(h.data().join("hostd.sock")).unwrap();
        s.write_all(garbage).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        let text = String::from_utf8_lossy(&reply);
        assert!(
            text.contains("protocol error") || text.contains("expected hello"),
            "{text:?}"
        );
    }
    assert_eq!(snapshot(&h), before);
}

#[test]
fn a_second_daemon_on_the_same_data_is_refused() {
    let (h, _) = running_host();
    let r = run(
        std::process::Command::new(hostd_bin())
            .args(["serve", "--http", "none", "--data"])
            .arg(h.data()),
        None,
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("another hostd is already serving"),
        "{}",
        r.stderr
    );
    h.wait_running("api", "v1", 2);
}

/// A file holding `wat`, built to wasm.
fn wat_file(h: &Hostd, name: &str, wat: &str) -> String {
    let p = h.data().join(name);
    std::fs::write(&p, ::wat::parse_str(wat).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn schedules_that_overflow_or_never_fire_are_refused() {
    let (h, before) = running_host();
    let job = fixture("job.wasm");
    let j = job.to_str().unwrap();
    for (schedule, why) in [
        ("@every 18446744073709551615s", "at most 366 days"),
        ("@every 400d", "at most 366 days"),
        ("0 0 31 2 *", "never fires"),
    ] {
        let r = h.run(&["deploy", "api", j, "--kind", "job", "--schedule", schedule]);
        refused(&h, &before, r, why);
    }
}

#[test]
fn limits_past_their_ceiling_are_refused() {
    let (h, before) = running_host();
    let ticker = fixture("ticker.wasm");
    let t = ticker.to_str().unwrap();
    let max = u64::MAX.to_string();
    for (flag, field) in [
        ("--stop-grace-ms", "`limits.stop_grace_ms`"),
        ("--timeout-ms", "`limits.timeout_ms`"),
        ("--health-window-s", "`health.window_s`"),
        ("--memory-mb", "`limits.memory_mb`"),
    ] {
        let r = h.run(&["deploy", "api", t, flag, &max]);
        refused(&h, &before, r, field);
    }
    // ~5 MB of environment (from a manifest: an argument is at most 128
    // KiB): refused with the reason, not a broken pipe.
    let manifest = h.data().join("big.toml");
    let big = "x".repeat(5 << 20);
    std::fs::write(
        &manifest,
        format!("name = \"api\"\nkind = \"worker\"\nartifact = \"{t}\"\n[env]\nBIG = \"{big}\"\n"),
    )
    .unwrap();
    let r = h.run(&["deploy", "--manifest", manifest.to_str().unwrap()]);
    refused(&h, &before, r, "manifest field `env`");
}

#[test]
fn code_that_needs_more_memory_than_its_limit_is_refused_before_the_switch() {
    let (h, before) = running_host();
    // 65536 pages: 4 GiB at the least, against the default 128 MiB.
    let m = wat_file(
        &h,
        "huge.wasm",
        r#"(module (memory 65536) (func (export "_start")))"#,
    );
    let r = h.run(&["deploy", "api", &m, "--kind", "worker"]);
    refused(&h, &before, r, "declares at least 4096 MiB of memory");
    // Within a raised limit it is accepted as far as memory goes.
    let small = wat_file(
        &h,
        "small.wasm",
        r#"(module (memory 2049) (func (export "_start")))"#,
    );
    let r = h.run(&["deploy", "api", &small, "--kind", "worker"]);
    refused(&h, &before, r, "more than its limit of 128 MiB");
    // A table past what an instance may have: refused, not a crash loop.
    let table = wat_file(
        &h,
        "table.wasm",
        r#"(module (table 100000 funcref) (func (export "_start")))"#,
    );
    let r = h.run(&["deploy", "api", &table, "--kind", "worker"]);
    refused(&h, &before, r, "a table of at least 100000 elements");
}

#[test]
fn changing_an_apps_kind_takes_an_explicit_kind() {
    let (h, before) = running_host();
    let http = fixture("http-hello.wasm");
    let r = h.run(&["deploy", "api", http.to_str().unwrap()]);
    refused(
        &h,
        &before,
        r,
        "api is a worker app, and this artifact is built as http",
    );
}

#[test]
fn a_compile_bomb_is_refused_before_it_is_compiled() {
    let (h, before) = running_host();
    // 150 000 empty functions: seconds of both cores and a gigabyte to compile.
    let funcs = "(func)".repeat(150_000);
    let bomb = wat_file(
        &h,
        "bomb.wasm",
        &format!(r#"(module {funcs} (func (export "_start")))"#),
    );
    let started = std::time::Instant::now();
    let r = h.run(&["deploy", "api", &bomb, "--kind", "worker"]);
    refused(&h, &before, r, "150001 functions");
    // Refused from its sections alone (a compile would take seconds).
    println!("refused in {:?}", started.elapsed());
}
