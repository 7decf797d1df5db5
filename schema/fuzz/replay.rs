//! Replays every committed fuzz input, with no fuzzer: each file of
//! `schema/fuzz/corpus/<target>/` and `schema/fuzz/regressions/<target>/`
//! goes through the very harness function the afl binary runs
//! (`src/targets.rs`, included below). A regression input is a crash the
//! fuzzer found; it passes once the crash is fixed.
//!
//! Runs as `cargo test` in `schema/fuzz/`, and in the workspace's suite
//! when a crate that depends on `schema` and `ops` names this file as a
//! `[[test]]` (it finds the corpus from that crate's directory).

#[path = "src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

/// `schema/fuzz/`, from whichever package this test is built in.
fn fuzz_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        here.to_path_buf(),
        here.join("fuzz"),
        here.join("../fuzz"),
        here.join("schema/fuzz"),
    ]
    .into_iter()
    .find(|d| d.join("corpus").is_dir() && d.join("src/targets.rs").is_file())
    .unwrap_or_else(|| panic!("no schema/fuzz/corpus near {}", here.display()))
}

fn replay(name: &str) {
    let target = targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap();
    let dir = fuzz_dir();
    let mut files = Vec::new();
    for sub in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub).join(name)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_file() && path.file_name().is_some_and(|n| n != "README.md") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no corpus for {name} in {}",
        dir.display()
    );
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| target(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{name}: {} of {} inputs fail:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn fuzz_corpus_frame() {
    replay("frame");
}

#[test]
fn fuzz_corpus_logbatch() {
    replay("logbatch");
}

#[test]
fn fuzz_corpus_manifest() {
    replay("manifest");
}

#[test]
fn fuzz_corpus_expr() {
    replay("expr");
}

#[test]
fn fuzz_corpus_exec_line() {
    replay("exec_line");
}
