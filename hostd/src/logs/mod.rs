//! Log records: made from every line an instance writes, numbered per app,
//! kept in a bounded store that survives restarts, and pushed to followers.
//!
//! The path of a line: the guest writes to stdout → [`capture::LineSplitter`]
//! cuts it into lines → a queue bounded by bytes (never blocks the guest;
//! past [`QUEUE_BYTES`] of waiting text, the app's lines are counted as
//! dropped and a `system` record says so; `system` records themselves —
//! start, exit, switch, scale, drops — are never dropped) → the writer
//! thread numbers them, commits a batch to `logs.db` and only then publishes
//! them to followers. A follower therefore never sees a record that a
//! restart could lose, and `--since SEQ` after a reconnect neither skips nor
//! repeats.

pub mod capture;
pub mod follow;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use schema::command::Since;
use schema::{LogRecord, Stream, Version};
use tokio::sync::{broadcast, oneshot};

use db::{Db, DbError, Durability};

pub use store::{DEFAULT_CAP_BYTES, Sent};

/// Bytes of app output waiting for the writer before new lines are
/// dropped (each line counts its text and [`ENTRY_COST`]).
pub const QUEUE_BYTES: usize = 16 << 20;
/// What a queued line costs besides its text.
const ENTRY_COST: usize = 96;
/// Records a follower may fall behind before it re-reads from the store.
const FOLLOW_BUFFER: usize = 4096;

/// One line on its way to the store.
#[derive(Debug, Clone)]
pub struct Entry {
    pub app: Arc<str>,
    pub release: Option<u32>,
    pub instance: Arc<str>,
    pub stream: Stream,
    pub time: i64,
    pub line: String,
    pub partial: bool,
}

/// A `system` record of `app`, now.
fn system_entry(app: &str, release: Option<Version>, instance: &str, line: String) -> Entry {
    Entry {
        app: app.into(),
        release: release.map(|v| v.0),
        instance: instance.into(),
        stream: Stream::System,
        time: schema::time::now_millis(),
        line,
        partial: false,
    }
}

enum Msg {
    /// A line, and the bytes it holds of the bounded queue (0: a system
    /// record, always queued).
    Line(Entry, usize),
    /// Reply once everything sent before has been committed.
    Flush(oneshot::Sender<()>),
    /// Forget an app's records (its sequence counter stays).
    Remove(Arc<str>, oneshot::Sender<()>),
}

/// The host's log system. Cheap to clone.
#[derive(Clone)]
pub struct LogHub {
    inner: Arc<Inner>,
}

struct Inner {
    host: String,
    path: std::path::PathBuf,
    tx: Sender<Msg>,
    /// Bytes of app lines queued for the writer (see [`QUEUE_BYTES`]).
    queued: std::sync::atomic::AtomicUsize,
    reader: Db,
    followers: Mutex<HashMap<Arc<str>, broadcast::Sender<Arc<LogRecord>>>>,
    dropped: Mutex<HashMap<Arc<str>, u64>>,
    dropped_total: AtomicU64,
    /// Lines dropped per app since start (`dropped` is emptied as the
    /// writer reports it), for `--metrics`.
    dropped_since_start: Mutex<HashMap<Arc<str>, u64>>,
}

impl LogHub {
    /// Opens `logs.db` under `dir` and starts the writer thread.
    pub fn open(dir: &Path, host: &str, cap_bytes: u64) -> Result<LogHub, DbError> {
        let path = dir.join("logs.db");
        let writer = store::open_writer(&path)?;
        let reader = Db::open(&path, schema::migrations::LOGS, Durability::Normal)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = Arc::new(Inner {
            host: host.to_string(),
            path: path.clone(),
            tx,
            queued: std::sync::atomic::AtomicUsize::new(0),
            reader,
            followers: Mutex::new(HashMap::new()),
            dropped: Mutex::new(HashMap::new()),
            dropped_total: AtomicU64::new(0),
            dropped_since_start: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || store::run_writer(writer, rx, weak, cap_bytes))
            .map_err(|e| DbError::Open {
                path,
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(LogHub { inner })
    }

    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// Queues a line. Never blocks: when the writer is behind by more than
    /// [`QUEUE_BYTES`], an app's line is counted as dropped and reported
    /// later; a `system` record is always queued.
    pub fn push(&self, e: Entry) {
        let bounded = e.stream != Stream::System;
        self.push_inner(e, bounded)
    }

    /// A record of one handled message: as many as the app handles, so
    /// bounded like an app's own lines (and not echoed to the daemon's log).
    pub fn message(&self, app: &str, release: Option<Version>, instance: &str, line: String) {
        let mut e = system_entry(app, release, instance, line);
        e.stream = Stream::Message;
        self.push_inner(e, true)
    }

    fn push_inner(&self, e: Entry, bounded: bool) {
        let cost = e.line.len() + ENTRY_COST;
        if bounded {
            let queued = self.inner.queued.fetch_add(cost, Ordering::AcqRel);
            if queued + cost > QUEUE_BYTES {
                self.inner.queued.fetch_sub(cost, Ordering::AcqRel);
                *self
                    .inner
                    .dropped_since_start
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(e.app.clone())
                    .or_default() += 1;
                *self
                    .inner
                    .dropped
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(e.app)
                    .or_default() += 1;
                self.inner.dropped_total.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        // The writer gone means the host is shutting down.
        let counted = if bounded { cost } else { 0 };
        let _ = self.inner.tx.send(Msg::Line(e, counted));
    }

    /// Bytes of app lines waiting for the writer.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Writes a `system` record about an app: what the platform did and why.
    pub fn system(
        &self,
        app: &str,
        release: Option<Version>,
        instance: &str,
        line: impl Into<String>,
    ) {
        let line = line.into();
        tracing::info!(app, release = ?release.map(|v| v.to_string()), instance, "{line}");
        self.push(system_entry(app, release, instance, line));
    }

    /// Lines dropped since start because the writer was behind.
    pub fn dropped_total(&self) -> u64 {
        self.inner.dropped_total.load(Ordering::Relaxed)
    }

    /// Lines of `app` dropped since start because the writer was behind.
    pub fn dropped_of(&self, app: &str) -> u64 {
        self.inner
            .dropped_since_start
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(app)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until every line pushed before this call is committed and published.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send_control(Msg::Flush(tx)).await {
            let _ = rx.await;
        }
    }

    /// Deletes an app's records; its sequence numbers are never reused.
    pub async fn remove_app(&self, app: &str) {
        let (tx, rx) = oneshot::channel();
        if self.send_control(Msg::Remove(app.into(), tx)).await {
            let _ = rx.await;
        }
    }

    async fn send_control(&self, msg: Msg) -> bool {
        // The queue is bounded by what app lines it admits: control messages
        // always get in.
        self.inner.tx.send(msg).is_ok()
    }

    /// Subscribes to an app's records as they are committed.
    pub fn subscribe(&self, app: &str) -> broadcast::Receiver<Arc<LogRecord>> {
        let mut f = self
            .inner
            .followers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        f.entry(app.into())
            .or_insert_with(|| broadcast::channel(FOLLOW_BUFFER).0)
            .subscribe()
    }

    /// Records of `app`, oldest first: those after `since` (a sequence number
    /// or an age), at most the last `tail` of them.
    pub async fn query(
        &self,
        app: &str,
        since: Option<Since>,
        tail: Option<u64>,
    ) -> Result<Vec<LogRecord>, DbError> {
        let app = app.to_string();
        let host = self.inner.host.clone();
        self.inner
            .reader
            .call(move |c| store::query(c, &host, &app, since, tail))
            .await
    }

    /// Like [`LogHub::query`], with only the records `matcher` accepts:
    /// the last `tail` matching ones.
    pub async fn query_where(
        &self,
        app: &str,
        since: Option<Since>,
        tail: Option<u64>,
        matcher: Arc<crate::filter::Matcher>,
    ) -> Result<Vec<LogRecord>, DbError> {
        let app = app.to_string();
        let host = self.inner.host.clone();
        self.inner
            .reader
            .call(move |c| {
                store::query_matching(c, &host, &app, since, tail, &|page| matcher.retain(page))
            })
            .await
    }

    /// Sends the stored records of `app` that [`LogHub::query`] or
    /// [`LogHub::query_where`] would return, as tunnel batch frames of the
    /// logs request `id`, into `sink`, oldest first. They are read a page at
    /// a time on a blocking thread with a connection of its own, so a big
    /// read streams (the first records leave while later ones are read) and
    /// a slow reader holds up neither other queries nor the WAL.
    pub async fn send_stored(
        &self,
        app: &str,
        since: Option<Since>,
        tail: Option<u64>,
        matcher: Option<Arc<crate::filter::Matcher>>,
        id: u64,
        sink: tokio::sync::mpsc::Sender<Vec<u8>>,
    ) -> Result<store::Sent, DbError> {
        let (path, host, app) = (
            self.inner.path.clone(),
            self.inner.host.clone(),
            app.to_string(),
        );
        // The request may be cancelled (its task dropped) while the read
        // goes on on its own thread: the read then stops at its next frame.
        struct StopOnDrop(Arc<AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let _guard = StopOnDrop(stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut c = store::open_reader(&path)?;
            let mut send =
                |frame: Vec<u8>| !stop.load(Ordering::Relaxed) && sink.blocking_send(frame).is_ok();
            match (matcher, tail) {
                // The last N *matching* records: read back from the newest.
                (Some(m), Some(n)) => {
                    let rs = store::query_matching(&mut c, &host, &app, since, Some(n), &|p| {
                        m.retain(p)
                    })?;
                    let mut w = schema::logbatch::LogBatchWriter::new(id, &app);
                    let mut frames = Vec::new();
                    for r in &rs {
                        w.push_into(&schema::logbatch::LogRef::of(r), &mut frames);
                    }
                    if !w.is_empty() {
                        frames.push(w.finish());
                    }
                    let _ = frames.into_iter().all(&mut send);
                    Ok(store::Sent {
                        last_read: rs.last().map(|r| r.seq),
                        records: rs.len() as u64,
                    })
                }
                (m, tail) => {
                    let Some(start) = store::start(&c, &app, since, tail)? else {
                        return Ok(store::Sent::default());
                    };
                    Ok(store::scan(
                        &c,
                        &host,
                        &app,
                        start,
                        m.as_deref(),
                        id,
                        &mut send,
                    )?)
                }
            }
        })
        .await
        .map_err(|_| DbError::Gone)?
    }

    /// The highest sequence number `app` has been given (0 if it never logged).
    pub async fn last_seq(&self, app: &str) -> Result<u64, DbError> {
        let app = app.to_string();
        self.inner
            .reader
            .call(move |c| store::last_seq(c, &app))
            .await
    }
}

impl Inner {
    fn publish(&self, records: Vec<LogRecord>) {
        let mut f = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_empty() {
            return;
        }
        for r in records {
            if let Some(tx) = f.get(r.app.as_str()) {
                // An error only means nobody follows this app any more.
                let _ = tx.send(Arc::new(r));
            }
        }
        f.retain(|_, tx| tx.receiver_count() > 0);
    }

    /// The writer took `bytes` of app lines off the queue.
    fn release_queued(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn take_dropped(&self) -> Vec<(Arc<str>, u64)> {
        let mut d = self.dropped.lock().unwrap_or_else(|p| p.into_inner());
        d.drain().collect()
    }
}
