//! `logs APP [-f]` through the gateway: the fan-in of an app's records from
//! every host that runs it.
//!
//! Each host streams its records as binary batches (`schema::logbatch`),
//! in sequence order, while it reads them from its store. Here they are
//! merged by time (a record keeps its host's order) and rendered straight
//! from the batches into the client's channel, 64 KiB at a time, without a
//! `LogRecord` per line. A `--where` filter travels to each host and runs
//! there, so only matching records cross the tunnels.
//!
//! Following (`-f`) first prints what is stored exactly as the bulk read
//! does (merged by time; `--tail N` is N in total), then what the hosts
//! write from there on, merged by time too: a record is held until every
//! other host has sent something as new, or for [`HOLD`] at most (a quiet
//! host does not stall the others), then printed in time order. A cut
//! tunnel resumes from the last sequence number seen from that host: no
//! gap, no duplicate.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ops::cmd::logs::{LogWriter, check_filter, effective_tail};
use ops::{Hangup, OpError, Reply, Sink};
use schema::command::{LogsArgs, Since};
use schema::logbatch::{Cursor, LogBatch};
use schema::tunnel::GatewayMsg;
use tokio::sync::mpsc;

use crate::fleet::Fleet;
use crate::tunnel::{LogItem, LogStream};

/// How long a followed record waits for the other hosts' records of the
/// same moment before it is printed anyway.
const HOLD: Duration = Duration::from_millis(300);
/// Records held for ordering at most; past it the oldest are printed at
/// once (memory stays bounded whatever the hosts send).
const MAX_HELD: usize = 65_536;

/// One host's answer to a logs request, read a batch at a time.
struct Source {
    host: String,
    conn: Arc<crate::tunnel::HostConn>,
    rx: LogStream,
    batches: VecDeque<LogBatch>,
    /// Position in the front batch.
    cur: Option<Cursor>,
    ended: bool,
    /// The newest sequence number the host sent.
    last_seq: Option<u64>,
}

impl Source {
    /// The time of the next record, waiting for the host when none is
    /// buffered; `None` once the host has sent everything (or failed,
    /// which goes to stderr).
    async fn head<S: Sink>(&mut self, out: &mut S) -> Option<i64> {
        loop {
            if let Some(b) = self.batches.front() {
                let cur = self.cur.get_or_insert_with(|| b.cursor());
                if let Some((r, _)) = b.read(cur) {
                    return Some(r.time);
                }
                self.batches.pop_front();
                self.cur = None;
                continue;
            }
            if self.ended {
                return None;
            }
            self.receive(out).await;
        }
    }

    async fn receive<S: Sink>(&mut self, out: &mut S) {
        match self.rx.recv().await {
            Some(LogItem::Batch(b)) => {
                self.last_seq = b.last_seq().or(self.last_seq);
                self.batches.push_back(b);
            }
            Some(LogItem::End) | None => self.ended = true,
            Some(LogItem::Error(e)) => {
                let _ = out
                    .send(Reply::Warning(format!("{}: {e}", self.host)))
                    .await;
                self.ended = true;
            }
        }
    }

    /// Reads the whole answer (a `--tail` answer is bounded).
    async fn receive_all<S: Sink>(&mut self, out: &mut S) {
        while !self.ended {
            self.receive(out).await;
        }
    }

    /// Records received and not yet printed.
    fn buffered(&self) -> usize {
        let mut rest = self.batches.iter();
        let front = match (rest.next(), &self.cur) {
            (Some(b), Some(c)) => b.remaining(c),
            (Some(b), None) => b.len(),
            (None, _) => 0,
        };
        front + rest.map(LogBatch::len).sum::<usize>()
    }
}

pub async fn logs<S: Sink>(
    fleet: &Arc<Fleet>,
    out: &mut S,
    a: &LogsArgs,
    hangup: Hangup,
) -> Result<(), OpError> {
    // Refuse a bad expression here, with its position, before any host sees it.
    check_filter(a.filter.as_deref())?;
    let placement = fleet.check_app(&a.app).await?;
    let hosts = fleet.hosts_with(&a.app, &placement);
    let (since_seq, ago_ms) = match a.since {
        Some(Since::Seq(s)) => (Some(s), None),
        Some(Since::Ago(d)) => (None, Some(d.as_millis() as u64)),
        None => (None, None),
    };
    let tail = effective_tail(a);
    if a.follow {
        return follow(fleet, out, a, hosts, since_seq, tail, ago_ms, hangup).await;
    }
    stored(fleet, out, a, &hosts, since_seq, tail, ago_ms)
        .await
        .map(|_| ())
}

/// Prints the stored records of `a.app` on `hosts`, merged by time, the
/// last `tail` of them in total. Returns, per host asked, the newest
/// sequence number it sent (None: it had nothing to send).
async fn stored<S: Sink>(
    fleet: &Arc<Fleet>,
    out: &mut S,
    a: &LogsArgs,
    hosts: &[String],
    since_seq: Option<u64>,
    tail: Option<u64>,
    ago_ms: Option<u64>,
) -> Result<HashMap<String, Option<u64>>, OpError> {
    // Ask every host at once; each streams its answer.
    let mut sources = Vec::new();
    for h in hosts {
        let Some(conn) = fleet.conn_of(h) else {
            continue;
        };
        let (app, filter) = (a.app.clone(), a.filter.clone());
        if let Ok(rx) = conn
            .logs(|id| GatewayMsg::Logs {
                id,
                app,
                since: since_seq,
                tail,
                follow: false,
                filter,
                ago_ms,
            })
            .await
        {
            sources.push(Source {
                host: h.clone(),
                conn,
                rx,
                batches: VecDeque::new(),
                cur: None,
                ended: false,
                last_seq: None,
            });
        }
    }
    // Each host sent at most `tail`; of the merged records, the last `tail`
    // are wanted, which takes every answer in full first.
    let mut skip = 0;
    if let Some(t) = tail {
        for s in &mut sources {
            s.receive_all(out).await;
        }
        let total: usize = sources.iter().map(Source::buffered).sum();
        skip = total.saturating_sub(t.min(usize::MAX as u64) as usize);
    }
    let mut p = LogWriter::new(out.log_format());
    let r = match merge(&mut sources, out, &mut p, skip).await {
        Ok(()) => p.flush(out).await.map_err(OpError::from),
        Err(e) => Err(e),
    };
    if r.is_err() {
        // The client went away: hosts still reading their stores can stop.
        for s in sources.iter().filter(|s| !s.ended) {
            s.conn.cancel_logs(s.rx.id).await;
        }
    }
    r.map(|()| sources.into_iter().map(|s| (s.host, s.last_seq)).collect())
}

/// Prints the sources' records merged by time (ties by host name), each
/// host's records in its own order, the first `skip` left out. The source
/// with the earliest record prints all of its batch's records that come
/// before every other source's next one in a row: with one host, or hosts
/// whose times do not interleave, that is a batch at a time.
async fn merge<S: Sink>(
    sources: &mut [Source],
    out: &mut S,
    p: &mut LogWriter,
    mut skip: usize,
) -> Result<(), OpError> {
    // Orders (time, host) pairs: earlier first, ties by host name.
    fn before(t: i64, host: &str, than: (i64, &str)) -> bool {
        t < than.0 || (t == than.0 && host < than.1)
    }
    let mut heads: Vec<(usize, i64)> = Vec::with_capacity(sources.len());
    loop {
        heads.clear();
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(r) = s.head(out).await {
                heads.push((i, r));
            }
        }
        let Some(&(best, _)) = heads
            .iter()
            .min_by(|a, b| (a.1, &sources[a.0].host).cmp(&(b.1, &sources[b.0].host)))
        else {
            return Ok(());
        };
        // The next record of any other source bounds this run.
        let bound = heads
            .iter()
            .filter(|h| h.0 != best)
            .map(|h| (h.1, sources[h.0].host.as_str()))
            .min();
        let bound = bound.map(|(t, h)| (t, h.to_string()));
        let Source {
            host, batches, cur, ..
        } = &mut sources[best];
        let (Some(b), Some(cur)) = (batches.front(), cur.as_mut()) else {
            continue;
        };
        while let Some((r, next)) = b.read(cur) {
            if let Some((t, h)) = &bound
                && !before(r.time, host, (*t, h))
            {
                break;
            }
            if skip > 0 {
                skip -= 1;
            } else {
                p.push_raw(host, &b.app, &r);
            }
            *cur = next;
            if p.is_full() {
                p.flush(out).await?;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn follow<S: Sink>(
    fleet: &Arc<Fleet>,
    out: &mut S,
    a: &LogsArgs,
    hosts: Vec<String>,
    since_seq: Option<u64>,
    tail: Option<u64>,
    ago_ms: Option<u64>,
    mut hangup: Hangup,
) -> Result<(), OpError> {
    // What is stored, as the bulk read prints it.
    let asked = stored(fleet, out, a, &hosts, since_seq, tail, ago_ms).await?;
    // Bounded: a slow client holds up the hosts' streams (and their
    // credit), not this process's memory.
    let (tx, mut rx) = mpsc::channel::<(Arc<str>, LogBatch)>(4);
    let mut tasks = tokio::task::JoinSet::new();
    for h in hosts {
        // Each host goes on after what it sent; one that had nothing
        // sends what it writes from now (everything after the same
        // start: none of it was printed); one that was away asks what
        // the command asked when it comes back.
        let start = match asked.get(&h) {
            Some(Some(last)) => (Some(*last), None, None),
            // `--tail 0`: nothing of the past, whatever it had.
            Some(None) if tail == Some(0) => (since_seq, Some(0), ago_ms),
            Some(None) => (since_seq, None, ago_ms),
            None => (since_seq, tail, ago_ms),
        };
        let (fleet, app, tx, filter) = (fleet.clone(), a.app.clone(), tx.clone(), a.filter.clone());
        tasks.spawn(follow_host(fleet, h, app, start, filter, tx));
    }
    drop(tx);
    let mut p = LogWriter::new(out.log_format());
    let mut order = Reorder {
        hosts: tasks.len(),
        ..Reorder::default()
    };
    loop {
        let wake = order.next_due();
        tokio::select! {
            r = rx.recv() => match r {
                Some((host, batch)) => {
                    order.add(host, batch);
                    // More that is already waiting joins the same round.
                    while let Ok((host, batch)) = rx.try_recv() {
                        order.add(host, batch);
                    }
                }
                None => {
                    order.release(&mut p, true);
                    p.flush(out).await?;
                    return Ok(());
                }
            },
            _ = sleep_until(wake) => {}
            _ = hangup.changed() => return Ok(()),
        }
        order.release(&mut p, false);
        p.flush(out).await?;
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Followed records waiting to be printed in time order.
#[derive(Default)]
struct Reorder {
    /// By (time, host, seq): the print order.
    held: BTreeMap<(i64, Arc<str>, u64), Held>,
    /// Per host, the time of the newest record it sent.
    marks: HashMap<Arc<str>, i64>,
    /// Hosts followed.
    hosts: usize,
}

struct Held {
    batch: Arc<LogBatch>,
    at: Cursor,
    arrived: tokio::time::Instant,
}

impl Reorder {
    fn add(&mut self, host: Arc<str>, batch: LogBatch) {
        let batch = Arc::new(batch);
        let now = tokio::time::Instant::now();
        let mut c = batch.cursor();
        while let Some((r, next)) = batch.read(&c) {
            let mark = self.marks.entry(host.clone()).or_insert(i64::MIN);
            *mark = (*mark).max(r.time);
            self.held.insert(
                (r.time, host.clone(), r.seq),
                Held {
                    batch: batch.clone(),
                    at: c,
                    arrived: now,
                },
            );
            c = next;
        }
    }

    /// When the earliest held record is due (printed even if another
    /// host has not caught up).
    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.held.first_key_value().map(|(_, h)| h.arrived + HOLD)
    }

    /// Prints, in time order, the records no other host can still come
    /// before: every other host sent something as new, or the record
    /// waited [`HOLD`]. `all` prints everything (the end).
    fn release(&mut self, p: &mut LogWriter, all: bool) {
        let now = tokio::time::Instant::now();
        loop {
            let over = self.held.len() > MAX_HELD;
            let Some(entry) = self.held.first_entry() else {
                break;
            };
            let (t, host, _) = entry.key();
            let caught_up = self
                .marks
                .iter()
                .filter(|(h, _)| *h != host)
                .all(|(_, m)| *m >= *t);
            let due = all
                || now >= entry.get().arrived + HOLD
                || caught_up && self.marks.len() >= self.hosts
                || over;
            if !due {
                break;
            }
            let ((_, host, _), h) = entry.remove_entry();
            if let Some((r, _)) = h.batch.read(&h.at) {
                p.push_raw(&host, &h.batch.app, &r);
            }
        }
    }
}

/// Follows one host's records of `app`, across tunnel cuts.
#[allow(clippy::too_many_arguments)]
async fn follow_host(
    fleet: Arc<Fleet>,
    host: String,
    app: String,
    (since, tail, ago_ms): (Option<u64>, Option<u64>, Option<u64>),
    filter: Option<String>,
    tx: mpsc::Sender<(Arc<str>, LogBatch)>,
) {
    let name: Arc<str> = host.as_str().into();
    let mut last: Option<u64> = since;
    // Until a record arrives, a new request asks what the first asked
    // (a reconnect then neither replays the whole store nor skips the tail).
    let mut first = true;
    let mut connects = fleet.subscribe_connects();
    loop {
        if let Some(conn) = fleet.conn_of(&host) {
            let (since, tail, ago) = if first {
                (last, tail, ago_ms)
            } else {
                (last, None, None)
            };
            let (app2, filter2) = (app.clone(), filter.clone());
            if let Ok(mut rx) = conn
                .logs(|id| GatewayMsg::Logs {
                    id,
                    app: app2,
                    since,
                    tail,
                    follow: true,
                    filter: filter2,
                    ago_ms: ago,
                })
                .await
            {
                loop {
                    tokio::select! {
                        item = rx.recv() => match item {
                            Some(LogItem::Batch(mut b)) => {
                                if let Some(l) = last {
                                    b.skip_through(l);
                                }
                                let Some(newest) = b.last_seq() else { continue };
                                last = Some(newest);
                                first = false;
                                if tx.send((name.clone(), b)).await.is_err() {
                                    conn.cancel_logs(rx.id).await;
                                    return;
                                }
                            }
                            Some(LogItem::End) | Some(LogItem::Error(_)) | None => break,
                        },
                        _ = tx.closed() => {
                            conn.cancel_logs(rx.id).await;
                            return;
                        }
                    }
                }
            }
        }
        // Wait for this host to come back, then resume after `last`.
        loop {
            tokio::select! {
                r = connects.recv() => match r {
                    Ok(h) if h == host => break,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(_) => return,
                },
                _ = tx.closed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::logbatch::{LogBatchWriter, LogRef};

    fn batch(host_seq: u64, n: u64, time: i64) -> LogBatch {
        let mut w = LogBatchWriter::new(1, "a");
        for i in 0..n {
            w.push(&LogRef {
                seq: host_seq + i,
                time: time + i as i64,
                release: Some(1),
                instance: "a.1",
                stream: schema::Stream::Stdout,
                line: "x",
                partial: false,
            });
        }
        let frame = w.finish();
        let (f, _) = schema::frame::decode(&frame, schema::tunnel::MAX_TUNNEL_FRAME)
            .expect("a frame")
            .expect("whole");
        LogBatch::decode(&f.body).expect("a batch")
    }

    /// A host that floods while another never speaks: what waits for the
    /// silent one stays at the ceiling, the rest is printed.
    #[test]
    fn records_held_for_ordering_are_bounded_whatever_one_host_sends() {
        let mut order = Reorder {
            hosts: 2,
            ..Reorder::default()
        };
        let mut p = LogWriter::new(ops::LogFormat::Text);
        let loud: Arc<str> = "loud".into();
        let mut sent = 0u64;
        for b in 0..40 {
            order.add(loud.clone(), batch(sent + 1, 4096, b * 10_000));
            sent += 4096;
            order.release(&mut p, false);
            assert!(
                order.held.len() <= MAX_HELD,
                "{} held after {sent}",
                order.held.len()
            );
        }
        assert!(sent as usize > MAX_HELD * 2);
        order.release(&mut p, true);
        assert!(order.held.is_empty());
    }
}
