//! The operations layer: what a CLI.md command *is*, once, for every front
//! door.
//!
//! A command is parsed once, where its text arrives (the `hostd` command
//! line, an SSH exec line, the console's `:` prompt), into a typed
//! [`CommandLine`]. From there every door calls [`serve`], the one
//! dispatcher, with the [`Operations`] of where it runs: a single host
//! (`hostd`) or the fleet (the gateway). What a command answers is a typed
//! [`Reply`], handed to a [`Sink`]: the [`print::Printer`] renders it as
//! CLI.md's text or `--json` at a door that prints, and the gateway's own
//! console takes the typed value as it is.
//!
//! ```text
//!  text ──parse──▶ CommandLine ──serve──▶ Operations (Host | Fleet)
//!                                   │
//!                                   └──▶ Reply ──▶ Sink (Printer | console)
//! ```
//!
//! One file per verb under [`cmd`] holds that verb's wording and the checks
//! a host and the fleet share. The crate links neither wasmtime nor russh:
//! the console depends on it and never runs an app.

pub mod clidoc;
pub mod cmd;
pub mod error;
pub mod print;
pub mod process;
pub mod progress;
pub mod reply;
pub mod scope;
pub mod serve;
pub mod wire;

pub use error::{ErrorKind, OpError};
pub use progress::{Progress, ProgressTx, Step};
pub use reply::{Gone, LogChunk, LogFormat, Reply, RmOutcome, Sink};
pub use schema::command::{Command, CommandLine};
pub use scope::Scope;
pub use serve::{Hangup, Operations, serve};

/// Parses `argv` (the words typed after `hostd`, or after `ssh gw`) into a
/// command line. `help` alone means `--help`. Help is answered as
/// [`ErrorKind::Help`] (printed on stdout, exit 0), a grammar mistake as
/// [`ErrorKind::Syntax`] (clap's text on stderr, exit 2).
pub fn parse_argv(argv: &[String]) -> Result<CommandLine, OpError> {
    let help = argv.first().map(String::as_str) == Some("help");
    let argv: &[String] = if help { &[] } else { argv };
    let parsed = if help {
        CommandLine::parse_argv(["--help"])
    } else {
        CommandLine::parse_argv(argv)
    };
    parsed.map_err(|e| {
        let text = e.render().to_string();
        // `--` alone: nothing to run, as an empty line.
        if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            return OpError::new(ErrorKind::Usage, "no command given; try `ps` or `help`");
        }
        if e.use_stderr() {
            OpError::new(ErrorKind::Syntax, text)
        } else {
            OpError::new(ErrorKind::Help, text)
        }
    })
}

/// Splits an SSH exec line (or a `:` prompt line) into words and parses
/// them: the one parse of text that arrives as one string.
pub fn parse_line(line: &str) -> Result<CommandLine, OpError> {
    let words =
        schema::command::split_command_line(line).map_err(|e| OpError::new(ErrorKind::Usage, e))?;
    if words.is_empty() {
        return Err(OpError::new(
            ErrorKind::Usage,
            "no command given; try `ps` or `help`",
        ));
    }
    parse_argv(&rejoin_where(words))
}

/// `ssh gw logs api --where 'stream == stderr'` arrives as one line with the
/// local shell's quotes gone (`… --where stream == stderr`): the words
/// after `--where`, up to the next flag, are its one expression again.
fn rejoin_where(words: Vec<String>) -> Vec<String> {
    let Some(at) = words.iter().position(|w| w == "--where") else {
        return words;
    };
    let end = words[at + 1..]
        .iter()
        // A flag (`--json`, `-f`) ends it; `-1` is a number.
        .position(|w| {
            w.strip_prefix('-')
                .and_then(|r| r.chars().next())
                .is_some_and(|c| c == '-' || c.is_ascii_alphabetic())
        })
        .map_or(words.len(), |i| at + 1 + i);
    if end <= at + 2 {
        return words;
    }
    let mut out: Vec<String> = words[..=at].to_vec();
    out.push(words[at + 1..end].join(" "));
    out.extend_from_slice(&words[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_where_expression_split_by_ssh_is_one_expression_again() {
        let cl = parse_line("logs api --where stream == stderr -f").unwrap();
        let schema::command::Command::Logs(l) = cl.command else {
            panic!()
        };
        assert_eq!(l.filter.as_deref(), Some("stream == stderr"));
        assert!(l.follow);
        // Quoted as one word already: unchanged.
        let cl = parse_line("logs api --where 'status >= 500'").unwrap();
        let schema::command::Command::Logs(l) = cl.command else {
            panic!()
        };
        assert_eq!(l.filter.as_deref(), Some("status >= 500"));
    }

    #[test]
    fn a_line_is_parsed_once_into_its_command() {
        let cl = parse_line("rollback api --to v2 --json").unwrap();
        assert!(cl.json);
        match cl.command {
            Command::Rollback(a) => {
                assert_eq!(a.app, "api");
                assert_eq!(a.to, Some(schema::Version(2)));
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn help_is_not_an_error_and_a_typo_is_a_usage_error() {
        let h = parse_line("help").unwrap_err();
        assert_eq!((h.kind, h.exit_code()), (ErrorKind::Help, 0));
        assert!(h.message.contains("deploy"));
        let e = parse_line("rollbak api").unwrap_err();
        assert_eq!((e.kind, e.exit_code()), (ErrorKind::Syntax, 2));
        let e = parse_line("   ").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message.contains("no command given"));
        let e = parse_line("logs 'api").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = parse_line("--").unwrap_err();
        assert_eq!((e.kind, e.exit_code()), (ErrorKind::Usage, 2));
    }
}
