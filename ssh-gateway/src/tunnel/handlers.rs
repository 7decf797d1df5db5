//! The tunnel's handlers: what each frame from a host becomes.
//!
//! - Replies, progress and log batches go to the request waiting for them,
//!   through the host's [`HostConn`].
//! - Heartbeats and events go into the fleet's report queue
//!   ([`Reporter`]), which one fleet task drains; no handler waits for the
//!   fleet to act on them.
//! - An artifact fetch is served from the gateway's store by a task of its
//!   own, through the host's chunk queue; it ends with the tunnel, or at
//!   once on the gateway's shutdown.

use std::path::PathBuf;
use std::sync::Arc;

use schema::frame::Frame;
use schema::progress::Step;
use schema::tunnel::{self, Chunk, GatewayMsg, HostMsg, Incoming};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc, watch};

use super::conn::HostConn;
use super::{ArtifactPaths, HostReport, MAX_FETCHES_PER_HOST, Report, TunnelError, shut_down};

/// Reports one host's tunnel may have waiting in the fleet's queue; the
/// tunnel reads no further frames until one is applied, so a host that
/// reports faster than the fleet applies slows only its own tunnel.
pub const REPORTS_IN_FLIGHT: usize = 32;

/// One tunnel's end of the fleet's report queue.
pub(super) struct Reporter {
    tx: mpsc::UnboundedSender<Report>,
    slots: Arc<Semaphore>,
}

impl Reporter {
    pub(super) fn new(tx: mpsc::UnboundedSender<Report>) -> Reporter {
        Reporter {
            tx,
            slots: Arc::new(Semaphore::new(REPORTS_IN_FLIGHT)),
        }
    }

    /// Queues `what`, first waiting for a slot of this tunnel's share.
    /// A fleet that is gone takes nothing.
    pub(super) async fn send(&self, what: HostReport) {
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let _ = self.tx.send(Report {
            what,
            _slot: Some(slot),
        });
    }

    /// Queues `what` now, outside the tunnel's share (the end of a tunnel
    /// is always reported, even while the fleet is behind).
    pub(super) fn send_now(&self, what: HostReport) {
        let _ = self.tx.send(Report { what, _slot: None });
    }
}

/// What one accepted tunnel does with the frames its host sends.
pub(super) struct Handlers {
    pub conn: Arc<HostConn>,
    pub reports: Reporter,
    pub artifacts: ArtifactPaths,
    pub shutdown: watch::Receiver<bool>,
}

impl Handlers {
    pub(super) async fn frame(&self, f: Frame) -> Result<(), TunnelError> {
        match tunnel::decode::<HostMsg>(f)? {
            Incoming::Chunk(_) => {
                return Err(TunnelError::Protocol(
                    "hosts do not send artifact chunks".into(),
                ));
            }
            Incoming::Msg(m) => self.message(m).await,
            Incoming::Logs(b) => self.conn.deliver_logs(b),
        }
        Ok(())
    }

    async fn message(&self, m: HostMsg) {
        let conn = &self.conn;
        match m {
            HostMsg::Hello(_) => tracing::warn!(host = %conn.name, "a second hello; ignored"),
            HostMsg::Heartbeat(hb) => {
                let host = conn.name.clone();
                self.reports.send(HostReport::Heartbeat { host, hb }).await;
            }
            HostMsg::Reply {
                id,
                ok,
                message,
                compile_ms,
            } => conn.deliver_reply(id, ok, message, compile_ms),
            HostMsg::Progress { id, line, step } => {
                conn.deliver_progress(id, step.unwrap_or(Step::Note { line }))
            }
            HostMsg::Fetch { digest, offset } => self.fetch(digest, offset).await,
            HostMsg::LogsEnd { id } => conn.end_logs(id),
            HostMsg::Event(event) => {
                let host = conn.name.clone();
                self.reports.send(HostReport::Event { host, event }).await;
            }
        }
    }

    /// Starts sending an artifact, unless this host has as many fetches in
    /// flight as it may.
    async fn fetch(&self, digest: String, offset: u64) {
        let conn = &self.conn;
        let Ok(permit) = conn.fetches.clone().try_acquire_owned() else {
            tracing::warn!(host = %conn.name, digest, "refused a fetch: {MAX_FETCHES_PER_HOST} are in flight for this host");
            let reason = format!(
                "{MAX_FETCHES_PER_HOST} fetches are in flight for this host already; ask again when one ends"
            );
            send_chunk_msg(conn, &GatewayMsg::FetchFailed { reason, digest }).await;
            return;
        };
        let path = (self.artifacts)(&digest);
        let (conn, mut shutdown) = (conn.clone(), self.shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = send_artifact(&conn, path, digest, offset) => {}
                _ = conn.closed() => {}
                _ = shut_down(&mut shutdown) => {}
            }
            drop(permit);
        });
    }
}

/// A fetch's end or failure, in order behind its chunks.
async fn send_chunk_msg(conn: &HostConn, m: &GatewayMsg) {
    let mut b = Vec::new();
    tunnel::encode_msg(m, &mut b);
    let _ = conn.chunks.send(b).await;
}

/// Streams an artifact from `offset` in 1 MiB chunks, then its end, through
/// the host's chunk queue (so at most a few chunks wait for a slow host).
/// `path` is where the gateway keeps it (`None`: the gateway is going away).
async fn send_artifact(conn: &HostConn, path: Option<PathBuf>, digest: String, offset: u64) {
    use tokio::io::AsyncSeekExt;
    let fail = |reason: String| GatewayMsg::FetchFailed {
        digest: digest.clone(),
        reason,
    };
    if !schema::artifact::is_digest(&digest) {
        send_chunk_msg(conn, &fail("not a sha256 digest".into())).await;
        return;
    }
    let Some(path) = path else {
        send_chunk_msg(conn, &fail("the gateway is shutting down".into())).await;
        return;
    };
    let mut f = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            send_chunk_msg(conn, &fail(format!("not stored on the gateway: {e}"))).await;
            return;
        }
    };
    let total = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    if offset > total || f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        send_chunk_msg(
            conn,
            &fail(format!("offset {offset} is past the end ({total} bytes)")),
        )
        .await;
        return;
    }
    let mut pos = offset;
    let mut data = vec![0u8; schema::frame::CHUNK];
    loop {
        let n = match f.read(&mut data).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                send_chunk_msg(conn, &fail(format!("read error: {e}"))).await;
                return;
            }
        };
        let mut buf = Vec::with_capacity(n + 80);
        tunnel::encode_chunk(
            &Chunk {
                digest: digest.clone(),
                offset: pos,
                data: data[..n].to_vec(),
            },
            &mut buf,
        );
        if conn.chunks.send(buf).await.is_err() {
            return;
        }
        pos += n as u64;
    }
    send_chunk_msg(conn, &GatewayMsg::ChunkEnd { digest, total: pos }).await;
}
