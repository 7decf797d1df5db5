//! The connection half of a tunnel (mini-redis's `Connection`): frames in
//! from the host ([`FrameReader`]), frames out through one writer task
//! ([`write_frames`]), and [`HostConn`], the handle the fleet sends a host
//! requests with and awaits their replies, progress and log batches on.
//!
//! Nothing here knows the fleet: the tunnel's handlers deliver what the
//! host answers to the waiting request through [`HostConn`]'s methods.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use schema::frame;
use schema::progress::Step;
use schema::tunnel::{self, GatewayMsg, LogBatch, MAX_TUNNEL_FRAME};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::{MAX_FETCHES_PER_HOST, TunnelError, shut_down};

/// What a logs request yields.
#[derive(Debug)]
pub enum LogItem {
    Batch(LogBatch),
    /// The host sent everything (not following).
    End,
    Error(String),
}

/// The answer to a logs request. The host sends a few batches ahead
/// ([`tunnel::LOGS_WINDOW`]) and one more for each batch taken here, so a
/// client that reads slowly leaves the records in the host's store rather
/// than in this process's memory.
pub struct LogStream {
    pub id: u64,
    conn: Arc<HostConn>,
    rx: mpsc::UnboundedReceiver<LogItem>,
    /// Batches taken whose credit is not yet sent.
    owed: u32,
}

impl Drop for LogStream {
    /// A stream given up before its end (the client went away, a follow
    /// ended) cancels the host's request, which would otherwise wait for
    /// credit until the tunnel closes.
    fn drop(&mut self) {
        let open = HostConn::lock(&self.conn.logs).remove(&self.id).is_some();
        if !open || self.conn.is_closed() {
            return;
        }
        let mut buf = Vec::new();
        tunnel::encode_msg(&GatewayMsg::Cancel { id: self.id }, &mut buf);
        if let Err(mpsc::error::TrySendError::Full(buf)) = self.conn.tx.try_send(buf)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            // Ends with the tunnel (closed on the gateway's shutdown too).
            let conn = self.conn.clone();
            rt.spawn(async move {
                tokio::select! {
                    _ = conn.send_raw(buf) => {}
                    _ = conn.closed() => {}
                }
            });
        }
    }
}

impl LogStream {
    /// The next item. Credit for the batches taken before goes to the host
    /// first: asking for the next item is what says they were used.
    /// Cancel-safe: credit not sent is sent by the next call.
    pub async fn recv(&mut self) -> Option<LogItem> {
        if self.owed > 0 {
            let credit = GatewayMsg::LogsCredit {
                id: self.id,
                batches: self.owed,
            };
            // A closed tunnel ends the stream below.
            if self.conn.send(&credit).await.is_ok() {
                self.owed = 0;
            }
        }
        let item = self.rx.recv().await;
        if matches!(item, Some(LogItem::Batch(_))) {
            self.owed += 1;
        }
        item
    }
}

struct Pending {
    progress: Option<mpsc::UnboundedSender<Step>>,
    /// The compile time and message of a success, or why it failed.
    reply: oneshot::Sender<Result<(Option<u64>, String), String>>,
}

/// A connected host.
pub struct HostConn {
    pub name: String,
    /// The key it authenticated with.
    pub key: String,
    tx: mpsc::Sender<Vec<u8>>,
    /// Artifact chunks (and their end or failure), in a queue of their own
    /// that holds two: a host that asks for artifacts and does not read
    /// them costs the gateway a few MiB, not what it asked for.
    pub(super) chunks: mpsc::Sender<Vec<u8>>,
    /// Fetches this host may have in flight; more are refused at once.
    pub(super) fetches: Arc<Semaphore>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    logs: Mutex<HashMap<u64, mpsc::UnboundedSender<LogItem>>>,
    closed: watch::Sender<bool>,
}

/// The receiving ends of a [`HostConn`]'s two queues, for its writer.
pub(super) struct Outgoing {
    out: mpsc::Receiver<Vec<u8>>,
    chunks: mpsc::Receiver<Vec<u8>>,
    /// Set when the tunnel ends.
    closed: watch::Receiver<bool>,
}

impl HostConn {
    /// The connection of the host `name`, and the queues its writer
    /// drains ([`write_frames`]).
    pub(super) fn new(name: String, key: String) -> (Arc<HostConn>, Outgoing) {
        let (tx, out) = mpsc::channel(64);
        let (chunks_tx, chunks) = mpsc::channel(2);
        let closed = watch::channel(false).0;
        let outgoing = Outgoing {
            out,
            chunks,
            closed: closed.subscribe(),
        };
        let conn = HostConn {
            name,
            key,
            tx,
            chunks: chunks_tx,
            fetches: Arc::new(Semaphore::new(MAX_FETCHES_PER_HOST)),
            next_id: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            closed,
        };
        (Arc::new(conn), outgoing)
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    pub async fn closed(&self) {
        net::until_true(&mut self.closed.subscribe()).await
    }

    async fn send_raw(&self, buf: Vec<u8>) -> Result<(), String> {
        self.tx
            .send(buf)
            .await
            .map_err(|_| format!("host {} disconnected", self.name))
    }

    pub async fn send(&self, m: &GatewayMsg) -> Result<(), String> {
        let mut buf = Vec::new();
        tunnel::encode_msg(m, &mut buf);
        self.send_raw(buf).await
    }

    /// Sends the request built with a fresh id and waits for its reply;
    /// progress lines go to `progress`. A dropped tunnel fails the request.
    pub async fn request(
        &self,
        build: impl FnOnce(u64) -> GatewayMsg,
        progress: Option<mpsc::UnboundedSender<Step>>,
    ) -> Result<Option<u64>, String> {
        self.request_message(build, progress).await.map(|(c, _)| c)
    }

    /// Like [`request`](Self::request), with the message of a success (a
    /// `kv` answer).
    pub async fn request_message(
        &self,
        build: impl FnOnce(u64) -> GatewayMsg,
        progress: Option<mpsc::UnboundedSender<Step>>,
    ) -> Result<(Option<u64>, String), String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (reply, rx) = oneshot::channel();
        Self::lock(&self.pending).insert(id, Pending { progress, reply });
        if let Err(e) = self.send(&build(id)).await {
            Self::lock(&self.pending).remove(&id);
            return Err(e);
        }
        tokio::select! {
            r = rx => r.unwrap_or_else(|_| Err(format!("host {} disconnected", self.name))),
            _ = self.closed() => {
                Self::lock(&self.pending).remove(&id);
                Err(format!("host {} disconnected", self.name))
            }
        }
    }

    /// Starts a logs request; records arrive on the stream until the
    /// host ends it, the tunnel drops (the stream ends) or it is cancelled.
    pub async fn logs(
        self: &Arc<Self>,
        build: impl FnOnce(u64) -> GatewayMsg,
    ) -> Result<LogStream, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::unbounded_channel();
        Self::lock(&self.logs).insert(id, tx);
        self.send(&build(id)).await?;
        Ok(LogStream {
            id,
            conn: self.clone(),
            rx,
            owed: 0,
        })
    }

    pub async fn cancel_logs(&self, id: u64) {
        Self::lock(&self.logs).remove(&id);
        let _ = self.send(&GatewayMsg::Cancel { id }).await;
    }

    /// Ends the connection: requests waiting for a reply fail, log streams
    /// end, and the writer and fetches stop.
    pub(super) fn close(&self) {
        self.closed.send_replace(true);
        Self::lock(&self.pending).clear();
        Self::lock(&self.logs).clear();
    }

    /// The host answered the request `id`.
    pub(super) fn deliver_reply(
        &self,
        id: u64,
        ok: bool,
        message: String,
        compile_ms: Option<u64>,
    ) {
        if let Some(p) = Self::lock(&self.pending).remove(&id) {
            let _ = p.reply.send(if ok {
                Ok((compile_ms, message))
            } else {
                Err(message)
            });
        } else if let Some(tx) = Self::lock(&self.logs).remove(&id) {
            // A logs request is answered only when it failed.
            let _ = tx.send(LogItem::Error(message));
        }
    }

    /// A step of the request `id`, for whoever follows its progress.
    pub(super) fn deliver_progress(&self, id: u64, step: Step) {
        if let Some(Some(tx)) = Self::lock(&self.pending)
            .get(&id)
            .map(|p| p.progress.clone())
        {
            let _ = tx.send(step);
        }
    }

    /// A batch of records for its logs request.
    pub(super) fn deliver_logs(&self, b: LogBatch) {
        if let Some(tx) = Self::lock(&self.logs).get(&b.id) {
            let _ = tx.send(LogItem::Batch(b));
        }
    }

    /// The host sent everything the logs request `id` asked for.
    pub(super) fn end_logs(&self, id: u64) {
        if let Some(tx) = Self::lock(&self.logs).remove(&id) {
            let _ = tx.send(LogItem::End);
        }
    }
}

/// Writes a host's frames, control messages before artifact chunks, until
/// the tunnel ends or the gateway shuts down (then at once: what is queued
/// is dropped, as nobody waits for it any more).
pub(super) async fn write_frames<W>(mut w: W, q: Outgoing, mut shutdown: watch::Receiver<bool>)
where
    W: AsyncWrite + Unpin,
{
    let Outgoing {
        mut out,
        mut chunks,
        mut closed,
    } = q;
    let pump = async {
        loop {
            // Control messages first: a stream of chunks never holds up a
            // heartbeat reply or an activate.
            let next = tokio::select! {
                biased;
                b = out.recv() => b,
                b = chunks.recv() => b,
            };
            let Some(b) = next else { return true };
            if w.write_all(&b).await.is_err() || w.flush().await.is_err() {
                return false;
            }
        }
    };
    let drained = tokio::select! {
        drained = pump => drained,
        _ = closed.wait_for(|closed| *closed) => false,
        _ = shut_down(&mut shutdown) => false,
    };
    if drained {
        let _ = w.shutdown().await;
    }
}

/// Writes one message straight to the stream (the handshake's answer,
/// before the writer task starts).
pub(super) async fn write_msg<W>(w: &mut W, m: &GatewayMsg) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut b = Vec::new();
    tunnel::encode_msg(m, &mut b);
    w.write_all(&b).await?;
    w.flush().await
}

/// Frames read from a tunnel (see [`frame::FrameBuf`]).
#[derive(Default)]
pub(super) struct FrameReader(frame::FrameBuf);

impl FrameReader {
    pub(super) async fn next<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<Option<frame::Frame>, TunnelError> {
        loop {
            if let Some(f) = self.0.next_frame(MAX_TUNNEL_FRAME)? {
                return Ok(Some(f));
            }
            let n = r.read_buf(self.0.spare(256 * 1024)).await?;
            if n == 0 {
                return if self.0.has_partial() {
                    Err(TunnelError::Protocol(
                        "the tunnel closed in the middle of a frame".into(),
                    ))
                } else {
                    Ok(None)
                };
            }
        }
    }
}
