//! The SSH port of a standby gateway: every connection is told, in the
//! authentication banner, that this gateway is a standby and which gateway
//! is active (and where), and every key is refused, so a host's tunnel and
//! an operator's command go nowhere here. Our clients given a list of
//! gateways move on to the next; OpenSSH prints the banner.
//!
//! Nothing here reads the database per connection: the message is the one
//! the lease loop last wrote. Unauthenticated peers cost what they cost on
//! the active gateway's port: a slot of the same gate, a grace time.

use std::sync::Arc;
use std::time::Duration;

use russh::server;
use tokio::sync::watch;

use super::listen::Limits;

struct Standby {
    message: watch::Receiver<String>,
}

impl server::Handler for Standby {
    type Error = russh::Error;

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        Ok(Some(format!("{}\r\n", *self.message.borrow())))
    }
    // Every authentication method keeps russh's default: refused.
}

/// Answers connections on `listener` as a standby until `active` changes
/// to true; the listener is then the active server's.
pub async fn run(
    config: Arc<server::Config>,
    listener: &tokio::net::TcpListener,
    limits: Limits,
    message: watch::Receiver<String>,
    mut active: watch::Receiver<bool>,
) {
    let gate = net::Gate::new(limits.max_startups, limits.per_source_max_startups);
    // A standby's conversation is a banner and a refusal: seconds at most.
    let grace = limits.login_grace.min(Duration::from_secs(10));
    loop {
        if *active.borrow() {
            return;
        }
        let (socket, peer) = tokio::select! {
            c = net::accept(listener, "the SSH port") => c,
            _ = active.changed() => continue,
        };
        let Ok(permit) = gate.admit(peer.ip()) else {
            drop(socket);
            continue;
        };
        let handler = Standby {
            message: message.clone(),
        };
        let config = config.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let run = async {
                match server::run_stream(config, socket, handler).await {
                    Ok(session) => {
                        let _ = session.await;
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "SSH handshake failed"),
                }
            };
            let _ = tokio::time::timeout(grace, run).await;
        });
    }
}
