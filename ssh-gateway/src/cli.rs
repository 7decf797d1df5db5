//! `ssh-gateway`'s command line. In the library so that its tests and the
//! generated completions and man pages see exactly what `main` parses.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::keys::Role;

/// Serves a cranefleet fleet over SSH: hosts' tunnels, operators' commands
/// and the console (`ssh -t`); and manages the keys that may connect.
#[derive(Debug, Parser)]
#[command(name = "ssh-gateway", version, max_term_width = 100)]
pub struct Cli {
    /// State directory (default ~/.local/share/cranefleet-gateway).
    #[arg(
        long,
        global = true,
        env = "CRANEFLEET_GATEWAY_DATA",
        value_name = "DIR"
    )]
    pub data: Option<PathBuf>,
    /// Where the gateway keeps its state: a SQLite file (default
    /// DATA/gateway.db), or a PostgreSQL database
    /// (postgres://user:password@host:port/dbname) that several gateways
    /// share, one active and the others standby.
    #[arg(
        long,
        global = true,
        env = "CRANEFLEET_GATEWAY_DB",
        value_name = "PATH|URL"
    )]
    pub db: Option<String>,
    /// JSON output (keys list).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Serve the fleet over SSH.
    Serve {
        /// Address and port to accept SSH connections on (0.0.0.0:2222 for
        /// every interface).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2222")]
        listen: String,
        /// The gateway's SSH host key, generated there on first start
        /// (default DATA/ssh_host_ed25519_key).
        #[arg(long, value_name = "FILE")]
        host_key: Option<PathBuf>,
        /// This gateway's name, as hosts and audit entries show it (default
        /// the hostname). Gateways sharing a PostgreSQL database serve one
        /// fleet: give them the same name.
        #[arg(long)]
        name: Option<String>,
        /// Where hosts and operators reach this gateway (HOST:PORT), as a
        /// standby names it when this one is active (default the --listen
        /// address, or the hostname and its port when that is 0.0.0.0).
        /// With PostgreSQL it is also this gateway's name in the lease.
        #[arg(long, value_name = "HOST:PORT")]
        advertise: Option<String>,
        /// With PostgreSQL: seconds the active gateway's lease lasts unless
        /// renewed (every fifth of it). A standby takes over within about
        /// this long after the active one dies.
        #[arg(long, value_name = "SECS", default_value_t = crate::lease::DEFAULT_LEASE_SECS,
              value_parser = clap::value_parser!(u64).range(3..=300))]
        lease_secs: u64,
        /// Releases of each app whose artifacts the gateway keeps (the
        /// active one always is); older releases stay in the history.
        #[arg(long, value_name = "N", default_value_t = crate::fleet::DEFAULT_KEEP_RELEASES as u64,
              value_parser = clap::value_parser!(u64).range(1..10_000))]
        keep_releases: u64,
        /// Seconds without a heartbeat after which a host is down and its
        /// replicas move; a host up this long may receive moved replicas.
        #[arg(long, value_name = "SECS", default_value_t = schema::tunnel::DOWN_AFTER_SECS,
              value_parser = clap::value_parser!(u64).range(3..=3600))]
        down_after_s: u64,
        /// Seconds a connection may take to authenticate before it is closed
        /// (OpenSSH's LoginGraceTime).
        #[arg(long, value_name = "SECS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(1..=600))]
        login_grace_time: u64,
        /// Connections authenticating at once; more are closed at once
        /// (OpenSSH's MaxStartups).
        #[arg(long, value_name = "N", default_value_t = 128,
              value_parser = clap::value_parser!(u64).range(1..=65_536))]
        max_startups: u64,
        /// Connections authenticating at once from one address (IPv6: one /64).
        #[arg(long, value_name = "N", default_value_t = 32,
              value_parser = clap::value_parser!(u64).range(1..=65_536))]
        per_source_max_startups: u64,
        /// The audit log keeps at most this many entries; the oldest
        /// refusals go first, an operator's action never.
        #[arg(long, value_name = "N", default_value_t = 1_000_000,
              value_parser = clap::value_parser!(u64).range(1000..))]
        audit_keep: u64,
        /// Refusals before login are counted and written to the audit log
        /// this often (seconds), one entry per source and attempt.
        #[arg(long, value_name = "S", default_value_t = 60,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        audit_refusals_every_s: u64,
        /// The key that seals apps' config secrets at rest, created 0600 on
        /// first start (default DATA/secrets.key). Every gateway of a fleet
        /// is given the same file; keep a copy apart from the database.
        #[arg(long, value_name = "FILE")]
        secrets_key: Option<PathBuf>,
        /// The fleet-wide store of apps' wasi:keyvalue (redis://…), for apps
        /// whose manifest names none (default: each host's own SQLite store).
        #[arg(long, value_name = "URL")]
        keyvalue_url: Option<String>,
        /// Serve Prometheus metrics at http://ADDR/metrics (default: off).
        #[arg(long, value_name = "ADDR", value_parser = parse_metrics)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Who may connect.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Print a shell completion script (bash, zsh, fish), or write them all with --out.
    #[command(hide = true)]
    Completions(ops::clidoc::CompletionsArgs),
    /// Print ssh-gateway's man page (roff), or write one page per command with --out.
    #[command(hide = true)]
    Man(ops::clidoc::ManArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Enroll a public key (an OpenSSH .pub file, or - for stdin).
    Add {
        /// What the key may do: host (a hostd agent's tunnel), operator
        /// (every command) or viewer (read commands only).
        #[arg(long)]
        role: Role,
        /// The public key: an OpenSSH .pub file, or - for stdin.
        #[arg(value_name = "PUBKEY_FILE")]
        file: String,
        /// Name shown in the audit log; a host key's name is the host's
        /// (default: the key's comment, else the file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Every enrolled key.
    List,
    /// Remove a key; its holder can no longer connect, and its open
    /// connections (a multiplexed ssh, a console, a host's tunnel) close.
    Rm {
        /// The key's name, as `keys list` shows it.
        name: String,
    },
    /// Change a key's role; its open connections close, so what it does
    /// next is what the new role allows.
    Role {
        /// The key's name, as `keys list` shows it.
        name: String,
        /// The new role: host, operator or viewer.
        role: Role,
    },
}

/// `--metrics ADDR`: an address and port to listen on, nothing else (the
/// endpoint is unauthenticated: it listens exactly where it is told).
fn parse_metrics(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an address like 127.0.0.1:9464 (an IP address and a port)")
    })
}
