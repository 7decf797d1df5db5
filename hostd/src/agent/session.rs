//! One tunnel session, from dialling the gateway to the tunnel's close.
//!
//! The session opens the tunnel subsystem, says hello and waits for the
//! welcome, then runs its tasks side by side: one writer that owns the
//! channel's write half (every other task sends it frames through [`Tx`]),
//! the heartbeat (with local actions taken since the hello), the host's
//! fleet events as they happen, and one task per request of the gateway.
//! The reader ([`Requests::serve`]) reads frames and only dispatches them:
//! it never waits for a request to finish. When it ends, every task of the
//! session is aborted.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schema::Actor;
use schema::tunnel::{
    self, GatewayMsg, HEARTBEAT_SECS, Hello, HostEvent, HostMsg, Incoming, MAX_TUNNEL_FRAME,
    SUBSYSTEM, TUNNEL_PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use super::fetch::{self, Fetches, StageRequest};
use super::logs::{self, Streams};
use super::{AgentConfig, TunnelError, Tx};
use crate::connection::FrameReader;
use crate::host::Host;
use ssh_client::{self as ssh, HostKeyPolicy};

/// Serves one tunnel until it closes (`Ok`) or fails.
pub(super) async fn session(host: &Arc<Host>, cfg: &AgentConfig) -> Result<(), TunnelError> {
    let (stream, target) = open(cfg).await?;
    let (r, w) = tokio::io::split(stream);
    let mut reader = FrameReader::new(r, MAX_TUNNEL_FRAME);
    let mut tasks = JoinSet::new();
    let tx = spawn_writer(&mut tasks, w);
    handshake(host, &tx, &mut reader).await?;
    cfg.tunnel.joined();
    spawn_heartbeats(&mut tasks, host.clone(), tx.clone());
    spawn_fleet_events(&mut tasks, host, tx.clone());
    let mut requests = Requests {
        host: host.clone(),
        tx,
        tasks,
        fetches: Arc::new(Mutex::new(HashMap::new())),
        logs: Streams::default(),
        gateway: target.host.clone(),
    };
    let result = requests.serve(&mut reader).await;
    requests.tasks.abort_all();
    result
}

/// Dials the first gateway that answers and opens the tunnel subsystem on
/// a session channel.
async fn open(
    cfg: &AgentConfig,
) -> Result<(impl AsyncRead + AsyncWrite + use<>, ssh::Target), TunnelError> {
    let (handle, target) = ssh::connect_first(
        &cfg.targets,
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
    Ok((channel.into_stream(), target))
}

/// The task that owns the write half: frames sent on the [`Tx`] it
/// returns are written in order.
fn spawn_writer<W>(tasks: &mut JoinSet<()>, mut w: W) -> Tx
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    tasks.spawn(async move {
        while let Some(buf) = out_rx.recv().await {
            if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
                break;
            }
        }
    });
    Tx(out_tx)
}

/// Says hello and waits for the welcome; the local actions the hello
/// carried are then marked reported.
async fn handshake<R>(
    host: &Arc<Host>,
    tx: &Tx,
    reader: &mut FrameReader<R>,
) -> Result<(), TunnelError>
where
    R: AsyncRead + Unpin,
{
    let (hello, reported) = hello(host).await?;
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
    if let Some(last) = reported {
        let _ = host.mark_reported(last).await;
    }
    Ok(())
}

/// What this host is and runs, with the local actions not yet reported
/// (and the id of the last of them).
async fn hello(host: &Arc<Host>) -> Result<(Hello, Option<i64>), TunnelError> {
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
    Ok((hello, pending.last().map(|(id, _)| *id)))
}

/// Heartbeats, and local actions taken since the hello.
fn spawn_heartbeats(tasks: &mut JoinSet<()>, host: Arc<Host>, tx: Tx) {
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

/// Crash loops and failed health checks, as they happen.
fn spawn_fleet_events(tasks: &mut JoinSet<()>, host: &Arc<Host>, tx: Tx) {
    let mut rx = host.subscribe_fleet_events();
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

/// The gateway's requests: each runs in a task of its own and replies
/// through the writer, so the reader is free for the next frame.
struct Requests {
    host: Arc<Host>,
    tx: Tx,
    tasks: JoinSet<()>,
    fetches: Fetches,
    logs: Streams,
    /// The gateway's address, recorded with what it stages.
    gateway: String,
}

impl Requests {
    /// Reads frames until the tunnel closes; an unexpected one ends it.
    async fn serve<R>(&mut self, reader: &mut FrameReader<R>) -> Result<(), TunnelError>
    where
        R: AsyncRead + Unpin,
    {
        while let Some(frame) = reader.next().await? {
            match tunnel::decode::<GatewayMsg>(frame)? {
                Incoming::Chunk(c) => {
                    fetch::route(&self.fetches, &c.digest.clone(), Incoming::Chunk(c));
                }
                Incoming::Msg(m) => self.handle(m)?,
                Incoming::Logs(_) => {
                    return Err(TunnelError::Protocol(
                        "gateways do not send log batches".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Runs `work` in a task and sends its result as the reply to `id`.
    fn answer<F>(&mut self, id: u64, work: F)
    where
        F: Future<Output = Result<Option<u64>, String>> + Send + 'static,
    {
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let r = work.await;
            tx.reply(id, r).await;
        });
    }

    /// Like [`answer`](Self::answer), the success carrying a message.
    fn answer_message<F>(&mut self, id: u64, work: F)
    where
        F: Future<Output = Result<String, String>> + Send + 'static,
    {
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let r = work.await;
            tx.reply_message(id, r.map(|m| (None, m))).await;
        });
    }

    fn handle(&mut self, msg: GatewayMsg) -> Result<(), TunnelError> {
        let host = self.host.clone();
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
                let req = StageRequest {
                    id,
                    version,
                    digest,
                    size,
                    manifest,
                    by,
                };
                let (tx, fetches, gateway) =
                    (self.tx.clone(), self.fetches.clone(), self.gateway.clone());
                self.answer(id, async move {
                    fetch::stage(&host, &tx, &fetches, &gateway, req)
                        .await
                        .map(Some)
                });
            }
            GatewayMsg::Activate {
                id,
                app,
                version,
                replicas,
                by,
            } => self.answer(id, async move {
                let r = host.activate_version(&by, &app, version, replicas).await;
                r.map(|_| None).map_err(|e| e.to_string())
            }),
            GatewayMsg::Canary {
                id,
                app,
                version,
                share,
                sticky,
                gate,
                failed,
                by,
            } => self.answer(id, async move {
                let r = host
                    .canary_share(&by, &app, version, share, sticky, &gate, failed.as_deref())
                    .await;
                r.map(|_| None).map_err(|e| e.to_string())
            }),
            GatewayMsg::Restart { id, app, by } => self.answer(id, async move {
                let r = host.restart(&Actor::Key(by), &app).await;
                r.map(|_| None).map_err(|e| e.to_string())
            }),
            GatewayMsg::Scale {
                id,
                app,
                replicas,
                by,
            } => self.answer(id, async move {
                let r = host.scale(&Actor::Key(by), &app, replicas).await;
                r.map(|_| None).map_err(|e| e.to_string())
            }),
            GatewayMsg::Kv { id, by, argv } => self.answer_message(id, async move {
                let args = match schema::command::CommandLine::parse_argv(&argv) {
                    Ok(schema::command::CommandLine {
                        command: schema::command::Command::Kv(a),
                        ..
                    }) => a,
                    Ok(_) => return Err("not a kv command".to_string()),
                    Err(e) => return Err(format!("kv: {}", e.kind())),
                };
                let o = host
                    .kv(&Actor::Key(by), &args)
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::to_string(&o).map_err(|e| e.to_string())
            }),
            GatewayMsg::Remove { id, app, by } => self.answer(id, async move {
                let r = match host.rm(&Actor::Key(by), &app).await {
                    Err(crate::host::HostError::UnknownApp(_)) => Ok(()),
                    other => other,
                };
                r.map(|_| None).map_err(|e| e.to_string())
            }),
            GatewayMsg::Logs {
                id,
                app,
                since,
                tail,
                follow,
                filter,
                ago_ms,
            } => {
                let req = logs::Request {
                    id,
                    app,
                    since: logs::since(since, ago_ms),
                    tail,
                    follow,
                    filter,
                };
                self.logs.start(&mut self.tasks, &host, &self.tx, req);
            }
            GatewayMsg::Cancel { id } => self.logs.cancel(id),
            GatewayMsg::LogsCredit { id, batches } => self.logs.credit(id, batches),
            GatewayMsg::ChunkEnd { ref digest, .. }
            | GatewayMsg::FetchFailed { ref digest, .. } => {
                let digest = digest.clone();
                fetch::route(&self.fetches, &digest, Incoming::Msg(msg));
            }
            GatewayMsg::Welcome { .. } | GatewayMsg::Refused { .. } => {
                return Err(TunnelError::Protocol("a second handshake message".into()));
            }
        }
        Ok(())
    }
}
