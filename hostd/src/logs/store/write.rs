//! The writer thread: lines arrive on a channel, are numbered per app,
//! cut into segments and committed a batch at a time; an app past its cap
//! loses its oldest segments; followers hear of records only once they
//! are committed.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Weak};

use rusqlite::{Connection, OptionalExtension, params};
use schema::logbatch::{LogRef, LogSegmentWriter};
use schema::{LogRecord, Stream, Version};

use super::segment::insert_segment;
use crate::logs::{Entry, Inner, Msg};

/// Most lines committed in one transaction.
const BATCH: usize = 4096;
/// How long the writer waits for more lines before committing a batch: a
/// transaction per line would cost more than the lines themselves.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

#[derive(Clone, Copy)]
pub(super) struct Usage {
    next_seq: u64,
    bytes: u64,
}

/// The writer loop: batch, number, commit, trim, publish.
pub fn run_writer(mut conn: Connection, rx: Receiver<Msg>, hub: Weak<Inner>, cap: u64) {
    let mut usage: HashMap<Arc<str>, Usage> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut lines = Vec::new();
        let mut taken = 0usize;
        let mut replies = Vec::new();
        let mut removes = Vec::new();
        let mut next = Some(first);
        let until = std::time::Instant::now() + LINGER;
        while let Some(m) = next {
            let control = !matches!(m, Msg::Line(..));
            match m {
                Msg::Line(e, counted) => {
                    taken += counted;
                    lines.push(e);
                }
                Msg::Flush(r) => replies.push(r),
                Msg::Remove(app, r) => removes.push((app, r)),
            }
            next = if lines.len() >= BATCH {
                None
            } else if control {
                // Someone waits on a flush or removal: commit now.
                rx.try_recv().ok()
            } else {
                rx.recv_timeout(until.saturating_duration_since(std::time::Instant::now()))
                    .ok()
            };
        }
        let Some(inner) = hub.upgrade() else { return };
        inner.release_queued(taken);
        for (app, n) in inner.take_dropped() {
            lines.push(Entry {
                app,
                release: None,
                instance: "hostd".into(),
                stream: Stream::System,
                time: schema::time::now_millis(),
                line: format!("{n} lines dropped: the log writer fell behind this app's output"),
                partial: false,
            });
        }
        match write_batch(&mut conn, &mut usage, &inner.host, lines, cap) {
            Ok(records) => inner.publish(records),
            Err(e) => {
                // Forget cached counters: the transaction rolled back.
                usage.clear();
                tracing::error!(error = %e, "could not write log records; this batch is lost");
            }
        }
        for (app, reply) in removes {
            if let Err(e) = remove(&mut conn, &app) {
                tracing::error!(error = %e, app = %app, "could not delete log records");
            }
            usage.remove(&app);
            let _ = reply.send(());
        }
        for r in replies {
            let _ = r.send(());
        }
    }
}

fn load_usage(tx: &Connection, app: &str) -> rusqlite::Result<Usage> {
    Ok(tx
        .query_row(
            "SELECT next_seq, bytes FROM log_apps WHERE app = ?1",
            [app],
            |r| {
                Ok(Usage {
                    next_seq: r.get::<_, i64>(0)? as u64,
                    bytes: r.get::<_, i64>(1)? as u64,
                })
            },
        )
        .optional()?
        .unwrap_or(Usage {
            next_seq: 1,
            bytes: 0,
        }))
}

pub(super) fn write_batch(
    conn: &mut Connection,
    usage: &mut HashMap<Arc<str>, Usage>,
    host: &str,
    lines: Vec<Entry>,
    cap: u64,
) -> rusqlite::Result<Vec<LogRecord>> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let tx = conn.transaction()?;
    let mut out = Vec::with_capacity(lines.len());
    // Each app's records of this batch become its next segments.
    let mut open: Vec<(Arc<str>, LogSegmentWriter)> = Vec::new();
    for e in lines {
        let u = match usage.get_mut(&e.app) {
            Some(u) => u,
            None => {
                let u = load_usage(&tx, &e.app)?;
                usage.entry(e.app.clone()).or_insert(u)
            }
        };
        let seq = u.next_seq;
        u.next_seq += 1;
        let at = match open.iter().position(|(a, _)| *a == e.app) {
            Some(i) => i,
            None => {
                open.push((e.app.clone(), LogSegmentWriter::new()));
                open.len() - 1
            }
        };
        let w = &mut open[at].1;
        w.push(&LogRef {
            seq,
            time: e.time,
            release: e.release,
            instance: &e.instance,
            stream: e.stream,
            line: &e.line,
            partial: e.partial,
        });
        if w.is_full() {
            let full = std::mem::take(w).finish();
            u.bytes += insert_segment(&tx, &e.app, full)?;
        }
        out.push(LogRecord {
            seq,
            time: schema::time::rfc3339(e.time),
            host: host.to_string(),
            app: e.app.to_string(),
            release: e.release.map(Version),
            instance: e.instance.to_string(),
            stream: e.stream,
            line: e.line,
            partial: e.partial,
        });
    }
    for (app, w) in open {
        let u = usage.get_mut(&app).expect("apps written have usage");
        if !w.is_empty() {
            u.bytes += insert_segment(&tx, &app, w.finish())?;
        }
        if u.bytes > cap {
            u.bytes -= trim(&tx, &app, u.bytes - cap * 9 / 10)?;
        }
        tx.execute(
            "INSERT INTO log_apps (app, next_seq, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT(app) DO UPDATE SET next_seq = excluded.next_seq, bytes = excluded.bytes",
            params![&*app, u.next_seq as i64, u.bytes as i64],
        )?;
    }
    tx.commit()?;
    Ok(out)
}

/// Deletes an app's oldest segments until at least `excess` bytes are
/// freed; returns the bytes freed. Trimming to 90% of the cap at once keeps
/// this off the path of every batch.
fn trim(tx: &Connection, app: &str, excess: u64) -> rusqlite::Result<u64> {
    let mut freed = 0u64;
    let mut last = None;
    {
        let mut q = tx.prepare_cached(
            "SELECT first_seq, bytes FROM log_segments WHERE app = ?1 ORDER BY first_seq",
        )?;
        let mut rows = q.query([app])?;
        while let Some(r) = rows.next()? {
            freed += r.get::<_, i64>(1)? as u64;
            last = Some(r.get::<_, i64>(0)?);
            if freed >= excess {
                break;
            }
        }
    }
    if let Some(s) = last {
        tx.execute(
            "DELETE FROM log_segments WHERE app = ?1 AND first_seq <= ?2",
            params![app, s],
        )?;
    }
    Ok(freed)
}

pub(super) fn remove(conn: &mut Connection, app: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM log_segments WHERE app = ?1", [app])?;
    tx.execute("UPDATE log_apps SET bytes = 0 WHERE app = ?1", [app])?;
    tx.commit()
}

pub fn last_seq(c: &mut Connection, app: &str) -> rusqlite::Result<u64> {
    Ok(load_usage(c, app)?.next_seq.saturating_sub(1))
}
