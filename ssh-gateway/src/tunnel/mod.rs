//! The gateway's end of a host's tunnel: the handshake, requests with
//! replies and progress, artifact fetches, log streams and events.
//!
//! A tunnel is a connection plus handlers (mini-redis's `Connection` and
//! `server::run`), and one queue into the fleet (gitui's event queue):
//!
//! - `conn.rs`: framing, the writer task, and [`HostConn`], through which
//!   the fleet sends a host requests and awaits their replies;
//! - `handlers.rs`: what each frame from the host becomes: a reply handed to
//!   the request that waits for it, a fetch served, or a [`HostReport`]
//!   queued for the fleet;
//! - this file: [`serve`], the handshake and the read loop, and what the
//!   tunnel is given of the gateway ([`Link`]).
//!
//! The fleet calls tunnels (through [`HostConn`]); a tunnel never calls the
//! fleet. What a host reports (its hello, heartbeats, events, its end)
//! goes as a [`Report`] into one queue that one fleet task drains
//! (`fleet/events.rs`), so a tunnel reader never waits for the fleet while
//! a fleet task waits for a reply only that reader can deliver.
//!
//! Every task of a tunnel (its reader, its writer, its fetches) ends when
//! the tunnel closes or, at once, when the gateway shuts down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use schema::frame::FrameError;
use schema::tunnel::{
    self, GatewayMsg, Heartbeat, Hello, HostEvent, HostMsg, Incoming, TUNNEL_PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};

mod conn;
mod handlers;

pub use conn::{HostConn, LogItem, LogStream};
pub use handlers::REPORTS_IN_FLIGHT;

use conn::{FrameReader, write_frames, write_msg};
use handlers::{Handlers, Reporter};

/// What a host reports, on its way from its tunnel to the fleet.
pub enum HostReport {
    /// The host said hello. The fleet answers on `accepted`: `Ok` (the
    /// tunnel welcomes it) or why it is refused. Whatever the fleet sends
    /// the host once it has accepted it leaves after the welcome.
    Connected {
        conn: Arc<HostConn>,
        hello: Hello,
        accepted: oneshot::Sender<Result<(), String>>,
    },
    Heartbeat {
        host: String,
        hb: Heartbeat,
    },
    Event {
        host: String,
        event: HostEvent,
    },
    /// The tunnel of an accepted host closed.
    Disconnected {
        conn: Arc<HostConn>,
    },
}

/// A report in the fleet's queue, holding its place in its tunnel's share
/// ([`REPORTS_IN_FLIGHT`]) until it is applied (dropped).
pub struct Report {
    pub what: HostReport,
    _slot: Option<OwnedSemaphorePermit>,
}

/// Where the gateway keeps the artifact of a digest (`None` once the
/// gateway is going away): a function of the fleet's directory, with no
/// lock and no wait.
pub type ArtifactPaths = Arc<dyn Fn(&str) -> Option<PathBuf> + Send + Sync>;

/// What a tunnel is given of the gateway. Nothing in it calls back into
/// the fleet: reports go into its queue and the fleet applies them.
#[derive(Clone)]
pub struct Link {
    /// The gateway's name, for the welcome.
    pub gateway: String,
    /// The fleet's report queue.
    pub reports: mpsc::UnboundedSender<Report>,
    pub artifacts: ArtifactPaths,
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Protocol(String),
}

/// Artifact fetches one host may have in flight (ours asks for one at a
/// time; each costs ~2 MiB of buffers while it runs).
pub const MAX_FETCHES_PER_HOST: usize = 2;

/// Resolves once the gateway shuts down (its flag is set, or its sender
/// is gone).
async fn shut_down(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Serves one host's tunnel until it closes or the gateway shuts down
/// (`shutdown`). Errors close this tunnel only.
pub async fn serve<S>(link: Link, shutdown: watch::Receiver<bool>, key: String, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let mut frames = FrameReader::default();
    let mut down = shutdown.clone();
    let hello = tokio::select! {
        h = read_hello(&key, &mut frames, &mut r) => h,
        _ = shut_down(&mut down) => return,
    };
    let hello = match hello {
        Ok(h) => h,
        Err(Some(reason)) => return refuse(&mut w, reason, &mut down).await,
        Err(None) => return,
    };
    let (conn, outgoing) = HostConn::new(hello.name.clone(), key);
    let handlers = Handlers {
        conn: conn.clone(),
        reports: Reporter::new(link.reports.clone()),
        artifacts: link.artifacts.clone(),
        shutdown: shutdown.clone(),
    };
    let (accepted, verdict) = oneshot::channel();
    handlers.reports.send_now(HostReport::Connected {
        conn: conn.clone(),
        hello,
        accepted,
    });
    let verdict = tokio::select! {
        v = verdict => v.ok(),
        _ = shut_down(&mut down) => None,
    };
    let welcome = GatewayMsg::Welcome {
        version: TUNNEL_PROTOCOL_VERSION,
        gateway: link.gateway.clone(),
    };
    let welcomed = match verdict {
        Some(Ok(())) => tokio::select! {
            r = write_msg(&mut w, &welcome) => r.is_ok(),
            _ = shut_down(&mut down) => false,
        },
        Some(Err(why)) => return refuse(&mut w, why, &mut down).await,
        // The fleet is gone, or the gateway is shutting down.
        None => false,
    };
    if welcomed {
        // What the fleet sent since it accepted the host waits in the
        // writer's queue: it leaves after the welcome.
        tokio::spawn(write_frames(w, outgoing, shutdown));
        read_frames(&handlers, &mut frames, &mut r).await;
    }
    conn.close();
    handlers.reports.send_now(HostReport::Disconnected { conn });
}

/// Reads the host's frames and hands them to its handlers until the tunnel
/// closes or the gateway shuts down.
async fn read_frames<R>(handlers: &Handlers, frames: &mut FrameReader, r: &mut R)
where
    R: AsyncRead + Unpin,
{
    let host = &handlers.conn.name;
    let mut down = handlers.shutdown.clone();
    let result: Result<(), TunnelError> = async {
        loop {
            let next = async {
                match frames.next(r).await? {
                    Some(f) => handlers.frame(f).await.map(|()| true),
                    None => Ok(false),
                }
            };
            tokio::select! {
                more = next => if !more? { return Ok(()) },
                _ = shut_down(&mut down) => return Ok(()),
            }
        }
    }
    .await;
    match result {
        Ok(()) => tracing::info!(host = %host, "tunnel closed"),
        Err(e) => tracing::warn!(host = %host, error = %e, "tunnel closed with an error"),
    }
}

/// The host's hello, checked. `Err(Some(why))`: the host is refused;
/// `Err(None)`: the tunnel closed (or broke) before a hello.
async fn read_hello<R>(
    key: &str,
    frames: &mut FrameReader,
    r: &mut R,
) -> Result<Hello, Option<String>>
where
    R: AsyncRead + Unpin,
{
    let hello = match tokio::time::timeout(Duration::from_secs(15), frames.next(r)).await {
        Ok(Ok(Some(f))) => match tunnel::decode::<HostMsg>(f) {
            Ok(Incoming::Msg(HostMsg::Hello(h))) => h,
            Ok(other) => return Err(Some(format!("expected hello, got {other:?}"))),
            Err(e) => {
                tracing::warn!(key, error = %e, "malformed hello; closing the tunnel");
                return Err(Some(format!("malformed hello: {e}")));
            }
        },
        Ok(Ok(None)) => return Err(None),
        Ok(Err(e)) => {
            tracing::warn!(key, error = %e, "tunnel error before hello");
            return Err(None);
        }
        Err(_) => return Err(Some("no hello within 15 s".into())),
    };
    if hello.version != TUNNEL_PROTOCOL_VERSION {
        return Err(Some(format!(
            "this gateway speaks tunnel protocol v{TUNNEL_PROTOCOL_VERSION}, the host v{}; run hostd and ssh-gateway of the same release",
            hello.version
        )));
    }
    if let Err(e) = schema::names::validate_app_name(&hello.name) {
        return Err(Some(format!("bad host name: {e}")));
    }
    Ok(hello)
}

/// Tells the host why it is refused, and closes the tunnel's write side.
async fn refuse<W>(w: &mut W, reason: String, shutdown: &mut watch::Receiver<bool>)
where
    W: AsyncWrite + Unpin,
{
    let refused = async {
        write_msg(w, &GatewayMsg::Refused { reason }).await?;
        w.shutdown().await
    };
    tokio::select! {
        _ = refused => {}
        _ = shut_down(shutdown) => {}
    }
}

#[cfg(test)]
mod tests;
