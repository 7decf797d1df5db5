//! What hosts report, applied: the one task that drains the fleet's report
//! queue (gitui's event queue).
//!
//! A tunnel never calls the fleet: it queues what its host reports (its
//! hello, heartbeats, events, its end) as a [`Report`], and [`drain`]
//! applies them one after another, in the order each tunnel sent them. The
//! fleet calls tunnels (requests through [`HostConn`]), but applying a
//! report never waits for a host's reply: what would (converging a host
//! that joined, adopting a local rollback, rolling back a failed health
//! check) is spawned. So no tunnel reader waits for the fleet while a fleet
//! task waits for a reply only that reader can deliver.
//!
//! The task ends once the fleet is gone and every tunnel has closed (each
//! does on the gateway's shutdown).

use std::sync::Weak;

use crate::tunnel::{HostReport, Link, Report};

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Fleet;

/// The fleet's report queue: the sender tunnels are linked to, and what
/// [`drain`] reads.
pub(super) fn queue() -> (
    mpsc::UnboundedSender<Report>,
    mpsc::UnboundedReceiver<Report>,
) {
    mpsc::unbounded_channel()
}

/// Applies the reports of every tunnel, in order, while the fleet lives.
pub(super) async fn drain(fleet: Weak<Fleet>, mut reports: mpsc::UnboundedReceiver<Report>) {
    while let Some(report) = reports.recv().await {
        let Some(fleet) = fleet.upgrade() else { return };
        fleet.apply(report.what).await;
        // Dropping the report frees its place in its tunnel's share.
    }
}

impl Fleet {
    /// What a tunnel is given of the fleet: its name, where artifacts are
    /// kept, and the report queue.
    pub fn tunnel_link(self: &Arc<Self>) -> Link {
        let fleet = Arc::downgrade(self);
        Link {
            gateway: self.name.clone(),
            reports: self.reports.clone(),
            artifacts: Arc::new(move |digest: &str| {
                fleet.upgrade().and_then(|f| f.artifact_path(digest))
            }),
        }
    }

    async fn apply(self: &Arc<Self>, report: HostReport) {
        match report {
            HostReport::Connected {
                conn,
                hello,
                accepted,
            } => match self.host_connected(conn.clone(), &hello).await {
                Ok(()) => {
                    // What this sends the host waits in its queue until
                    // the tunnel has written the welcome.
                    self.clone().after_hello(conn, hello);
                    let _ = accepted.send(Ok(()));
                }
                Err(why) => {
                    let _ = accepted.send(Err(why));
                }
            },
            HostReport::Heartbeat { host, hb } => self.heartbeat(&host, hb).await,
            HostReport::Event { host, event } => self.clone().host_event(&host, event).await,
            HostReport::Disconnected { conn } => self.host_disconnected(&conn).await,
        }
    }
}
