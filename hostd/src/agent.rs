//! `hostd agent`: a host that joins a fleet through an SSH tunnel.
//!
//! The agent dials out (so hosts behind NAT can join), pins the gateway's
//! host key on first contact, authenticates with its own host key, opens the
//! tunnel subsystem, says hello (what it is and runs), and then serves the
//! gateway's requests while sending a heartbeat every few seconds. When the
//! tunnel drops it reconnects with jittered exponential backoff; its apps
//! keep running meanwhile, and its control socket keeps working, so
//! `hostd rollback --local` is available while the gateway is away.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::keys::PrivateKey;
use schema::command::Since;
use schema::frame::FrameError;
use schema::progress::Step;
use schema::tunnel::{
    self, Chunk, GatewayMsg, HEARTBEAT_SECS, Hello, HostEvent, HostMsg, Incoming, MAX_TUNNEL_FRAME,
    SUBSYSTEM, TUNNEL_PROTOCOL_VERSION,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::connection::FrameReader;
use crate::control::until_true;
use crate::host::Host;
use crate::logs::follow::{self, RecordSink};
use ops::OpError;
use ssh_client::{self as ssh, HostKeyPolicy, SshError, Target};

/// How the agent reaches its gateway.
#[derive(Clone)]
pub struct AgentConfig {
    pub target: Target,
    pub key: PrivateKey,
    /// Where the gateway's host key is pinned.
    pub pin: PathBuf,
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

/// Keeps a tunnel to the gateway until `shutdown`.
pub async fn run(host: Arc<Host>, cfg: AgentConfig, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            r = session(&host, &cfg) => r,
            _ = until_true(&mut shutdown) => return,
        };
        if started.elapsed() > Duration::from_secs(30) {
            backoff = BACKOFF_MIN;
        }
        match result {
            Ok(()) => tracing::warn!(gateway = %cfg.target.addr(), "the gateway closed the tunnel"),
            Err(TunnelError::Ssh(SshError::HostKey(why))) => {
                tracing::error!("{why}");
                backoff = BACKOFF_MAX;
            }
            Err(e) => {
                tracing::warn!(gateway = %cfg.target.addr(), error = %e, "tunnel down; apps keep running")
            }
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

    async fn reply(&self, id: u64, r: Result<Option<u64>, String>) {
        let m = match r {
            Ok(compile_ms) => HostMsg::Reply {
                id,
                ok: true,
                message: String::new(),
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

/// Where one logs request's batches go: the tunnel, as far as the
/// gateway's credit allows (see [`tunnel::LOGS_WINDOW`]).
struct LogSink {
    host: Arc<Host>,
    app: String,
    tx: Tx,
    id: u64,
    credit: Arc<tokio::sync::Semaphore>,
    /// Whether this request has had to wait for credit (said once).
    waited: std::sync::atomic::AtomicBool,
}

impl LogSink {
    /// Sends one batch frame, first waiting for credit.
    async fn frame(&self, f: Vec<u8>) -> Result<(), String> {
        let permit = match self.credit.try_acquire() {
            Ok(p) => Ok(p),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                if !self.waited.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::debug!(id = self.id, "logs request waits for the gateway's credit");
                }
                self.credit.acquire().await
            }
            Err(tokio::sync::TryAcquireError::Closed) => self.credit.acquire().await,
        };
        permit
            .map_err(|_| "the logs request was cancelled".to_string())?
            .forget();
        self.tx
            .0
            .send(f)
            .await
            .map_err(|_| "the tunnel closed".to_string())
    }
}

/// Stored records stream from the store as binary batches while they are
/// read; live ones go as batches of the same request.
impl RecordSink for LogSink {
    async fn live(&mut self, records: &[schema::LogRecord]) -> Result<(), OpError> {
        let mut w = tunnel::LogBatchWriter::new(self.id, &self.app);
        let mut frames = Vec::new();
        for r in records {
            w.push_into(&schema::logbatch::LogRef::of(r), &mut frames);
        }
        if !w.is_empty() {
            frames.push(w.finish());
        }
        for f in frames {
            self.frame(f).await.map_err(OpError::failed)?;
        }
        Ok(())
    }

    /// Sends the stored records [`crate::logs::LogHub::send_stored`] reads,
    /// as they are read and credit allows.
    async fn stored(
        &mut self,
        since: Option<Since>,
        tail: Option<u64>,
        matcher: Option<Arc<crate::filter::Matcher>>,
    ) -> Result<crate::logs::Sent, OpError> {
        // A frame or two ahead of the credit: the reader waits on this
        // channel while the gateway has not taken earlier batches.
        let (ftx, mut frx) = mpsc::channel(2);
        let read = self
            .host
            .logs
            .send_stored(&self.app, since, tail, matcher, self.id, ftx);
        let this = &*self;
        // Owns the receiver: when sending fails, dropping it stops the read.
        let forward = async move {
            while let Some(f) = frx.recv().await {
                this.frame(f).await?;
            }
            Ok::<(), String>(())
        };
        let (read, forwarded) = tokio::join!(read, forward);
        forwarded.map_err(OpError::failed)?;
        read.map_err(|e| OpError::failed(e.to_string()))
    }
}

/// Chunks of artifacts being fetched, by digest.
type Fetches = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Incoming<GatewayMsg>>>>>;

async fn session(host: &Arc<Host>, cfg: &AgentConfig) -> Result<(), TunnelError> {
    let handle = ssh::connect(
        &cfg.target,
        &cfg.key,
        HostKeyPolicy::Pinned(cfg.pin.clone()),
    )
    .await?;
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| TunnelError::Protocol(e.to_string()))?;
    channel
        .request_subsystem(true, SUBSYSTEM)
        .await
        .map_err(|e| TunnelError::Protocol(e.to_string()))?;
    let (r, mut w) = tokio::io::split(channel.into_stream());
    let mut reader = FrameReader::new(r, MAX_TUNNEL_FRAME);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        while let Some(buf) = out_rx.recv().await {
            if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
                break;
            }
        }
    });
    let tx = Tx(out_tx);

    let apps = host
        .host_apps()
        .await
        .map_err(|e| TunnelError::Protocol(e.to_string()))?;
    let pending = host.unreported_actions().await.unwrap_or_default();
    let hb = host.heartbeat().await.ok();
    let hello = Hello {
        version: TUNNEL_PROTOCOL_VERSION,
        name: host.config.name.clone(),
        arch: std::env::consts::ARCH.to_string(),
        engine: host.compat().to_string(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        memory_bytes: hb.map(|h| h.memory_bytes).unwrap_or(0),
        labels: host.config.labels.clone(),
        apps,
        local_actions: pending.iter().map(|(_, a)| a.clone()).collect(),
    };
    tx.send(&HostMsg::Hello(hello)).await?;
    let welcome = tokio::time::timeout(Duration::from_secs(15), reader.next())
        .await
        .map_err(|_| TunnelError::Protocol("no answer to hello within 15 s".into()))??
        .ok_or(TunnelError::Closed)?;
    match tunnel::decode::<GatewayMsg>(welcome)? {
        Incoming::Msg(GatewayMsg::Welcome { version, gateway }) => {
            tracing::info!(gateway, version, "joined the fleet");
        }
        Incoming::Msg(GatewayMsg::Refused { reason }) => return Err(TunnelError::Refused(reason)),
        other => {
            return Err(TunnelError::Protocol(format!(
                "expected welcome, got {other:?}"
            )));
        }
    }
    if let Some((last, _)) = pending.last() {
        let _ = host.mark_reported(*last).await;
    }

    // Heartbeats, and local actions taken since the hello.
    {
        let (host, tx) = (host.clone(), tx.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
            loop {
                tick.tick().await;
                if let Ok(actions) = host.unreported_actions().await {
                    for (id, a) in actions {
                        if tx
                            .send(&HostMsg::Event(HostEvent::LocalAction(a)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                        let _ = host.mark_reported(id).await;
                    }
                }
                match host.heartbeat().await {
                    Ok(hb) => {
                        if tx.send(&HostMsg::Heartbeat(hb)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot build a heartbeat"),
                }
            }
        });
    }
    // Crash loops and failed health checks, as they happen.
    {
        let (mut rx, tx) = (host.subscribe_fleet_events(), tx.clone());
        tasks.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if tx.send(&HostMsg::Event(e)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    let fetches: Fetches = Arc::new(Mutex::new(HashMap::new()));
    // Logs requests in progress: their task, and the credit the gateway gave.
    let mut streams: HashMap<u64, (tokio::task::AbortHandle, Arc<tokio::sync::Semaphore>)> =
        HashMap::new();
    let gateway = cfg.target.host.clone();
    let result = loop {
        let frame = match reader.next().await {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(TunnelError::Protocol(e.to_string())),
        };
        let incoming = match tunnel::decode::<GatewayMsg>(frame) {
            Ok(i) => i,
            Err(e) => break Err(e.into()),
        };
        let msg = match incoming {
            Incoming::Chunk(c) => {
                route_fetch(&fetches, &c.digest.clone(), Incoming::Chunk(c));
                continue;
            }
            Incoming::Msg(m) => m,
            Incoming::Logs(_) => {
                break Err(TunnelError::Protocol(
                    "gateways do not send log batches".into(),
                ));
            }
        };
        match msg {
            GatewayMsg::Stage {
                id,
                app: _,
                version,
                digest,
                size,
                manifest,
                by,
            } => {
                let (host, tx, fetches, gateway) =
                    (host.clone(), tx.clone(), fetches.clone(), gateway.clone());
                tasks.spawn(async move {
                    let r = stage(
                        &host, &tx, &fetches, &gateway, id, version, &digest, size, manifest, &by,
                    )
                    .await;
                    tx.reply(id, r.map(Some)).await;
                });
            }
            GatewayMsg::Activate {
                id,
                app,
                version,
                replicas,
                by,
            } => {
                let (host, tx) = (host.clone(), tx.clone());
                tasks.spawn(async move {
                    let r = host.activate_version(&by, &app, version, replicas).await;
                    tx.reply(id, r.map(|_| None).map_err(|e| e.to_string()))
                        .await;
                });
            }
            GatewayMsg::Scale {
                id,
                app,
                replicas,
                by,
            } => {
                let (host, tx) = (host.clone(), tx.clone());
                tasks.spawn(async move {
                    let r = host.scale(&by, &app, replicas).await;
                    tx.reply(id, r.map(|_| None).map_err(|e| e.to_string()))
                        .await;
                });
            }
            GatewayMsg::Remove { id, app, by } => {
                let (host, tx) = (host.clone(), tx.clone());
                tasks.spawn(async move {
                    let r = match host.rm(&by, &app).await {
                        Err(crate::host::HostError::UnknownApp(_)) => Ok(()),
                        other => other,
                    };
                    tx.reply(id, r.map(|_| None).map_err(|e| e.to_string()))
                        .await;
                });
            }
            GatewayMsg::Logs {
                id,
                app,
                since,
                tail,
                follow,
                filter,
                ago_ms,
            } => {
                let (host, tx) = (host.clone(), tx.clone());
                let since = match (since, ago_ms) {
                    (_, Some(ms)) => Some(Since::Ago(Duration::from_millis(ms))),
                    (Some(s), None) => Some(Since::Seq(s)),
                    (None, None) => None,
                };
                // Requests that ended are forgotten as new ones come.
                streams.retain(|_, (h, _)| !h.is_finished());
                let credit = Arc::new(tokio::sync::Semaphore::new(tunnel::LOGS_WINDOW as usize));
                let mut sink = LogSink {
                    host: host.clone(),
                    app: app.clone(),
                    tx: tx.clone(),
                    id,
                    credit: credit.clone(),
                    waited: Default::default(),
                };
                let h = tasks.spawn(async move {
                    if let Err(e) =
                        stream_logs(&host, &tx, &mut sink, id, &app, since, tail, follow, filter)
                            .await
                    {
                        tx.reply(id, Err(e)).await;
                    }
                });
                streams.insert(id, (h, credit));
            }
            GatewayMsg::Cancel { id } => {
                if let Some((h, credit)) = streams.remove(&id) {
                    credit.close();
                    h.abort();
                    tracing::debug!(id, "logs request cancelled");
                }
            }
            GatewayMsg::LogsCredit { id, batches } => {
                if let Some((_, credit)) = streams.get(&id) {
                    // Never more than a window ahead, whatever is claimed.
                    let room =
                        (tunnel::LOGS_WINDOW as usize).saturating_sub(credit.available_permits());
                    credit.add_permits((batches as usize).min(room));
                }
            }
            m @ (GatewayMsg::ChunkEnd { .. } | GatewayMsg::FetchFailed { .. }) => {
                let digest = match &m {
                    GatewayMsg::ChunkEnd { digest, .. }
                    | GatewayMsg::FetchFailed { digest, .. } => digest.clone(),
                    _ => unreachable!("matched above"),
                };
                route_fetch(&fetches, &digest, Incoming::Msg(m));
            }
            GatewayMsg::Welcome { .. } | GatewayMsg::Refused { .. } => {
                break Err(TunnelError::Protocol("a second handshake message".into()));
            }
        }
    };
    tasks.abort_all();
    result
}

fn route_fetch(fetches: &Fetches, digest: &str, m: Incoming<GatewayMsg>) {
    if let Some(tx) = fetches
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(digest)
    {
        let _ = tx.send(m);
    }
}

/// Fetches the artifact if this host lacks it (resuming a cut fetch), then stages.
/// Reports a step of the request `id` to the gateway, typed and as text.
async fn progress(tx: &Tx, id: u64, step: Step) -> Result<(), TunnelError> {
    let line = step.to_string();
    tx.send(&HostMsg::Progress {
        id,
        line,
        step: Some(step),
    })
    .await
}

#[allow(clippy::too_many_arguments)]
async fn stage(
    host: &Arc<Host>,
    tx: &Tx,
    fetches: &Fetches,
    gateway: &str,
    id: u64,
    version: schema::Version,
    digest: &str,
    size: u64,
    manifest: schema::Manifest,
    by: &str,
) -> Result<u64, String> {
    if !host.has_artifact(digest) {
        fetch(host, tx, fetches, id, digest, size).await?;
    } else {
        let _ = progress(tx, id, Step::ArtifactHere).await;
    }
    let ms = host
        .stage(gateway, by, version, manifest, digest)
        .await
        .map_err(|e| e.to_string())?;
    let _ = progress(tx, id, Step::Compiled { ms }).await;
    Ok(ms)
}

async fn fetch(
    host: &Arc<Host>,
    tx: &Tx,
    fetches: &Fetches,
    id: u64,
    digest: &str,
    size: u64,
) -> Result<(), String> {
    use tokio::io::AsyncWriteExt as _;
    let part = host
        .partial_artifact_path(digest)
        .map_err(|e| e.to_string())?;
    let mut offset = tokio::fs::metadata(&part)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    if offset > size {
        let _ = tokio::fs::remove_file(&part).await;
        offset = 0;
    }
    let (chunks_tx, mut chunks) = mpsc::unbounded_channel();
    fetches
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(digest.to_string(), chunks_tx);
    struct Unregister<'a>(&'a Fetches, &'a str);
    impl Drop for Unregister<'_> {
        fn drop(&mut self) {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(self.1);
        }
    }
    let _unregister = Unregister(fetches, digest);
    progress(tx, id, Step::Fetching { offset, size })
        .await
        .map_err(|e| e.to_string())?;
    tx.send(&HostMsg::Fetch {
        digest: digest.to_string(),
        offset,
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .await
        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    let mut next_report = offset + size / 4;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(60), chunks.recv())
            .await
            .map_err(|_| "the artifact stopped arriving for 60 s".to_string())?
            .ok_or("the tunnel closed during the fetch")?;
        match m {
            Incoming::Chunk(Chunk {
                offset: o, data, ..
            }) => {
                if o != offset {
                    return Err(format!("artifact chunk at {o}, expected {offset}"));
                }
                file.write_all(&data).await.map_err(|e| e.to_string())?;
                offset += data.len() as u64;
                if offset >= next_report && offset < size {
                    next_report = offset + size / 4;
                    let percent = offset * 100 / size.max(1);
                    let _ = progress(tx, id, Step::Fetched { percent }).await;
                }
            }
            Incoming::Msg(GatewayMsg::ChunkEnd { total, .. }) => {
                file.flush().await.map_err(|e| e.to_string())?;
                file.sync_all().await.map_err(|e| e.to_string())?;
                if total != offset {
                    return Err(format!(
                        "the artifact ended at {offset} bytes, expected {total}"
                    ));
                }
                break;
            }
            Incoming::Msg(GatewayMsg::FetchFailed { reason, .. }) => {
                return Err(format!("the gateway cannot send the artifact: {reason}"));
            }
            Incoming::Msg(_) | Incoming::Logs(_) => {}
        }
    }
    drop(file);
    host.adopt_fetched(digest)
        .await
        .map_err(|e| e.to_string())?;
    let _ = progress(tx, id, Step::FetchChecked).await;
    Ok(())
}

/// Sends an app's records for a logs request: the stored ones, streamed
/// from the store as binary batches while they are read, then (when
/// following) new ones as they are committed.
#[allow(clippy::too_many_arguments)]
async fn stream_logs(
    host: &Arc<Host>,
    tx: &Tx,
    sink: &mut LogSink,
    id: u64,
    app: &str,
    since: Option<Since>,
    tail: Option<u64>,
    follow: bool,
    filter: Option<String>,
) -> Result<(), String> {
    // The filter runs here, where the records are: only matches cross the tunnel.
    let matcher = follow::matcher(filter.as_deref()).map_err(|e| e.to_string())?;
    host.check_app(app).await.map_err(|e| e.to_string())?;
    let req = follow::Request {
        app,
        since,
        tail,
        follow,
        matcher,
    };
    // The request ends when the gateway cancels it (the task is dropped).
    let counts = follow::run(&host.logs, req, sink, std::future::pending())
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!(
        id,
        app,
        sent = counts.sent,
        skipped = counts.skipped,
        filter = filter.as_deref().unwrap_or(""),
        "logs request answered"
    );
    if !follow {
        let _ = tx.send(&HostMsg::LogsEnd { id }).await;
    }
    Ok(())
}
