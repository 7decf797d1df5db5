//! One follow-logs algorithm, for the agent (records to the gateway over
//! the tunnel) and the control socket (records to a local `hostd logs`).
//!
//! Following subscribes to the live feed *before* it reads the store, then
//! skips what it has already sent by sequence number: no record is missed
//! between the two, none is sent twice. A follower that falls behind the
//! live feed reads the gap back from the store instead of dropping it —
//! from the last record sent, and never from before what the store held
//! when the follow began (`floor`), so a lag right after the start does
//! not send the history again.

use std::future::Future;
use std::sync::Arc;

use ops::OpError;
use schema::LogRecord;
use schema::command::Since;
use tokio::sync::broadcast::error::RecvError;

use super::{LogHub, Sent};
use crate::filter::Matcher;

/// Live records gathered into one send at most.
const LIVE_BATCH: usize = 1024;

/// Compiles `--where` once (cranelift-jit), refusing a bad expression with
/// its position before any record is read.
pub fn matcher(filter: Option<&str>) -> Result<Option<Arc<Matcher>>, OpError> {
    Ok(ops::cmd::logs::check_filter(filter)?.map(|f| Arc::new(Matcher::new(f))))
}

/// Where a follow's records go.
pub trait RecordSink: Send {
    /// Sends the stored records of the app after `since`, at most the last
    /// `tail` that `matcher` accepts, and says what it read.
    fn stored(
        &mut self,
        since: Option<Since>,
        tail: Option<u64>,
        matcher: Option<Arc<Matcher>>,
    ) -> impl Future<Output = Result<Sent, OpError>> + Send;

    /// Sends live records (already filtered).
    fn live(&mut self, records: &[LogRecord]) -> impl Future<Output = Result<(), OpError>> + Send;
}

/// What one logs request asks for.
pub struct Request<'a> {
    pub app: &'a str,
    pub since: Option<Since>,
    pub tail: Option<u64>,
    pub follow: bool,
    pub matcher: Option<Arc<Matcher>>,
}

/// How many records a request sent, and how many live ones its filter
/// left out.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub sent: u64,
    pub skipped: u64,
}

/// Sends the stored records, then (following) the live ones until the feed
/// closes or `stop` resolves.
pub async fn run<S: RecordSink>(
    hub: &LogHub,
    req: Request<'_>,
    sink: &mut S,
    stop: impl Future<Output = ()>,
) -> Result<Counts, OpError> {
    let floor = if req.follow {
        hub.last_seq(req.app).await.unwrap_or(0)
    } else {
        0
    };
    let mut live = req.follow.then(|| hub.subscribe(req.app));
    let read = sink
        .stored(req.since, req.tail, req.matcher.clone())
        .await?;
    let mut last = match req.since {
        Some(Since::Seq(s)) => s,
        _ => 0,
    };
    last = last.max(read.last_read.unwrap_or(0));
    let mut counts = Counts {
        sent: read.records,
        skipped: 0,
    };
    let Some(rx) = live.as_mut() else {
        return Ok(counts);
    };
    tokio::pin!(stop);
    loop {
        let mut batch = Vec::new();
        let next = tokio::select! {
            r = rx.recv() => r,
            () = &mut stop => return Ok(counts),
        };
        match next {
            Ok(r) => batch.push((*r).clone()),
            Err(RecvError::Lagged(_)) => {
                let gap = Some(Since::Seq(last.max(floor)));
                let read = sink.stored(gap, None, req.matcher.clone()).await?;
                last = last.max(read.last_read.unwrap_or(0));
                counts.sent += read.records;
                continue;
            }
            Err(RecvError::Closed) => return Ok(counts),
        }
        while batch.len() < LIVE_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push((*r).clone()),
                Err(_) => break,
            }
        }
        batch.retain(|r| r.seq > last);
        let Some(newest) = batch.last().map(|r| r.seq) else {
            continue;
        };
        last = newest;
        if let Some(m) = &req.matcher {
            let before = batch.len() as u64;
            m.retain(&mut batch);
            counts.skipped += before - batch.len() as u64;
            if batch.is_empty() {
                continue;
            }
        }
        counts.sent += batch.len() as u64;
        sink.live(&batch).await?;
    }
}
