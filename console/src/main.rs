//! The `console` binary: the local front door of the cranefleet console.
//!
//! The gateway connection (`console --gateway …`) and `console demo` are
//! wired by the gateway work; until then the binary only carries the hidden
//! `preview` subcommand, which runs the real UI against a synthetic fleet.

use anyhow::Context;
use clap::{Parser, Subcommand};
use console::{App, Front, Role, local, preview};
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
#[command(name = "console", about = "The cranefleet operations console")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the console locally against a synthetic fleet (nothing is real).
    #[command(hide = true)]
    Preview {
        /// Act as a viewer key: a read-only console.
        #[arg(long)]
        viewer: bool,
        /// Act as the gateway's console: no local files (deploy is refused).
        #[arg(long)]
        remote: bool,
        /// Draw without colour.
        #[arg(long)]
        mono: bool,
        /// Log lines per second of the followed app.
        #[arg(long, default_value_t = 20)]
        rate: u32,
        /// Lines sent when logs are opened.
        #[arg(long, default_value_t = 500)]
        preload: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let Some(Cmd::Preview {
        viewer,
        remote,
        mono,
        rate,
        preload,
    }) = cli.command
    else {
        eprintln!("console: connecting to a gateway (--gateway) is not wired yet");
        std::process::exit(2);
    };
    let role = if viewer { Role::Viewer } else { Role::Operator };
    let front = if remote { Front::Remote } else { Front::Local };
    let color = !mono
        && local::term_has_color(
            std::env::var("TERM").ok().as_deref(),
            std::env::var_os("NO_COLOR").is_some(),
        );
    let mut app = App::new(role, front).with_color(color);
    let (events_tx, events_rx) = mpsc::channel(1024);
    let (actions_tx, actions_rx) = mpsc::channel(64);
    let driver = tokio::spawn(preview::drive(
        events_tx.clone(),
        actions_rx,
        preview::Options { rate, preload },
    ));
    local::run_local(&mut app, events_tx, events_rx, actions_tx)
        .await
        .context("console preview")?;
    driver.abort();
    Ok(())
}
