//! What ssh-gateway ships besides its binary, checked against the binary:
//! `--help` for every flag, the completions and man pages generated into
//! `ssh-gateway/dist/`, and the systemd unit there.

#[path = "../../fixtures/units.rs"]
mod units;

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use ssh_gateway::cli::{Cli, Cmd};
use units::Unit;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist")
}

fn unit() -> Unit {
    Unit::load(&dist().join("ssh-gateway.service"))
}

#[test]
fn help_says_what_every_flag_does_and_what_it_defaults_to() {
    let problems = ops::clidoc::help_problems(&Cli::command());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let serve = Cli::command()
        .find_subcommand_mut("serve")
        .expect("serve")
        .render_long_help()
        .to_string();
    assert!(serve.contains("[default: 127.0.0.1:2222]"), "{serve}");
}

#[test]
fn completions_and_man_pages_in_dist_are_current() {
    if let Err(e) = ops::clidoc::check_dist(&Cli::command(), &dist(), "ssh-gateway") {
        panic!("{e}");
    }
    let bash = String::from_utf8(ops::clidoc::completion(
        &Cli::command(),
        ops::clidoc::Shell::Bash,
    ))
    .expect("utf-8");
    assert!(bash.contains("host operator viewer"), "roles complete");
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let built = Path::new(env!("CARGO_BIN_EXE_ssh-gateway"));
    if let Err(e) = unit().verify("/usr/local/bin/ssh-gateway", built) {
        panic!("{e}");
    }
}

#[test]
fn systemd_unit_is_hardened() {
    let unit = unit();
    let problems = unit.hardening_problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The gateway never runs or compiles code: no memory of it may be
    // writable and executable.
    assert_eq!(unit.get("Service", "MemoryDenyWriteExecute"), Some("yes"));
    for page in unit.man_pages() {
        assert!(
            dist().join("man").join(&page).is_file(),
            "Documentation= names {page}, which ssh-gateway/dist/man does not have"
        );
    }
}

#[test]
fn systemd_unit_runs_the_gateway_with_flags_it_accepts() {
    let unit = unit();
    let example = dist().join("ssh-gateway.env");
    // Without a settings file (it is optional), with the example's.
    for env in [vec![], vec![example.as_path()]] {
        let words = unit.exec_start(&env);
        assert_eq!(words[0], "/usr/local/bin/ssh-gateway");
        let cli = Cli::try_parse_from(&words)
            .unwrap_or_else(|e| panic!("ssh-gateway refuses `{}`:\n{e}", words.join(" ")));
        let Cmd::Serve { listen, .. } = &cli.command else {
            panic!("the unit runs {:?}, not `ssh-gateway serve`", cli.command)
        };
        // Hosts and operators reach it from other machines.
        assert_eq!(listen, "0.0.0.0:2222");
        let state = unit
            .get("Service", "StateDirectory")
            .expect("StateDirectory=");
        assert_eq!(cli.data, Some(PathBuf::from("/var/lib").join(state)));
    }
}
