//! `hostd`'s command line: the daemons, `precompile`, and the fleet
//! commands of CLI.md (flattened from [`schema::command::Command`], the
//! grammar every front door shares). In the library so that its tests and
//! the generated completions and man pages see exactly what `main` parses.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use schema::command::Command;

use crate::cmd::agent::AgentArgs;
use crate::cmd::demo::DemoArgs;
use crate::cmd::precompile::PrecompileArgs;
use crate::cmd::serve::ServeArgs;

/// Runs Wasm apps on this server, and drives a cranefleet host or fleet.
///
/// Commands go to the local daemon (`--local`, over DATA/hostd.sock) or,
/// with `--gateway`, to a fleet's gateway over SSH.
#[derive(Debug, Parser)]
#[command(name = "hostd", version, max_term_width = 100)]
pub struct Cli {
    /// State directory (default ~/.local/share/cranefleet).
    #[arg(long, global = true, env = "CRANEFLEET_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Talk to the daemon on this machine over its Unix socket.
    #[arg(long, global = true)]
    pub local: bool,
    /// Talk to a gateway over SSH: [user@]host[:port], or a comma-separated
    /// list of gateways tried in turn (the first that answers).
    #[arg(long, global = true, env = "CRANEFLEET_GATEWAY", value_name = "ADDR")]
    pub gateway: Option<String>,
    /// SSH key for --gateway (default ~/.ssh/id_ed25519).
    #[arg(long, global = true, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Record the gateway's host key in ~/.ssh/known_hosts the first time.
    #[arg(long, global = true)]
    pub accept_new_host_key: bool,
    /// One JSON document (or one JSON object per line for streams).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: HostdCommand,
}

#[derive(Debug, Subcommand)]
pub enum HostdCommand {
    /// Run a stand-alone host with its own control socket.
    Serve(ServeArgs),
    /// Run a host that joins a fleet through an SSH tunnel to a gateway.
    Agent(AgentArgs),
    /// Compile a .wasm ahead of time for x86_64 or aarch64.
    Precompile(PrecompileArgs),
    /// A host with the sample apps deployed, in a temp dir, until Ctrl-C.
    Demo(DemoArgs),
    /// Print a shell completion script (bash, zsh, fish), or write them all with --out.
    #[command(hide = true)]
    Completions(ops::clidoc::CompletionsArgs),
    /// Print hostd's man page (roff), or write one page per command with --out.
    #[command(hide = true)]
    Man(ops::clidoc::ManArgs),
    #[command(flatten)]
    Fleet(Command),
}
