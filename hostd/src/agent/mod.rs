//! `hostd agent`: a host that joins a fleet through an SSH tunnel.
//!
//! The agent dials out (so hosts behind NAT can join), pins the gateway's
//! host key on first contact, authenticates with its own host key, opens the
//! tunnel subsystem, says hello (what it is and runs), and then serves the
//! gateway's requests while sending a heartbeat every few seconds. When the
//! tunnel drops it reconnects with jittered exponential backoff; its apps
//! keep running meanwhile, and its control socket keeps working, so
//! `hostd rollback --local` is available while the gateway is away.
//!
//! - this file: the configuration, the errors, the reconnect loop and the
//!   frame sender every task of a session shares;
//! - `session.rs`: one tunnel, from dialling to its close: the handshake,
//!   the host's reports, and the gateway's requests handed to tasks;
//! - `fetch.rs`: staging a release, fetching its artifact in chunks first
//!   (resuming a cut fetch) when this host lacks it;
//! - `logs.rs`: logs requests, their batches paced by the gateway's credit.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use russh::keys::PrivateKey;
use schema::frame::FrameError;
use schema::tunnel::{self, HostMsg};
use tokio::sync::{mpsc, watch};

use crate::host::Host;
use net::until_true;
use ssh_client::{SshError, Target};

mod fetch;
mod logs;
mod session;

/// How the agent reaches its gateway.
#[derive(Clone)]
pub struct AgentConfig {
    /// The gateways to try, in order (`--gateway a,b`).
    pub targets: Vec<Target>,
    pub key: PrivateKey,
    /// Where the gateway's host key is pinned.
    pub pin: PathBuf,
    /// Whether the tunnel is up now (`--metrics` shows it).
    pub tunnel: Arc<TunnelState>,
}

/// The tunnel to the gateway as `--metrics` shows it.
#[derive(Debug)]
pub struct TunnelState {
    /// The gateway as configured (`--gateway`).
    pub gateway: String,
    up: AtomicBool,
    joins: AtomicU64,
}

impl TunnelState {
    pub fn new(gateway: &str) -> Arc<TunnelState> {
        Arc::new(TunnelState {
            gateway: gateway.to_string(),
            up: AtomicBool::new(false),
            joins: AtomicU64::new(0),
        })
    }

    /// Up: the gateway welcomed this host on the tunnel, which is open.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Times the gateway welcomed this host since the agent started.
    pub fn joins(&self) -> u64 {
        self.joins.load(Ordering::Relaxed)
    }

    fn joined(&self) {
        self.joins.fetch_add(1, Ordering::Relaxed);
        self.up.store(true, Ordering::Relaxed);
    }

    fn down(&self) {
        self.up.store(false, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("the gateway refused this host: {0}")]
    Refused(String),
    #[error("tunnel protocol error: {0}")]
    Protocol(String),
    #[error("the tunnel closed")]
    Closed,
}

impl From<crate::connection::ConnError> for TunnelError {
    fn from(e: crate::connection::ConnError) -> Self {
        TunnelError::Protocol(e.to_string())
    }
}

impl From<FrameError> for TunnelError {
    fn from(e: FrameError) -> Self {
        TunnelError::Protocol(e.to_string())
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The longest wait between tries while only a standby answers.
const STANDBY_RETRY: Duration = Duration::from_secs(1);
/// How long after a standby answered the agent keeps retrying that often.
const FAILOVER_WINDOW: Duration = Duration::from_secs(60);

/// Keeps a tunnel to the gateway until `shutdown`.
pub async fn run(host: Arc<Host>, cfg: AgentConfig, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = BACKOFF_MIN;
    // When a standby last answered: a failover is under way, and until a
    // minute after that every failure (a gateway too busy to take the
    // call included) is retried within a second.
    let mut standby_seen: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            r = session::session(&host, &cfg) => r,
            _ = until_true(&mut shutdown) => return,
        };
        cfg.tunnel.down();
        if started.elapsed() > Duration::from_secs(30) {
            backoff = BACKOFF_MIN;
        }
        match result {
            Ok(()) => {
                tracing::warn!(gateway = %cfg.tunnel.gateway, "the gateway closed the tunnel")
            }
            Err(TunnelError::Ssh(SshError::HostKey(why))) => {
                tracing::error!("{why}");
                backoff = BACKOFF_MAX;
            }
            Err(TunnelError::Ssh(e @ SshError::Standby { .. })) => {
                // A standby took the call: the active gateway is dying or
                // just died, and a standby takes over within a lease's
                // length. Retry often meanwhile.
                tracing::warn!(error = %e, "no active gateway yet; apps keep running");
                standby_seen = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(gateway = %cfg.tunnel.gateway, error = %e, "tunnel down; apps keep running")
            }
        }
        if standby_seen.is_some_and(|t| t.elapsed() < FAILOVER_WINDOW) {
            backoff = backoff.min(STANDBY_RETRY);
        }
        // Jitter: hosts that lost the gateway together do not return together.
        let jitter = Duration::from_millis(
            u64::from(std::process::id() ^ started.elapsed().subsec_nanos())
                % (backoff.as_millis() as u64 / 2 + 1),
        );
        tokio::select! {
            _ = tokio::time::sleep(backoff + jitter) => {}
            _ = until_true(&mut shutdown) => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Frames to the gateway go through one writer task.
#[derive(Clone)]
struct Tx(mpsc::Sender<Vec<u8>>);

impl Tx {
    async fn send(&self, m: &HostMsg) -> Result<(), TunnelError> {
        let mut buf = Vec::new();
        tunnel::encode_msg(m, &mut buf);
        self.0.send(buf).await.map_err(|_| TunnelError::Closed)
    }

    /// Sends a frame already encoded (a batch of log records).
    async fn send_raw(&self, frame: Vec<u8>) -> Result<(), TunnelError> {
        self.0.send(frame).await.map_err(|_| TunnelError::Closed)
    }

    async fn reply(&self, id: u64, r: Result<Option<u64>, String>) {
        self.reply_message(id, r.map(|c| (c, String::new()))).await
    }

    /// A reply whose success carries a message (a `kv` answer's JSON).
    async fn reply_message(&self, id: u64, r: Result<(Option<u64>, String), String>) {
        let m = match r {
            Ok((compile_ms, message)) => HostMsg::Reply {
                id,
                ok: true,
                message,
                compile_ms,
            },
            Err(message) => HostMsg::Reply {
                id,
                ok: false,
                message,
                compile_ms: None,
            },
        };
        let _ = self.send(&m).await;
    }
}
