//! `logs.db`: the writer thread and the queries.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Weak};

use rusqlite::{Connection, OptionalExtension, params};
use schema::command::Since;
use schema::{LogRecord, Stream, Version};

use super::{Entry, Inner, Msg};
use crate::db::{DbError, Durability, migrate, open_connection};

/// Default bound of one app's records: the oldest go first past it.
pub const DEFAULT_CAP_BYTES: u64 = 64 << 20;
/// What a record costs besides its text (row, index, metadata), so that the
/// cap tracks the file size and not only the text.
const ROW_OVERHEAD: u64 = 64;
/// Most lines committed in one transaction.
const BATCH: usize = 4096;
/// How long the writer waits for more lines before committing a batch: a
/// transaction per line would cost more than the lines themselves.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

pub fn open_writer(path: &Path) -> Result<Connection, DbError> {
    let mut c = open_connection(path, Durability::Normal)?;
    migrate(&mut c, path, schema::migrations::LOGS)?;
    Ok(c)
}

/// A connection for one bulk read: read-only, without SQLite's own mutex
/// (it is used by one thread), the file mapped rather than copied in.
pub fn open_reader(path: &Path) -> Result<Connection, DbError> {
    use rusqlite::OpenFlags;
    let err = |source| DbError::Open {
        path: path.to_path_buf(),
        source,
    };
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    c.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    c.execute_batch("PRAGMA mmap_size = 268435456;")
        .map_err(err)?;
    Ok(c)
}

#[derive(Clone, Copy)]
struct Usage {
    next_seq: u64,
    bytes: u64,
}

/// The writer loop: batch, number, commit, trim, publish.
pub fn run_writer(mut conn: Connection, rx: Receiver<Msg>, hub: Weak<Inner>, cap: u64) {
    let mut usage: HashMap<Arc<str>, Usage> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut lines = Vec::new();
        let mut replies = Vec::new();
        let mut removes = Vec::new();
        let mut next = Some(first);
        let until = std::time::Instant::now() + LINGER;
        while let Some(m) = next {
            let control = !matches!(m, Msg::Line(_));
            match m {
                Msg::Line(e) => lines.push(e),
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

fn write_batch(
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
    let mut touched: Vec<Arc<str>> = Vec::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO log_records (app, seq, time, release, instance, stream, line, partial, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for e in lines {
            let u = match usage.get_mut(&e.app) {
                Some(u) => u,
                None => {
                    let u = load_usage(&tx, &e.app)?;
                    usage.entry(e.app.clone()).or_insert(u)
                }
            };
            let seq = u.next_seq;
            let bytes = e.line.len() as u64 + ROW_OVERHEAD;
            u.next_seq += 1;
            u.bytes += bytes;
            insert.execute(params![
                &*e.app,
                seq as i64,
                e.time,
                e.release,
                &*e.instance,
                e.stream.as_str(),
                &e.line,
                e.partial,
                bytes as i64
            ])?;
            if !touched.contains(&e.app) {
                touched.push(e.app.clone());
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
    }
    for app in &touched {
        let u = usage.get_mut(app).expect("touched apps have usage");
        if u.bytes > cap {
            u.bytes -= trim(&tx, app, u.bytes - cap * 9 / 10)?;
        }
        tx.execute(
            "INSERT INTO log_apps (app, next_seq, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT(app) DO UPDATE SET next_seq = excluded.next_seq, bytes = excluded.bytes",
            params![&**app, u.next_seq as i64, u.bytes as i64],
        )?;
    }
    tx.commit()?;
    Ok(out)
}

/// Deletes an app's oldest records until at least `excess` bytes are freed;
/// returns the bytes freed. Trimming to 90% of the cap at once keeps this off
/// the path of every batch.
fn trim(tx: &Connection, app: &str, excess: u64) -> rusqlite::Result<u64> {
    let mut freed = 0u64;
    let mut last_seq = None;
    {
        let mut q =
            tx.prepare_cached("SELECT seq, bytes FROM log_records WHERE app = ?1 ORDER BY seq")?;
        let mut rows = q.query([app])?;
        while let Some(r) = rows.next()? {
            freed += r.get::<_, i64>(1)? as u64;
            last_seq = Some(r.get::<_, i64>(0)?);
            if freed >= excess {
                break;
            }
        }
    }
    if let Some(s) = last_seq {
        tx.execute(
            "DELETE FROM log_records WHERE app = ?1 AND seq <= ?2",
            params![app, s],
        )?;
    }
    Ok(freed)
}

fn remove(conn: &mut Connection, app: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM log_records WHERE app = ?1", [app])?;
    tx.execute("UPDATE log_apps SET bytes = 0 WHERE app = ?1", [app])?;
    tx.commit()
}

fn row_to_record(host: &str, app: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<LogRecord> {
    row_to_record_at(host, app, r, r.get(1)?)
}

fn row_to_record_at(
    host: &str,
    app: &str,
    r: &rusqlite::Row<'_>,
    time: i64,
) -> rusqlite::Result<LogRecord> {
    let stream: String = r.get(4)?;
    Ok(LogRecord {
        seq: r.get::<_, i64>(0)? as u64,
        time: schema::time::rfc3339(time),
        host: host.to_string(),
        app: app.to_string(),
        release: r.get::<_, Option<u32>>(2)?.map(Version),
        instance: r.get(3)?,
        stream: stream.parse().unwrap_or(Stream::System),
        line: r.get(5)?,
        partial: r.get(6)?,
    })
}

pub fn query(
    c: &mut Connection,
    host: &str,
    app: &str,
    since: Option<Since>,
    tail: Option<u64>,
) -> rusqlite::Result<Vec<LogRecord>> {
    const COLS: &str = "seq, time, release, instance, stream, line, partial";
    let (cond, bound): (&str, i64) = match since {
        Some(Since::Seq(s)) => ("seq > ?2", s.min(i64::MAX as u64) as i64),
        Some(Since::Ago(d)) => (
            "time >= ?2",
            schema::time::now_millis() - d.as_millis() as i64,
        ),
        None => ("seq > ?2", 0),
    };
    let limit = tail.map(|t| t.min(i64::MAX as u64) as i64).unwrap_or(-1);
    // With a tail, take the newest N and put them back in order.
    let sql = if tail.is_some() {
        format!(
            "SELECT * FROM (SELECT {COLS} FROM log_records WHERE app = ?1 AND {cond} ORDER BY seq DESC LIMIT ?3) ORDER BY seq"
        )
    } else {
        format!("SELECT {COLS} FROM log_records WHERE app = ?1 AND {cond} ORDER BY seq LIMIT ?3")
    };
    let mut q = c.prepare_cached(&sql)?;
    let rows = q.query_map(params![app, bound, limit], |r| row_to_record(host, app, r))?;
    rows.collect()
}

/// Records per page when a filter reads the store.
const PAGE: i64 = 4096;

/// Like [`query`], keeping only records `keep` accepts: the last `tail`
/// *matching* records, read in pages from the newest back, so a rare match
/// costs a scan, not a copy of the whole store.
pub fn query_matching(
    c: &mut Connection,
    host: &str,
    app: &str,
    since: Option<Since>,
    tail: Option<u64>,
    keep: &dyn Fn(&mut Vec<LogRecord>),
) -> rusqlite::Result<Vec<LogRecord>> {
    const COLS: &str = "seq, time, release, instance, stream, line, partial";
    let (cond, bound): (&str, i64) = match since {
        Some(Since::Seq(s)) => ("seq > ?2", s.min(i64::MAX as u64) as i64),
        Some(Since::Ago(d)) => (
            "time >= ?2",
            schema::time::now_millis() - d.as_millis() as i64,
        ),
        None => ("seq > ?2", 0),
    };
    let mut out: Vec<LogRecord> = Vec::new();
    match tail {
        None => {
            let sql = format!(
                "SELECT {COLS} FROM log_records WHERE app = ?1 AND {cond} AND seq > ?3 ORDER BY seq LIMIT ?4"
            );
            let mut q = c.prepare_cached(&sql)?;
            let mut after = 0i64;
            loop {
                let mut page: Vec<LogRecord> = q
                    .query_map(params![app, bound, after, PAGE], |r| {
                        row_to_record(host, app, r)
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let Some(last) = page.last() else { break };
                after = last.seq as i64;
                let full = page.len() as i64 == PAGE;
                keep(&mut page);
                out.append(&mut page);
                if !full {
                    break;
                }
            }
        }
        Some(n) => {
            let sql = format!(
                "SELECT {COLS} FROM log_records WHERE app = ?1 AND {cond} AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
            );
            let mut q = c.prepare_cached(&sql)?;
            let mut before = i64::MAX;
            while (out.len() as u64) < n {
                let mut page: Vec<LogRecord> = q
                    .query_map(params![app, bound, before, PAGE], |r| {
                        row_to_record(host, app, r)
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let Some(last) = page.last() else { break };
                before = last.seq as i64;
                let full = page.len() as i64 == PAGE;
                keep(&mut page);
                out.extend(page);
                if !full {
                    break;
                }
            }
            out.truncate(n as usize);
            out.reverse();
        }
    }
    Ok(out)
}

/// Where a bulk read starts: after sequence number `after`, at or after
/// `min_time`.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    after: i64,
    min_time: i64,
}

/// Turns `since` and `tail` into a [`Start`]: `tail` becomes the sequence
/// number before the `tail`th newest record, so a read of any size streams
/// from the oldest wanted record on. `None` when nothing is wanted.
pub fn start(
    c: &Connection,
    app: &str,
    since: Option<Since>,
    tail: Option<u64>,
) -> rusqlite::Result<Option<Start>> {
    let mut s = Start {
        after: 0,
        min_time: i64::MIN,
    };
    match since {
        Some(Since::Seq(seq)) => s.after = seq.min(i64::MAX as u64) as i64,
        Some(Since::Ago(d)) => s.min_time = schema::time::now_millis() - d.as_millis() as i64,
        None => {}
    }
    match tail {
        Some(0) => return Ok(None),
        Some(n) => {
            let nth: Option<i64> = c
                .prepare_cached(
                    "SELECT seq FROM log_records WHERE app = ?1 AND seq > ?2 AND time >= ?3
                     ORDER BY seq DESC LIMIT 1 OFFSET ?4",
                )?
                .query_row(
                    params![
                        app,
                        s.after,
                        s.min_time,
                        (n - 1).min(i64::MAX as u64) as i64
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(seq) = nth {
                s.after = s.after.max(seq - 1);
            }
        }
        None => {}
    }
    Ok(Some(s))
}

/// What a bulk read sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    /// The last sequence number read (sent or filtered out), if any.
    pub last_read: Option<u64>,
    /// Records sent.
    pub records: u64,
}

/// Rows per statement of a bulk read. Each page is its own read, so a slow
/// reader never holds a snapshot (and the WAL) open for long.
const SCAN_PAGE: i64 = 4096;

/// Reads `app`'s records from `start` on, oldest first, and hands them to
/// `send` as batch frames of the logs request `id`, a page at a time, the
/// text borrowed from SQLite and written straight into the frame. A
/// `matcher` keeps only the records it accepts. Stops early when `send`
/// returns false.
pub fn scan(
    c: &Connection,
    host: &str,
    app: &str,
    mut start: Start,
    matcher: Option<&crate::filter::Matcher>,
    id: u64,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> rusqlite::Result<Sent> {
    use schema::logbatch::{LogBatchWriter, LogRef};
    let mut sent = Sent::default();
    let mut q = c.prepare_cached(
        "SELECT seq, time, release, instance, stream, line, partial FROM log_records
         WHERE app = ?1 AND seq > ?2 AND time >= ?3 ORDER BY seq LIMIT ?4",
    )?;
    fn text(v: rusqlite::types::ValueRef<'_>, i: usize) -> rusqlite::Result<&str> {
        v.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    }
    loop {
        let mut frames = Vec::new();
        let mut w = LogBatchWriter::new(id, app);
        let (mut n, mut n_kept) = (0, 0u64);
        let mut rows = q.query(params![app, start.after, start.min_time, SCAN_PAGE])?;
        // With a filter, a page is made into records, matched, then encoded.
        let (mut times, mut page) = (Vec::new(), Vec::new());
        while let Some(r) = rows.next()? {
            n += 1;
            let seq: i64 = r.get(0)?;
            start.after = seq;
            if matcher.is_some() {
                let time: i64 = r.get(1)?;
                times.push(time);
                page.push(row_to_record_at(host, app, r, time)?);
                continue;
            }
            let stream = match r.get_ref(4)?.as_bytes()? {
                b"stdout" => Stream::Stdout,
                b"stderr" => Stream::Stderr,
                _ => Stream::System,
            };
            n_kept += 1;
            w.push(&LogRef {
                seq: seq as u64,
                time: r.get(1)?,
                release: r.get(2)?,
                instance: text(r.get_ref(3)?, 3)?,
                stream,
                line: text(r.get_ref(5)?, 5)?,
                partial: r.get(6)?,
            });
            if w.is_full() {
                frames.push(std::mem::replace(&mut w, LogBatchWriter::new(id, app)).finish());
            }
        }
        drop(rows);
        if let Some(m) = matcher {
            let mut keep = Vec::with_capacity(page.len());
            m.matches_batch(&page, &mut keep);
            for ((r, time), _) in page.iter().zip(&times).zip(&keep).filter(|(_, k)| **k) {
                n_kept += 1;
                w.push(&LogRef {
                    seq: r.seq,
                    time: *time,
                    release: r.release.map(|v| v.0),
                    instance: &r.instance,
                    stream: r.stream,
                    line: &r.line,
                    partial: r.partial,
                });
                if w.is_full() {
                    frames.push(std::mem::replace(&mut w, LogBatchWriter::new(id, app)).finish());
                }
            }
        }
        if !w.is_empty() {
            frames.push(w.finish());
        }
        if n > 0 {
            sent.last_read = Some(start.after as u64);
        }
        sent.records += n_kept;
        for f in frames {
            if !send(f) {
                return Ok(sent);
            }
        }
        if n < SCAN_PAGE {
            return Ok(sent);
        }
    }
}

pub fn last_seq(c: &mut Connection, app: &str) -> rusqlite::Result<u64> {
    Ok(load_usage(c, app)?.next_seq.saturating_sub(1))
}
