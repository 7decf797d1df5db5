//! The `console` binary: the local front door of the cranefleet console.
//!
//! `console --gateway [user@]host[:port]` draws the console in this terminal
//! and runs what it asks for on the gateway over SSH; `console demo` first
//! starts a fleet on loopback to open it on. The hidden `preview` runs the
//! real UI against a synthetic fleet (no gateway).

mod demo;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser};
use console::cli::{Cli, Cmd};
use console::driver::{self, Executor, Output};
use console::ssh::{self, HostKeyPolicy, SshExecutor, Target};
use console::{App, Event, Front, Role, local, preview};
use schema::WatchSnapshot;
use tokio::sync::mpsc;

fn color(mono: bool) -> bool {
    !mono
        && local::term_has_color(
            std::env::var("TERM").ok().as_deref(),
            std::env::var_os("NO_COLOR").is_some(),
        )
}

/// Connects to the gateway as the flags say.
async fn connect(cli: &Cli, gateway: &str) -> anyhow::Result<SshExecutor> {
    let targets = Target::parse_list(gateway, &ssh::local_user())?;
    let identity = cli
        .identity
        .clone()
        .unwrap_or_else(|| ssh::ssh_dir().join("id_ed25519"));
    let key = ssh::load_key(&identity)?;
    let known = HostKeyPolicy::KnownHosts {
        path: ssh::ssh_dir().join("known_hosts"),
        accept_new: cli.accept_new_host_key,
    };
    if let [target] = &targets[..] {
        return Ok(SshExecutor::connect(target.clone(), key, known).await?);
    }
    // The first gateway of the list that answers.
    let mut failures = Vec::new();
    for target in targets {
        match SshExecutor::connect(target.clone(), key.clone(), known.clone()).await {
            Ok(e) => return Ok(e),
            Err(e) => failures.push(format!("{}: {e}", target.addr())),
        }
    }
    anyhow::bail!("no gateway answered: {}", failures.join("; "))
}

/// Starts `watch --json` and reads its first line, which says what this
/// key may do: the console starts read-only for a viewer before it draws.
async fn first_snapshot(
    exec: &SshExecutor,
) -> anyhow::Result<(WatchSnapshot, mpsc::Receiver<Output>)> {
    let mut rx = exec.start(driver::request(ops::Command::Watch), None);
    loop {
        match rx.recv().await {
            // Anything after the first snapshot is dropped: the next one
            // comes within seconds.
            Some(Output::Reply(ops::Reply::Snapshot(s))) => return Ok((s, rx)),
            Some(Output::Reply(_)) => {}
            Some(Output::Done(Err(e))) if e.kind == ops::ErrorKind::Gone => bail!("{}", e.message),
            Some(Output::Done(Err(e))) => bail!(
                "the gateway refused `watch` (exit {}): {}; is it a cranefleet gateway new enough for the console?",
                e.exit_code(),
                e.message
            ),
            Some(Output::Done(Ok(()))) | None => {
                bail!("the gateway closed `watch` without an answer")
            }
        }
    }
}

/// Runs the console in this terminal on the gateway `exec` talks to.
/// Opens the console on the fleet `exec` reaches; `notes` head its `?`
/// screen (the demo's ssh commands and keys).
pub(crate) async fn open_console(
    exec: SshExecutor,
    color: bool,
    notes: Vec<String>,
) -> anyhow::Result<()> {
    let (first, watch) = first_snapshot(&exec).await?;
    let role = match first.role {
        Some(Role::Operator) => Role::Operator,
        _ => Role::Viewer,
    };
    let label = exec.target().to_string();
    let mut app = App::new(role, Front::Local)
        .with_color(color)
        .with_notes(notes);
    let (events_tx, events_rx) = mpsc::channel(1024);
    let (actions_tx, actions_rx) = mpsc::channel(64);
    events_tx
        .send(Event::Connected {
            gateway: label.clone(),
        })
        .await?;
    for ev in driver::snapshot_events(first) {
        events_tx.send(ev).await?;
    }
    let opts = driver::Options {
        local_files: true,
        gateway: label,
    };
    let exec: Arc<dyn Executor> = Arc::new(exec);
    let driver = tokio::spawn(driver::drive(
        exec,
        opts,
        events_tx.clone(),
        actions_rx,
        Some(watch),
    ));
    local::run_local(&mut app, events_tx, events_rx, actions_tx)
        .await
        .context("the console's terminal")?;
    driver.abort();
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let color = color(cli.mono);
    match cli.command {
        Some(Cmd::Demo(ref args)) => demo::execute(args.clone(), color).await,
        Some(Cmd::Preview {
            viewer,
            remote,
            rate,
            preload,
        }) => {
            let role = if viewer { Role::Viewer } else { Role::Operator };
            let front = if remote { Front::Remote } else { Front::Local };
            let mut app = App::new(role, front).with_color(color);
            let (events_tx, events_rx) = mpsc::channel(1024);
            let (actions_tx, actions_rx) = mpsc::channel(64);
            let opts = preview::Options { rate, preload };
            let driver = tokio::spawn(preview::drive(events_tx.clone(), actions_rx, opts));
            local::run_local(&mut app, events_tx, events_rx, actions_tx)
                .await
                .context("console preview")?;
            driver.abort();
            Ok(())
        }
        Some(Cmd::Completions(ref args)) => {
            ops::clidoc::run_completions(&Cli::command(), args)?;
            Ok(())
        }
        Some(Cmd::Man(ref args)) => {
            ops::clidoc::run_man(&Cli::command(), args)?;
            Ok(())
        }
        None => {
            let Some(gateway) = cli.gateway.clone() else {
                bail!(
                    "which gateway? `console --gateway USER@HOST[:PORT]` (or CRANEFLEET_GATEWAY); \
                     `console demo` starts a fleet on this machine to try it"
                );
            };
            let exec = connect(&cli, &gateway).await?;
            open_console(exec, color, Vec::new()).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match ops::process::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(run(cli));
    // Tasks still holding SSH channels are dropped, not waited for.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
