//! The gateway's end of a host's tunnel: the handshake, requests with
//! replies and progress, artifact fetches, log streams and events.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schema::frame::{self, FrameError};
use schema::progress::Step;
use schema::tunnel::{
    self, Chunk, GatewayMsg, Hello, HostMsg, Incoming, LogBatch, MAX_TUNNEL_FRAME,
    TUNNEL_PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::fleet::Fleet;

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
            let conn = self.conn.clone();
            rt.spawn(async move {
                let _ = conn.send_raw(buf).await;
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
    reply: oneshot::Sender<Result<Option<u64>, String>>,
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
    chunks: mpsc::Sender<Vec<u8>>,
    /// Fetches this host may have in flight; more are refused at once.
    fetches: Arc<tokio::sync::Semaphore>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    logs: Mutex<HashMap<u64, mpsc::UnboundedSender<LogItem>>>,
    closed: watch::Sender<bool>,
}

impl HostConn {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
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

    fn close(&self) {
        self.closed.send_replace(true);
        Self::lock(&self.pending).clear();
        Self::lock(&self.logs).clear();
    }
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

/// Frames read from a tunnel: bytes are read straight into one buffer,
/// and frames are taken from its front without moving what follows them
/// (the buffer is compacted only once most of it has been taken).
#[derive(Default)]
struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
}

impl FrameReader {
    async fn next<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<Option<frame::Frame>, TunnelError> {
        loop {
            if let Some((f, n)) = frame::decode(&self.buf[self.pos..], MAX_TUNNEL_FRAME)? {
                self.pos += n;
                if self.pos == self.buf.len() {
                    self.buf.clear();
                    self.pos = 0;
                }
                return Ok(Some(f));
            }
            if self.pos > 0 && self.pos >= self.buf.len() / 2 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            self.buf.reserve(256 * 1024);
            let n = r.read_buf(&mut self.buf).await?;
            if n == 0 {
                return if self.pos == self.buf.len() {
                    Ok(None)
                } else {
                    Err(TunnelError::Protocol(
                        "the tunnel closed in the middle of a frame".into(),
                    ))
                };
            }
        }
    }
}

/// Artifact fetches one host may have in flight (ours asks for one at a
/// time; each costs ~2 MiB of buffers while it runs).
pub const MAX_FETCHES_PER_HOST: usize = 2;

/// Serves one host's tunnel until it closes. Errors close this tunnel only.
pub async fn serve<S>(fleet: Arc<Fleet>, key: String, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let (tx, mut out) = mpsc::channel::<Vec<u8>>(64);
    let (chunks_tx, mut chunks) = mpsc::channel::<Vec<u8>>(2);
    let writer = tokio::spawn(async move {
        loop {
            // Control messages first: a stream of chunks never holds up a
            // heartbeat reply or an activate.
            let next = tokio::select! {
                biased;
                b = out.recv() => b,
                b = chunks.recv() => b,
            };
            let Some(b) = next else { break };
            if w.write_all(&b).await.is_err() || w.flush().await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut buf = FrameReader::default();
    let refuse = |reason: String| {
        let tx = tx.clone();
        async move {
            let mut b = Vec::new();
            tunnel::encode_msg(&GatewayMsg::Refused { reason }, &mut b);
            let _ = tx.send(b).await;
        }
    };
    let hello: Hello = match tokio::time::timeout(Duration::from_secs(15), buf.next(&mut r)).await {
        Ok(Ok(Some(f))) => match tunnel::decode::<HostMsg>(f) {
            Ok(Incoming::Msg(HostMsg::Hello(h))) => h,
            Ok(other) => {
                refuse(format!("expected hello, got {other:?}")).await;
                return;
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "malformed hello; closing the tunnel");
                refuse(format!("malformed hello: {e}")).await;
                return;
            }
        },
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::warn!(key, error = %e, "tunnel error before hello");
            return;
        }
        Err(_) => {
            refuse("no hello within 15 s".into()).await;
            return;
        }
    };
    if hello.version != TUNNEL_PROTOCOL_VERSION {
        refuse(format!(
            "this gateway speaks tunnel protocol v{TUNNEL_PROTOCOL_VERSION}, the host v{}; run hostd and ssh-gateway of the same release",
            hello.version
        ))
        .await;
        return;
    }
    if let Err(e) = schema::names::validate_app_name(&hello.name) {
        refuse(format!("bad host name: {e}")).await;
        return;
    }
    let conn = Arc::new(HostConn {
        name: hello.name.clone(),
        key: key.clone(),
        tx: tx.clone(),
        chunks: chunks_tx,
        fetches: Arc::new(tokio::sync::Semaphore::new(MAX_FETCHES_PER_HOST)),
        next_id: AtomicU64::new(0),
        pending: Mutex::new(HashMap::new()),
        logs: Mutex::new(HashMap::new()),
        closed: watch::channel(false).0,
    });
    if let Err(why) = fleet.host_connected(conn.clone(), &hello).await {
        refuse(why).await;
        drop(tx);
        let _ = writer.await;
        return;
    }
    let welcome = GatewayMsg::Welcome {
        version: TUNNEL_PROTOCOL_VERSION,
        gateway: fleet.name.clone(),
    };
    if conn.send(&welcome).await.is_err() {
        return;
    }
    fleet.clone().after_hello(conn.clone(), hello);
    let result: Result<(), TunnelError> = async {
        while let Some(f) = buf.next(&mut r).await? {
            match tunnel::decode::<HostMsg>(f)? {
                Incoming::Chunk(_) => {
                    return Err(TunnelError::Protocol(
                        "hosts do not send artifact chunks".into(),
                    ));
                }
                Incoming::Msg(m) => handle(&fleet, &conn, m).await,
                Incoming::Logs(b) => {
                    if let Some(tx) = HostConn::lock(&conn.logs).get(&b.id) {
                        let _ = tx.send(LogItem::Batch(b));
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => tracing::info!(host = %conn.name, "tunnel closed"),
        Err(e) => tracing::warn!(host = %conn.name, error = %e, "tunnel closed with an error"),
    }
    conn.close();
    fleet.host_disconnected(&conn).await;
    drop(tx);
    writer.abort();
}

async fn handle(fleet: &Arc<Fleet>, conn: &Arc<HostConn>, m: HostMsg) {
    match m {
        HostMsg::Hello(_) => tracing::warn!(host = %conn.name, "a second hello; ignored"),
        HostMsg::Heartbeat(hb) => fleet.heartbeat(&conn.name, hb).await,
        HostMsg::Reply {
            id,
            ok,
            message,
            compile_ms,
        } => {
            if let Some(p) = HostConn::lock(&conn.pending).remove(&id) {
                let _ = p.reply.send(if ok { Ok(compile_ms) } else { Err(message) });
            } else if let Some(tx) = HostConn::lock(&conn.logs).remove(&id) {
                // A logs request is answered only when it failed.
                let _ = tx.send(LogItem::Error(message));
            }
        }
        HostMsg::Progress { id, line, step } => {
            if let Some(Some(tx)) = HostConn::lock(&conn.pending)
                .get(&id)
                .map(|p| p.progress.clone())
            {
                let _ = tx.send(step.unwrap_or(Step::Note { line }));
            }
        }
        HostMsg::Fetch { digest, offset } => {
            let Ok(permit) = conn.fetches.clone().try_acquire_owned() else {
                tracing::warn!(host = %conn.name, digest, "refused a fetch: {MAX_FETCHES_PER_HOST} are in flight for this host");
                let mut b = Vec::new();
                tunnel::encode_msg(
                    &GatewayMsg::FetchFailed {
                        reason: format!(
                            "{MAX_FETCHES_PER_HOST} fetches are in flight for this host already; ask again when one ends"
                        ),
                        digest,
                    },
                    &mut b,
                );
                let _ = conn.chunks.send(b).await;
                return;
            };
            let (path, conn) = (fleet.artifact_path(&digest), conn.clone());
            tokio::spawn(async move {
                send_artifact(&conn, path, digest, offset).await;
                drop(permit);
            });
        }
        HostMsg::LogsEnd { id } => {
            if let Some(tx) = HostConn::lock(&conn.logs).remove(&id) {
                let _ = tx.send(LogItem::End);
            }
        }
        HostMsg::Event(e) => fleet.clone().host_event(&conn.name, e).await,
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
async fn send_artifact(conn: &HostConn, path: Option<PathBuf>, digest: String, offset: u64) {
    use tokio::io::AsyncSeekExt;
    let fail = |reason: String| GatewayMsg::FetchFailed {
        digest: digest.clone(),
        reason,
    };
    // No path was built from a string that is not a digest.
    let Some(path) = path else {
        send_chunk_msg(conn, &fail("not a sha256 digest".into())).await;
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
