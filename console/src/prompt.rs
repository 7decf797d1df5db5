//! The `:` prompt: the meaning of what was typed (the editor is `line`).
//!
//! The prompt accepts CLI.md's grammar and parses it with schema's
//! [`CommandLine`], the same parser the gateway and `hostd` use, so
//! `:scale api 4` means exactly what `hostd scale api 4` means. Read-only
//! commands navigate (`:logs api` opens the logs view); commands that change
//! the fleet become a [`Pending`] confirmation.

use schema::PsRow;
use schema::command::{Command, CommandLine};

use crate::ops::Pending;
use crate::session::{Front, Role, read_only_message};

/// The command words the prompt knows, for completion.
pub const COMMANDS: &[&str] = &[
    "audit", "deploy", "hosts", "logs", "ps", "releases", "rm", "rollback", "scale",
];

/// What a submitted prompt line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// `:events`: the events feed.
    Events,
    /// `:ps`, `:hosts`: the overview.
    Overview,
    /// `:ps APP`, `:releases APP`: the app's releases and instances.
    OpenApp(String),
    /// `:logs APP [--where EXPR]`: the logs view.
    Logs { app: String, filter: Option<String> },
    /// `:audit`.
    Audit,
    /// A command that changes the fleet, to be confirmed first.
    Confirm(Pending),
    /// A read that runs at once, its answer shown as the outcome
    /// (`:config APP`, `:kv APP get KEY`).
    Start(Pending),
    /// Understood, but not allowed here; the message says why.
    Refuse(String),
    /// Not understood; the message is the parser's.
    Usage(String),
    /// `:help`: the key list.
    Help,
    /// `:q`, `:quit`.
    Quit,
    /// Nothing typed.
    Nothing,
}

/// What the prompt needs to know about where it runs.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub role: Role,
    pub front: Front,
    /// The apps as last pushed: the confirmation names the active release
    /// and the current replicas ("scale api from 2 to 4").
    pub apps: &'a [PsRow],
    /// Apps this console deployed that a snapshot may not list yet.
    pub deployed: &'a [String],
}

impl Context<'_> {
    fn app(&self, name: &str) -> Option<&PsRow> {
        self.apps.iter().find(|r| r.app == name)
    }
}

/// A clap error on one line: what is wrong (and clap's tip), without the
/// usage block that would not fit a status line. For `--help`, the usage.
fn usage_message(e: &clap::Error) -> String {
    let text = e.to_string();
    if e.kind() == clap::error::ErrorKind::DisplayHelp {
        let usage = text
            .lines()
            .find(|l| l.starts_with("Usage:"))
            .unwrap_or("Usage: see ?");
        return usage.replace("cranefleet ", "");
    }
    let parts: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let joined = parts.join(" ");
    let joined = joined.trim_start_matches("error: ");
    if joined.is_empty() {
        "invalid command".into()
    } else {
        joined.to_string()
    }
}

/// Parses a prompt line with the CLI.md grammar and decides what it means
/// in this console.
pub fn interpret(line: &str, cx: &Context<'_>) -> Intent {
    let mut words = match schema::command::split_command_line(line) {
        Ok(w) => w,
        Err(e) => return Intent::Usage(e),
    };
    if words.is_empty() {
        return Intent::Nothing;
    }
    // `:hostd rollback x` and `:ssh … rollback x` habits: drop a leading program name.
    if words[0] == "hostd" {
        words.remove(0);
    }
    match words.first().map(String::as_str) {
        Some("q" | "quit" | "exit") => return Intent::Quit,
        Some("help") => return Intent::Help,
        None => return Intent::Nothing,
        _ => {}
    }
    let parsed = match CommandLine::parse_argv(&words) {
        Ok(p) => p,
        // `:scale api -1`: clap would suggest `-- -1`; the answer is that
        // replicas are a count.
        Err(_)
            if words.first().map(String::as_str) == Some("scale")
                && words
                    .iter()
                    .skip(1)
                    .any(|w| w.starts_with('-') && w[1..].parse::<i64>().is_ok()) =>
        {
            return Intent::Usage("replicas are a count: 0 (stopped) or more".into());
        }
        Err(e) => return Intent::Usage(usage_message(&e)),
    };
    let cmd = parsed.command;
    if !cmd.is_read_only() && !cx.role.may_change() {
        return Intent::Refuse(read_only_message(cmd.name()));
    }
    // An app the fleet does not have is refused here, before a view opens
    // or a question is asked about it.
    if let Some(app) = cmd.app()
        && !matches!(cmd, Command::Deploy(_))
        && !cx.apps.is_empty()
        && cx.app(app).is_none()
        && !cx.deployed.iter().any(|d| d == app)
    {
        return Intent::Usage(format!("unknown app {app:?}"));
    }
    match cmd {
        Command::Ps(a) => a.app.map(Intent::OpenApp).unwrap_or(Intent::Overview),
        Command::Hosts | Command::Watch => Intent::Overview,
        Command::Releases(a) => Intent::OpenApp(a.app),
        Command::Audit(_) => Intent::Audit,
        Command::Events(_) => Intent::Events,
        Command::Logs(a) => Intent::Logs {
            app: a.app,
            filter: a.filter,
        },
        Command::Rollback(a) => {
            let from = cx.app(&a.app).and_then(|r| r.release);
            Intent::Confirm(Pending::Rollback {
                app: a.app,
                to: a.to,
                from,
                target: None,
            })
        }
        Command::Scale(a) => {
            let from = cx.app(&a.app).map(|r| r.replicas);
            Intent::Confirm(Pending::Scale {
                app: a.app,
                from,
                to: a.replicas,
            })
        }
        Command::Rm(a) => Intent::Confirm(Pending::Rm { app: a.app }),
        Command::Restart(a) => match cx.app(&a.app) {
            // Checked before asking: a question about nothing is noise.
            None => Intent::Usage(format!("unknown app {:?}", a.app)),
            Some(r) => Intent::Confirm(Pending::Restart {
                release: r.release,
                crashloop: r.state == schema::RunState::Crashloop,
                app: a.app,
            }),
        },
        Command::Promote(ref a) | Command::Abort(ref a)
            if cx.app(&a.app).is_some_and(|r| r.canary.is_none()) =>
        {
            Intent::Usage(format!("{} has no live canary to {}", a.app, cmd.name()))
        }
        Command::Config(_)
        | Command::Kv(_)
        | Command::Info(_)
        | Command::Promote(_)
        | Command::Abort(_) => {
            let changes = !cmd.is_read_only();
            let p = Pending::Capability {
                app: cmd.app().unwrap_or_default().to_string(),
                command: Box::new(cmd),
            };
            if changes {
                Intent::Confirm(p)
            } else {
                Intent::Start(p)
            }
        }
        Command::Deploy(d) => {
            if cx.front == Front::Remote {
                return Intent::Refuse(
                    "deploy reads a file on this machine, and this console runs on the gateway: \
                     from your own machine run `ssh GATEWAY deploy APP - < app.wasm` or `hostd deploy APP FILE`"
                        .into(),
                );
            }
            if d.file.as_deref() == Some("-") {
                return Intent::Refuse(
                    "the console has no stdin to deploy from: give a path to a .wasm".into(),
                );
            }
            let Some(app) = d.app.clone() else {
                return Intent::Usage("deploy needs APP and FILE (or --manifest FILE)".into());
            };
            if d.file.is_none() && d.manifest.is_none() {
                return Intent::Usage(format!("deploy {app} needs a FILE: the path of a .wasm"));
            }
            // Checked before asking: a question about a file that is not
            // there is noise.
            if let Some(path) = d.file.as_deref().or(d.manifest.as_deref())
                && !std::path::Path::new(path).is_file()
            {
                return Intent::Usage(format!("no such file: {path}"));
            }
            let source = d.file.clone().or(d.manifest.clone()).unwrap_or_default();
            Intent::Confirm(Pending::Deploy {
                replaces: cx.app(&app).is_some_and(|r| r.release.is_some()),
                app,
                source,
                request: d,
            })
        }
    }
}
