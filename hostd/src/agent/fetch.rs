//! Staging a release the gateway sends: the artifact is fetched through
//! the tunnel when this host lacks it (in chunks, appended to a partial
//! file, so a cut fetch resumes where it stopped), checked against its
//! digest, then compiled for this CPU. Every step is reported to the
//! gateway as progress of the stage request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schema::progress::Step;
use schema::tunnel::{Chunk, GatewayMsg, HostMsg, Incoming};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{TunnelError, Tx};
use crate::host::Host;

/// Where a fetch's chunks, and its end or failure, are handed.
type FetchTx = mpsc::UnboundedSender<Incoming<GatewayMsg>>;

/// Chunks of artifacts being fetched, by digest.
pub(super) type Fetches = Arc<Mutex<HashMap<String, FetchTx>>>;

fn lock(fetches: &Fetches) -> std::sync::MutexGuard<'_, HashMap<String, FetchTx>> {
    fetches.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands a chunk, or a fetch's end or failure, to the fetch of `digest`
/// (dropped when no fetch of it is running).
pub(super) fn route(fetches: &Fetches, digest: &str, m: Incoming<GatewayMsg>) {
    if let Some(tx) = lock(fetches).get(digest) {
        let _ = tx.send(m);
    }
}

/// A stage request, as the gateway sent it.
pub(super) struct StageRequest {
    pub id: u64,
    pub version: schema::Version,
    pub digest: String,
    pub size: u64,
    pub manifest: schema::Manifest,
    pub by: String,
}

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

/// Fetches the artifact if this host lacks it (resuming a cut fetch), then
/// stages; the compile time in milliseconds.
pub(super) async fn stage(
    host: &Arc<Host>,
    tx: &Tx,
    fetches: &Fetches,
    gateway: &str,
    req: StageRequest,
) -> Result<u64, String> {
    let StageRequest {
        id,
        version,
        digest,
        size,
        manifest,
        by,
    } = req;
    if !host.has_artifact(&digest) {
        fetch(host, tx, fetches, id, &digest, size).await?;
    } else {
        let _ = progress(tx, id, Step::ArtifactHere).await;
    }
    let ms = host
        .stage(gateway, &by, version, manifest, &digest)
        .await
        .map_err(|e| e.to_string())?;
    let _ = progress(tx, id, Step::Compiled { ms }).await;
    Ok(ms)
}

/// Removes a fetch's chunk queue from [`Fetches`] when the fetch ends,
/// however it ends.
struct Registered<'a> {
    fetches: &'a Fetches,
    digest: &'a str,
}

impl<'a> Registered<'a> {
    fn new(
        fetches: &'a Fetches,
        digest: &'a str,
    ) -> (Self, mpsc::UnboundedReceiver<Incoming<GatewayMsg>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(fetches).insert(digest.to_string(), tx);
        (Registered { fetches, digest }, rx)
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(self.fetches).remove(self.digest);
    }
}

/// Where a fetch resumes: the length of the partial file, unless it is
/// longer than the artifact (then it is deleted and the fetch starts over).
async fn resume_offset(part: &Path, size: u64) -> u64 {
    let offset = tokio::fs::metadata(part)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    if offset > size {
        let _ = tokio::fs::remove_file(part).await;
        return 0;
    }
    offset
}

/// Fetches the artifact `digest` from the gateway into this host's store.
async fn fetch(
    host: &Arc<Host>,
    tx: &Tx,
    fetches: &Fetches,
    id: u64,
    digest: &str,
    size: u64,
) -> Result<(), String> {
    let part = host
        .partial_artifact_path(digest)
        .map_err(|e| e.to_string())?;
    let offset = resume_offset(&part, size).await;
    let (_registered, chunks) = Registered::new(fetches, digest);
    progress(tx, id, Step::Fetching { offset, size })
        .await
        .map_err(|e| e.to_string())?;
    tx.send(&HostMsg::Fetch {
        digest: digest.to_string(),
        offset,
    })
    .await
    .map_err(|e| e.to_string())?;
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .await
        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    receive(tx, id, chunks, file, offset, size).await?;
    host.adopt_fetched(digest)
        .await
        .map_err(|e| e.to_string())?;
    let _ = progress(tx, id, Step::FetchChecked).await;
    Ok(())
}

/// Appends the chunks that arrive to `file` until the gateway ends the
/// fetch, reporting every quarter; the file is synced before it returns.
async fn receive(
    tx: &Tx,
    id: u64,
    mut chunks: mpsc::UnboundedReceiver<Incoming<GatewayMsg>>,
    mut file: tokio::fs::File,
    mut offset: u64,
    size: u64,
) -> Result<(), String> {
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
                return Ok(());
            }
            Incoming::Msg(GatewayMsg::FetchFailed { reason, .. }) => {
                return Err(format!("the gateway cannot send the artifact: {reason}"));
            }
            Incoming::Msg(_) | Incoming::Logs(_) => {}
        }
    }
}
