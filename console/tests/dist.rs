//! What the console ships besides its binary, checked against the binary:
//! `--help` for every flag, and the completions and man pages generated
//! into `console/dist/`.

use std::path::Path;

use clap::CommandFactory;
use console::cli::Cli;

#[test]
fn help_says_what_every_flag_does_and_what_it_defaults_to() {
    let problems = ops::clidoc::help_problems(&Cli::command());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn completions_and_man_pages_in_dist_are_current() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    if let Err(e) = ops::clidoc::check_dist(&Cli::command(), &dist, "console") {
        panic!("{e}");
    }
}
