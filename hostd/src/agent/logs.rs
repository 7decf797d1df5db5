//! Logs requests on the tunnel: the gateway asks for an app's records, the
//! host streams them as binary batches, a few ahead of the gateway's credit
//! ([`tunnel::LOGS_WINDOW`]), and more as the gateway says it took them.
//! A request ends with the stored records (not following), when the gateway
//! cancels it, or with the tunnel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use schema::command::Since;
use schema::tunnel::{self, HostMsg};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinSet};

use super::Tx;
use crate::host::Host;
use crate::logs::follow::{self, RecordSink};
use ops::OpError;

/// One logs request, as the gateway asked for it.
pub(super) struct Request {
    pub id: u64,
    pub app: String,
    pub since: Option<Since>,
    pub tail: Option<u64>,
    pub follow: bool,
    pub filter: Option<String>,
}

/// Where to start: `ago_ms` (a time) wins over `since` (a sequence number).
pub(super) fn since(seq: Option<u64>, ago_ms: Option<u64>) -> Option<Since> {
    match (seq, ago_ms) {
        (_, Some(ms)) => Some(Since::Ago(Duration::from_millis(ms))),
        (Some(s), None) => Some(Since::Seq(s)),
        (None, None) => None,
    }
}

/// Logs requests in progress: their task, and the credit the gateway gave.
#[derive(Default)]
pub(super) struct Streams {
    open: HashMap<u64, (AbortHandle, Arc<Semaphore>)>,
}

impl Streams {
    /// Starts answering `req` in a task of `tasks`.
    pub fn start(&mut self, tasks: &mut JoinSet<()>, host: &Arc<Host>, tx: &Tx, req: Request) {
        // Requests that ended are forgotten as new ones come.
        self.open.retain(|_, (h, _)| !h.is_finished());
        let credit = Arc::new(Semaphore::new(tunnel::LOGS_WINDOW as usize));
        let id = req.id;
        let mut sink = LogSink {
            host: host.clone(),
            app: req.app.clone(),
            tx: tx.clone(),
            id,
            credit: credit.clone(),
            waited: Default::default(),
        };
        let (host, tx) = (host.clone(), tx.clone());
        let h = tasks.spawn(async move {
            if let Err(e) = stream_logs(&host, &tx, &mut sink, req).await {
                tx.reply(id, Err(e)).await;
            }
        });
        self.open.insert(id, (h, credit));
    }

    /// The gateway gave up on a request.
    pub fn cancel(&mut self, id: u64) {
        if let Some((h, credit)) = self.open.remove(&id) {
            credit.close();
            h.abort();
            tracing::debug!(id, "logs request cancelled");
        }
    }

    /// The gateway took `batches` more of a request's batches.
    pub fn credit(&self, id: u64, batches: u32) {
        if let Some((_, credit)) = self.open.get(&id) {
            // Never more than a window ahead, whatever is claimed.
            let room = (tunnel::LOGS_WINDOW as usize).saturating_sub(credit.available_permits());
            credit.add_permits((batches as usize).min(room));
        }
    }
}

/// Where one logs request's batches go: the tunnel, as far as the
/// gateway's credit allows (see [`tunnel::LOGS_WINDOW`]).
struct LogSink {
    host: Arc<Host>,
    app: String,
    tx: Tx,
    id: u64,
    credit: Arc<Semaphore>,
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
            .send_raw(f)
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

/// Sends an app's records for a logs request: the stored ones, streamed
/// from the store as binary batches while they are read, then (when
/// following) new ones as they are committed.
async fn stream_logs(
    host: &Arc<Host>,
    tx: &Tx,
    sink: &mut LogSink,
    req: Request,
) -> Result<(), String> {
    let Request {
        id,
        app,
        since,
        tail,
        follow,
        filter,
    } = req;
    // The filter runs here, where the records are: only matches cross the tunnel.
    let matcher = follow::matcher(filter.as_deref()).map_err(|e| e.to_string())?;
    host.check_app(&app).await.map_err(|e| e.to_string())?;
    let req = follow::Request {
        app: &app,
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
