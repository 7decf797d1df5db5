//! The SSH port: the accept loop, and what a connection may cost before
//! and after it authenticates (OpenSSH's `LoginGraceTime`, `MaxStartups`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::server;
use tokio::sync::{oneshot, watch};

use super::{Conn, Server};

/// What unauthenticated peers may cost (OpenSSH's `LoginGraceTime` and
/// `MaxStartups`, per source as well as in total).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection that has not authenticated by then is closed.
    pub login_grace: Duration,
    /// Connections authenticating at once, from everywhere.
    pub max_startups: usize,
    /// Connections authenticating at once from one address (IPv6: one /64).
    pub per_source_max_startups: usize,
    /// Refusals before login are written to the audit log this often, one
    /// entry per source and attempt with a count.
    pub audit_refusals_every: Duration,
    /// The audit log keeps at most this many entries (refusals go first;
    /// an operator's action is never dropped).
    pub audit_keep: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            login_grace: Duration::from_secs(30),
            max_startups: 128,
            per_source_max_startups: 32,
            audit_refusals_every: Duration::from_secs(60),
            audit_keep: 1_000_000,
        }
    }
}

/// Serves SSH on `listener` until `shutdown` changes, then tells every
/// client why and returns.
///
/// Unlike russh's own loop, this one never ends on an accept error (it
/// backs off while the process is out of descriptors), closes connections
/// past the caps of [`Limits`] at once, and cuts off any connection that has
/// not authenticated within the grace time.
pub async fn run(
    server: Server,
    config: Arc<server::Config>,
    listener: tokio::net::TcpListener,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let gate = net::Gate::new(limits.max_startups, limits.per_source_max_startups);
    tokio::spawn(crate::sessions::watch_keys(
        server.fleet.clone(),
        server.sessions.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(crate::refusals::run(
        server.fleet.clone(),
        server.refusals.clone(),
        limits.audit_refusals_every,
        limits.audit_keep,
        shutdown.clone(),
    ));
    let mut last_refusal_log: Option<std::time::Instant> = None;
    let mut refused_since_log = 0u64;
    loop {
        let (socket, peer) = tokio::select! {
            c = net::accept(&listener, "the SSH port") => c,
            _ = shutdown.changed() => return,
        };
        let permit = match gate.admit(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                // Closed at once: a flood costs a descriptor for microseconds.
                drop(socket);
                refused_since_log += 1;
                if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(peer = %peer.ip(), refused = refused_since_log, "closed new connections: {why}");
                    last_refusal_log = Some(std::time::Instant::now());
                    refused_since_log = 0;
                }
                continue;
            }
        };
        let _ = socket.set_nodelay(config.nodelay);
        let (authed_tx, authed_rx) = oneshot::channel();
        let switch = net::KillSwitch::new();
        let handler = server.new_client(peer, authed_tx, shutdown.clone(), switch.clone());
        let config = config.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(connection(
            config, socket, peer, handler, permit, authed_rx, limits, shutdown, switch,
        ));
    }
}

/// One connection: the handshake and authentication within the grace time
/// (holding a slot of the gate), then the session until either side ends it.
#[allow(clippy::too_many_arguments)]
async fn connection(
    config: Arc<server::Config>,
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    handler: Conn,
    permit: net::Permit,
    authenticated: oneshot::Receiver<()>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    switch: net::KillSwitch,
) {
    let stream = net::Killable::new(socket, switch.clone());
    let grace = tokio::time::sleep(limits.login_grace);
    tokio::pin!(grace);
    let session = tokio::select! {
        s = server::run_stream(config, stream, handler) => match s {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "SSH handshake failed");
                return;
            }
        },
        // Dropping the handshake drops the stream: the connection closes.
        _ = &mut grace => {
            tracing::info!(%peer, "closed a connection that did not authenticate within the login grace time");
            return;
        }
    };
    let handle = session.handle();
    tokio::pin!(session);
    tokio::select! {
        r = &mut session => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "SSH session ended with an error before authenticating");
            }
            return;
        }
        r = authenticated => {
            if r.is_err() {
                // The handler is gone: the session is ending.
                switch.kill();
                return;
            }
        }
        _ = &mut grace => {
            tracing::info!(%peer, "closed a connection that did not authenticate within the login grace time");
            switch.kill();
            return;
        }
    }
    permit.release();
    tokio::select! {
        r = &mut session => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "SSH session ended with an error");
            }
        }
        _ = shutdown.changed() => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "the gateway is shutting down".into(), String::new())
                .await;
            // A client that does not read its disconnect is cut off.
            if tokio::time::timeout(Duration::from_secs(2), &mut session).await.is_err() {
                switch.kill();
            }
        }
    }
}
