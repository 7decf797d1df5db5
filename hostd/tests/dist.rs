//! What hostd ships besides its binary, checked against the binary:
//! `--help` for every flag, the completions and man pages generated into
//! `hostd/dist/`, and the systemd units there.

#[path = "../../fixtures/units.rs"]
mod units;

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use hostd::cli::{Cli, HostdCommand};
use units::Unit;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist")
}

#[test]
fn help_says_what_every_flag_does_and_what_it_defaults_to() {
    let problems = ops::clidoc::help_problems(&Cli::command());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The defaults clap knows are printed; a computed one is written out.
    let serve = Cli::command()
        .find_subcommand_mut("serve")
        .expect("serve")
        .render_long_help()
        .to_string();
    assert!(serve.contains("[default: 127.0.0.1:8080]"), "{serve}");
    assert!(serve.contains("(default DATA/secrets.key)"), "{serve}");
}

#[test]
fn completions_and_man_pages_in_dist_are_current() {
    if let Err(e) = ops::clidoc::check_dist(&Cli::command(), &dist(), "hostd") {
        panic!("{e}");
    }
}

#[test]
fn completions_know_every_fleet_flag_even_the_hand_written_ones() {
    // `config` and `kv` are parsed by hand-written `clap::Args` impls in
    // schema/src/command/capability.rs; their flags must complete too.
    let bash = String::from_utf8(ops::clidoc::completion(
        &Cli::command(),
        ops::clidoc::Shell::Bash,
    ))
    .expect("utf-8");
    for word in [
        "--secret",
        "--bucket",
        "--host",
        "--allow-outbound",
        "--where",
        "--health-rule",
        "--host-key",
        "--output",
        "http worker job message",
    ] {
        assert!(bash.contains(word), "{word} is not in the bash completion");
    }
    let fish = String::from_utf8(ops::clidoc::completion(
        &Cli::command(),
        ops::clidoc::Shell::Fish,
    ))
    .expect("utf-8");
    for (sub, flag) in [("config", "secret"), ("kv", "bucket"), ("kv", "host")] {
        let line = format!("-n \"__fish_hostd_using_subcommand {sub}\" -l {flag} ");
        assert!(fish.contains(&line), "no `{line}` in the fish completion");
    }
}

#[test]
fn hostd_writes_the_same_files_it_was_tested_with() {
    // The hidden subcommands the README tells packagers to run.
    let out = tempfile::tempdir().expect("tempdir");
    let hostd = env!("CARGO_BIN_EXE_hostd");
    for (what, sub) in [("completions", "completions"), ("man", "man")] {
        let dir = out.path().join(sub);
        let st = std::process::Command::new(hostd)
            .args([what, "--out"])
            .arg(&dir)
            .status()
            .expect("run hostd");
        assert!(st.success(), "hostd {what} --out: {st}");
    }
    if let Err(e) = ops::clidoc::check_dist(&Cli::command(), out.path(), "hostd") {
        panic!("{e}");
    }
    let bash = std::process::Command::new(hostd)
        .args(["completions", "bash"])
        .output()
        .expect("run hostd");
    assert!(bash.status.success());
    assert_eq!(
        bash.stdout,
        std::fs::read(dist().join("completions/hostd.bash")).expect("committed")
    );
    let man = std::process::Command::new(hostd)
        .arg("man")
        .output()
        .expect("run hostd");
    assert!(man.status.success());
    assert_eq!(
        man.stdout,
        std::fs::read(dist().join("man/hostd.1")).expect("committed")
    );
}

const UNITS: [&str; 2] = ["hostd.service", "hostd-agent.service"];

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    for name in UNITS {
        let unit = Unit::load(&dist().join(name));
        if let Err(e) = unit.verify(
            "/usr/local/bin/hostd",
            Path::new(env!("CARGO_BIN_EXE_hostd")),
        ) {
            panic!("{e}");
        }
    }
}

#[test]
fn systemd_units_are_hardened_but_let_wasmtime_map_code() {
    for name in UNITS {
        let unit = Unit::load(&dist().join(name));
        let problems = unit.hardening_problems();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        // Cranelift's code is written, then made executable: W^X would
        // stop every app (and every compiled log filter).
        assert_eq!(
            unit.get("Service", "MemoryDenyWriteExecute"),
            None,
            "{name}"
        );
        for page in unit.man_pages() {
            assert!(
                dist().join("man").join(&page).is_file(),
                "{name}: Documentation= names {page}, which hostd/dist/man does not have"
            );
        }
    }
}

#[test]
fn systemd_units_run_hostd_with_flags_it_accepts() {
    let example = dist().join("hostd.env");
    // A minimal settings file: what the agent requires, nothing optional.
    let tmp = tempfile::tempdir().expect("tempdir");
    let minimal = tmp.path().join("hostd.env");
    std::fs::write(&minimal, "CRANEFLEET_GATEWAY=gw.example.com\n").expect("write");
    for (name, sub) in [("hostd.service", "serve"), ("hostd-agent.service", "agent")] {
        let unit = Unit::load(&dist().join(name));
        for env in [&example, &minimal] {
            let words = unit.exec_start(&[env]);
            assert_eq!(words[0], "/usr/local/bin/hostd", "{name}");
            let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| {
                panic!(
                    "{name} with {}: hostd refuses `{}`:\n{e}",
                    env.display(),
                    words.join(" ")
                )
            });
            match (&cli.command, sub) {
                (HostdCommand::Serve(_), "serve") => {}
                (HostdCommand::Agent(a), "agent") => {
                    let gw = if env == &example {
                        "gw.example.com:2222"
                    } else {
                        "gw.example.com"
                    };
                    assert_eq!(cli.gateway.as_deref(), Some(gw), "{name}");
                    // The host key lives with the rest of the state.
                    assert!(
                        a.host_key.starts_with("/var/lib/cranefleet"),
                        "{:?}",
                        a.host_key
                    );
                }
                (other, _) => panic!("{name} runs {other:?}, not `hostd {sub}`"),
            }
            // --data is the unit's StateDirectory=, which systemd creates
            // for the service's user.
            let state = unit
                .get("Service", "StateDirectory")
                .expect("StateDirectory=");
            assert_eq!(
                cli.data,
                Some(PathBuf::from("/var/lib").join(state)),
                "{name}: --data is not /var/lib/{state}"
            );
        }
    }
}
