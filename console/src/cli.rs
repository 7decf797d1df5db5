//! The `console` binary's command line. In the library so that its tests
//! and the generated completions and man pages see exactly what `main`
//! parses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The cranefleet operations console: hosts, apps, releases, logs and audit
/// of a fleet, live; deploy, scale and roll back with a confirmation.
///
/// The same console is served by the gateway itself: `ssh -t -p 2222
/// USER@GATEWAY`.
#[derive(Debug, Parser)]
#[command(name = "console", version, max_term_width = 100)]
pub struct Cli {
    /// The gateway: [user@]host[:port] (default port 2222), or a
    /// comma-separated list tried in turn.
    #[arg(long, env = "CRANEFLEET_GATEWAY", value_name = "ADDR")]
    pub gateway: Option<String>,
    /// SSH key (default ~/.ssh/id_ed25519).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Record the gateway's host key in ~/.ssh/known_hosts the first time.
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Draw without colour (also when NO_COLOR is set).
    #[arg(long)]
    pub mono: bool,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    Demo(DemoArgs),
    /// Run the console locally against a synthetic fleet (nothing is real).
    #[command(hide = true)]
    Preview {
        /// Act as a viewer key: a read-only console.
        #[arg(long)]
        viewer: bool,
        /// Act as the gateway's console: no local files (deploy is refused).
        #[arg(long)]
        remote: bool,
        /// Log lines per second of the followed app.
        #[arg(long, default_value_t = 20)]
        rate: u32,
        /// Lines sent when logs are opened.
        #[arg(long, default_value_t = 500)]
        preload: usize,
    },
    /// Print a shell completion script (bash, zsh, fish), or write them all with --out.
    #[command(hide = true)]
    Completions(ops::clidoc::CompletionsArgs),
    /// Print console's man page (roff), or write one page per command with --out.
    #[command(hide = true)]
    Man(ops::clidoc::ManArgs),
}

/// Start a fleet on this machine and open the console on it.
///
/// A gateway and two hosts run on 127.0.0.1 in a temp directory DIR, with
/// the sample apps deployed: `hello` (http, 4 replicas), `ticker` (a worker,
/// 2 replicas) and `nightly` (a job every 15 s). Quitting the console (`q`)
/// stops them all and removes DIR.
///
/// While it runs, the same fleet answers plain OpenSSH; the demo prints the
/// exact PORT and DIR when it starts (or pass --port):
///
///   ssh -t -p PORT -i DIR/operator_key -o UserKnownHostsFile=DIR/known_hosts ops@127.0.0.1
///       this console, drawn by the gateway (`viewer_key` and viewer@: read-only)
///
///   ssh -p PORT -i DIR/operator_key -o UserKnownHostsFile=DIR/known_hosts ops@127.0.0.1 ps
///       one command (releases hello, rollback hello, logs ticker -f, …)
///
///   curl http://hello.localhost:HTTP/    the http app, on each host's ingress
#[derive(Debug, Clone, Args)]
#[command(verbatim_doc_comment)]
pub struct DemoArgs {
    /// The gateway's SSH port (default: a free one).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Keep the fleet running without opening the console, until Ctrl-C
    /// (for `ssh -t` into it).
    #[arg(long)]
    pub no_console: bool,
}
