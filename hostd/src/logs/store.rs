//! `logs.db`: the writer thread and the queries.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Weak};

use rusqlite::{Connection, OptionalExtension, params};
use schema::command::Since;
use schema::logbatch::{
    LogBatchWriter, LogRef, LogSegment, LogSegmentWriter, check_segment, checked_segment_records,
    segment_records,
};
use schema::{LogRecord, Stream, Version};

use super::{Entry, Inner, Msg};
use db::{DbError, Durability, migrate, open_connection};

/// Default bound of one app's records: the oldest go first past it.
pub const DEFAULT_CAP_BYTES: u64 = 64 << 20;
/// What a segment costs besides its body (row, index, page slack), so that
/// the cap tracks the file size.
const SEGMENT_OVERHEAD: u64 = 64;
/// Most lines committed in one transaction.
const BATCH: usize = 4096;
/// How long the writer waits for more lines before committing a batch: a
/// transaction per line would cost more than the lines themselves.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

pub fn open_writer(path: &Path) -> Result<Connection, DbError> {
    let mut c = open_connection(path, Durability::Normal)?;
    migrate(&mut c, path, schema::migrations::LOGS)?;
    convert_rows(&mut c).map_err(|source| DbError::Migration {
        path: path.to_path_buf(),
        version: 3,
        name: "segments",
        source,
    })?;
    Ok(c)
}

/// Moves the records of a store written before segments (a row per record)
/// into segments, in one transaction: all of them or, on any error, none.
fn convert_rows(c: &mut Connection) -> rusqlite::Result<()> {
    let old: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'log_records')",
        [],
        |r| r.get(0),
    )?;
    if !old {
        return Ok(());
    }
    let tx = c.transaction()?;
    let mut moved = 0u64;
    {
        let mut q = tx.prepare(
            "SELECT app, seq, time, release, instance, stream, line, partial
             FROM log_records ORDER BY app, seq",
        )?;
        let mut rows = q.query([])?;
        let mut current: Option<(String, LogSegmentWriter)> = None;
        while let Some(r) = rows.next()? {
            let app = r.get_ref(0)?.as_str()?;
            if current
                .as_ref()
                .is_some_and(|(a, w)| a != app || w.is_full())
            {
                let (a, w) = current.take().expect("checked above");
                insert_segment(&tx, &a, w.finish())?;
            }
            let (_, w) = current.get_or_insert_with(|| (app.to_string(), LogSegmentWriter::new()));
            w.push(&LogRef {
                seq: r.get::<_, i64>(1)? as u64,
                time: r.get(2)?,
                release: r.get(3)?,
                instance: r.get_ref(4)?.as_str()?,
                stream: r.get_ref(5)?.as_str()?.parse().unwrap_or(Stream::System),
                line: r.get_ref(6)?.as_str()?,
                partial: r.get(7)?,
            });
            moved += 1;
        }
        if let Some((a, w)) = current {
            insert_segment(&tx, &a, w.finish())?;
        }
    }
    tx.execute_batch(
        "DROP TABLE log_records;
         UPDATE log_apps SET bytes = (SELECT COALESCE(SUM(bytes), 0) FROM log_segments
                                      WHERE log_segments.app = log_apps.app);",
    )?;
    tx.commit()?;
    tracing::info!(
        records = moved,
        "moved the log store's records into segments"
    );
    Ok(())
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

/// Stores a segment of `app`; returns what it counts against the cap.
fn insert_segment(tx: &Connection, app: &str, s: LogSegment) -> rusqlite::Result<u64> {
    let bytes = s.body.len() as u64 + SEGMENT_OVERHEAD;
    tx.prepare_cached(
        "INSERT INTO log_segments (app, first_seq, last_seq, min_time, max_time, count, bytes, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        app,
        s.first_seq as i64,
        s.last_seq as i64,
        s.min_time,
        s.max_time,
        s.count,
        bytes as i64,
        s.body
    ])?;
    Ok(bytes)
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

fn remove(conn: &mut Connection, app: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM log_segments WHERE app = ?1", [app])?;
    tx.execute("UPDATE log_apps SET bytes = 0 WHERE app = ?1", [app])?;
    tx.commit()
}

/// Where a read starts: after sequence number `after`, at or after
/// `min_time`.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    after: i64,
    min_time: i64,
}

impl Start {
    fn new(since: Option<Since>) -> Start {
        let mut s = Start {
            after: 0,
            min_time: i64::MIN,
        };
        match since {
            Some(Since::Seq(seq)) => s.after = seq.min(i64::MAX as u64) as i64,
            Some(Since::Ago(d)) => s.min_time = schema::time::now_millis() - d.as_millis() as i64,
            None => {}
        }
        s
    }

    fn wants(&self, r: &LogRef<'_>) -> bool {
        r.seq as i64 > self.after && r.time >= self.min_time
    }
}

/// A segment's row, its body borrowed from SQLite.
struct Segment<'a> {
    first_seq: i64,
    last_seq: i64,
    min_time: i64,
    max_time: i64,
    count: u32,
    body: &'a [u8],
}

const SEGMENT_COLS: &str = "first_seq, last_seq, min_time, max_time, count, body";

impl<'a> Segment<'a> {
    fn of(r: &'a rusqlite::Row<'_>) -> rusqlite::Result<Segment<'a>> {
        Ok(Segment {
            first_seq: r.get(0)?,
            last_seq: r.get(1)?,
            min_time: r.get(2)?,
            max_time: r.get(3)?,
            count: r.get(4)?,
            body: r.get_ref(5)?.as_blob()?,
        })
    }

    /// Whether `start` wants every record of the segment.
    fn whole(&self, start: &Start) -> bool {
        self.first_seq > start.after && self.min_time >= start.min_time
    }

    /// Whether `start` wants any record of the segment.
    fn any(&self, start: &Start) -> bool {
        self.last_seq > start.after && self.max_time >= start.min_time
    }

    /// Calls `f` with the records `start` wants. A damaged segment (the
    /// file changed under SQLite, a disk error) is one `system` record that
    /// says which records are lost, numbered as the last of them: a read
    /// goes on past it and a resume does not ask for them again.
    fn records(&self, app: &str, start: &Start, mut f: impl FnMut(&LogRef<'_>)) {
        if let Err(e) = segment_records(self.body, self.count, |r| {
            if start.wants(&r) {
                f(&r)
            }
        }) {
            tracing::error!(app, first_seq = self.first_seq, last_seq = self.last_seq, error = %e, "a log segment is damaged");
            let line = format!(
                "records {}-{} of this app could not be read from logs.db ({e})",
                self.first_seq, self.last_seq
            );
            f(&LogRef {
                seq: self.last_seq as u64,
                time: self.max_time,
                release: None,
                instance: "hostd",
                stream: Stream::System,
                line: &line,
                partial: false,
            });
        }
    }
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
    let mut s = Start::new(since);
    let n = match tail {
        Some(0) => return Ok(None),
        Some(n) => n,
        None => return Ok(Some(s)),
    };
    // Newest segment first: count what each holds until n are found.
    let mut left = n;
    let mut q = c.prepare_cached(&format!(
        "SELECT {SEGMENT_COLS} FROM log_segments WHERE app = ?1 ORDER BY first_seq DESC"
    ))?;
    let mut rows = q.query([app])?;
    while let Some(r) = rows.next()? {
        let seg = Segment::of(r)?;
        if seg.last_seq <= s.after {
            break;
        }
        if !seg.any(&s) {
            continue;
        }
        if seg.whole(&s) && (seg.count as u64) < left {
            left -= seg.count as u64;
            continue;
        }
        let mut seqs = Vec::new();
        seg.records(app, &s, |r| seqs.push(r.seq as i64));
        if (seqs.len() as u64) < left {
            left -= seqs.len() as u64;
            continue;
        }
        s.after = s.after.max(seqs[seqs.len() - left as usize] - 1);
        break;
    }
    Ok(Some(s))
}

/// Segments per statement of a forward read. Each page is its own read, so
/// a slow reader never holds a snapshot (and the WAL) open for long.
const SCAN_SEGMENTS: i64 = 16;

/// Reads `app`'s records from `start` on, oldest first, a page of segments
/// at a time: `whole` gets each segment wanted whole (body and count),
/// `record` each wanted record of the others, and `page_done` is called
/// after each page, outside the read, to say whether to go on. Returns
/// the last sequence number read.
fn read_forward(
    c: &Connection,
    app: &str,
    start: &Start,
    whole: &mut dyn FnMut(&[u8], u32),
    record: &mut dyn FnMut(&LogRef<'_>),
    page_done: &mut dyn FnMut() -> bool,
) -> rusqlite::Result<Option<u64>> {
    // The segment holding the record after `start.after` (if any) begins
    // at or before it.
    let mut from: i64 = c
        .prepare_cached(
            "SELECT first_seq FROM log_segments WHERE app = ?1 AND first_seq <= ?2
             ORDER BY first_seq DESC LIMIT 1",
        )?
        .query_row(params![app, start.after.saturating_add(1)], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let mut q = c.prepare_cached(&format!(
        "SELECT {SEGMENT_COLS} FROM log_segments WHERE app = ?1 AND first_seq >= ?2
         ORDER BY first_seq LIMIT ?3"
    ))?;
    let mut last_read = None;
    loop {
        let mut n = 0;
        let mut rows = q.query(params![app, from, SCAN_SEGMENTS])?;
        while let Some(r) = rows.next()? {
            n += 1;
            let seg = Segment::of(r)?;
            from = seg.first_seq + 1;
            if !seg.any(start) {
                continue;
            }
            last_read = Some(seg.last_seq as u64);
            if seg.whole(start) {
                match check_segment(seg.body, seg.count) {
                    Ok(()) => whole(seg.body, seg.count),
                    // Read record by record, it says what is damaged.
                    Err(_) => seg.records(app, start, &mut *record),
                }
            } else {
                seg.records(app, start, &mut *record);
            }
        }
        drop(rows);
        if !page_done() || n < SCAN_SEGMENTS {
            return Ok(last_read);
        }
    }
}

/// Records of `app`, oldest first: those after `since` (a sequence number
/// or an age), at most the last `tail` of them.
pub fn query(
    c: &mut Connection,
    host: &str,
    app: &str,
    since: Option<Since>,
    tail: Option<u64>,
) -> rusqlite::Result<Vec<LogRecord>> {
    match start(c, app, since, tail)? {
        Some(start) => records_from(c, host, app, &start, &|_| {}),
        None => Ok(Vec::new()),
    }
}

/// `app`'s records from `start` on, oldest first, each page of them
/// passed through `keep`.
fn records_from(
    c: &Connection,
    host: &str,
    app: &str,
    start: &Start,
    keep: &dyn Fn(&mut Vec<LogRecord>),
) -> rusqlite::Result<Vec<LogRecord>> {
    let page = std::cell::RefCell::new(Vec::new());
    let mut out = Vec::new();
    let push = |r: &LogRef<'_>| page.borrow_mut().push(r.to_record(host, app));
    read_forward(
        c,
        app,
        start,
        &mut |body, count| checked_segment_records(body, count, |r| push(&r)),
        &mut |r| push(r),
        &mut || {
            let mut p = page.borrow_mut();
            keep(&mut p);
            out.append(&mut p);
            true
        },
    )?;
    Ok(out)
}

/// Like [`query`], keeping only records `keep` accepts: the last `tail`
/// *matching* records, read from the newest segment back, so a rare match
/// costs a scan, not a copy of the whole store.
pub fn query_matching(
    c: &mut Connection,
    host: &str,
    app: &str,
    since: Option<Since>,
    tail: Option<u64>,
    keep: &dyn Fn(&mut Vec<LogRecord>),
) -> rusqlite::Result<Vec<LogRecord>> {
    let start = Start::new(since);
    let Some(n) = tail else {
        return records_from(c, host, app, &start, keep);
    };
    let mut out: Vec<LogRecord> = Vec::new();
    let mut q = c.prepare_cached(&format!(
        "SELECT {SEGMENT_COLS} FROM log_segments WHERE app = ?1 ORDER BY first_seq DESC"
    ))?;
    let mut rows = q.query([app])?;
    while (out.len() as u64) < n {
        let Some(r) = rows.next()? else { break };
        let seg = Segment::of(r)?;
        if seg.last_seq <= start.after {
            break;
        }
        if !seg.any(&start) {
            continue;
        }
        let mut page = Vec::new();
        seg.records(app, &start, |r| page.push(r.to_record(host, app)));
        keep(&mut page);
        // Newest first while collecting.
        out.extend(page.into_iter().rev());
    }
    out.truncate(n.min(usize::MAX as u64) as usize);
    out.reverse();
    Ok(out)
}

/// What a bulk read sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    /// The last sequence number read (sent or filtered out), if any.
    pub last_read: Option<u64>,
    /// Records sent.
    pub records: u64,
}

/// Reads `app`'s records from `start` on, oldest first, and hands them to
/// `send` as batch frames of the logs request `id`, a page of segments at
/// a time. Without a `matcher`, a segment wanted whole is copied into the
/// frame as it is stored; a `matcher` keeps only the records it accepts.
/// Stops early when `send` returns false.
pub fn scan(
    c: &Connection,
    host: &str,
    app: &str,
    start: Start,
    matcher: Option<&crate::filter::Matcher>,
    id: u64,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> rusqlite::Result<Sent> {
    use std::cell::RefCell;
    let w = RefCell::new(LogBatchWriter::new(id, app));
    let frames = RefCell::new(Vec::new());
    let records = std::cell::Cell::new(0u64);
    // With a matcher, a page is made into records, matched, then encoded.
    // Its records are refilled page after page, without allocating.
    let page = RefCell::new(Page::default());
    let mut keep = Vec::new();
    let push = |r: &LogRef<'_>| {
        if matcher.is_some() {
            page.borrow_mut().push(host, app, r);
        } else {
            records.set(records.get() + 1);
            w.borrow_mut().push_into(r, &mut frames.borrow_mut());
        }
    };
    let last_read = read_forward(
        c,
        app,
        &start,
        &mut |body, count| {
            if matcher.is_some() {
                checked_segment_records(body, count, |r| push(&r));
            } else {
                records.set(records.get() + count as u64);
                w.borrow_mut()
                    .push_segment_into(body, count, &mut frames.borrow_mut());
            }
        },
        &mut |r| push(r),
        &mut || {
            if let Some(m) = matcher {
                let mut page = page.borrow_mut();
                let (recs, times) = page.take();
                m.matches_batch(recs, &mut keep);
                let (mut w, mut frames) = (w.borrow_mut(), frames.borrow_mut());
                for ((r, &time), _) in recs.iter().zip(times).zip(&keep).filter(|(_, k)| **k) {
                    records.set(records.get() + 1);
                    w.push_into(&LogRef::of_at(r, time), &mut frames);
                }
            }
            let frames = std::mem::take(&mut *frames.borrow_mut());
            frames.into_iter().all(&mut *send)
        },
    )?;
    // What the last page left in the writer.
    let w = w.into_inner();
    if !w.is_empty() {
        send(w.finish());
    }
    Ok(Sent {
        last_read,
        records: records.get(),
    })
}

/// Records being matched: refilled in place page after page.
#[derive(Default)]
struct Page {
    recs: Vec<LogRecord>,
    times: Vec<i64>,
    len: usize,
    clock: schema::logbatch::Clock,
}

impl Page {
    fn push(&mut self, host: &str, app: &str, r: &LogRef<'_>) {
        if let Some(rec) = self.recs.get_mut(self.len) {
            r.fill_record(host, app, &mut self.clock, rec);
            self.times[self.len] = r.time;
        } else {
            self.recs.push(r.to_record(host, app));
            self.times.push(r.time);
        }
        self.len += 1;
    }

    /// The records pushed since the last take, and their times.
    fn take(&mut self) -> (&[LogRecord], &[i64]) {
        let n = std::mem::take(&mut self.len);
        (&self.recs[..n], &self.times[..n])
    }
}

pub fn last_seq(c: &mut Connection, app: &str) -> rusqlite::Result<u64> {
    Ok(load_usage(c, app)?.next_seq.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::logbatch::LogBatch;

    fn entry(app: &str, i: usize) -> Entry {
        Entry {
            app: app.into(),
            release: Some(1 + (i / 1000) as u32),
            instance: format!("{app}.{}", i % 3).into(),
            stream: if i.is_multiple_of(5) {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            time: 1_764_000_000_000 + i as i64,
            line: format!("{app} line {i}"),
            partial: false,
        }
    }

    struct Store {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        c: Connection,
        usage: HashMap<Arc<str>, Usage>,
    }

    impl Store {
        fn new() -> Store {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("logs.db");
            let c = open_writer(&path).unwrap();
            Store {
                _dir: dir,
                path,
                c,
                usage: HashMap::new(),
            }
        }

        /// Writes `n` records of `a` interleaved with `n / 2` of `b`, in
        /// commits of at most `per_commit` lines.
        fn fill(&mut self, n: usize, per_commit: usize, cap: u64) {
            let lines: Vec<Entry> = (0..n)
                .flat_map(|i| {
                    let mut v = vec![entry("a", i)];
                    if i % 2 == 0 {
                        v.push(entry("b", i));
                    }
                    v
                })
                .collect();
            let mut it = lines.into_iter().peekable();
            while it.peek().is_some() {
                let batch: Vec<Entry> = it.by_ref().take(per_commit).collect();
                write_batch(&mut self.c, &mut self.usage, "h1", batch, cap).unwrap();
            }
        }

        fn all(&mut self, app: &str) -> Vec<LogRecord> {
            query(&mut self.c, "h1", app, None, None).unwrap()
        }

        fn seqs(&mut self, app: &str, since: Option<Since>, tail: Option<u64>) -> Vec<u64> {
            query(&mut self.c, "h1", app, since, tail)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect()
        }

        /// What a bulk read through the tunnel sends, decoded.
        fn scanned(&self, app: &str, since: Option<Since>, tail: Option<u64>) -> Vec<LogRecord> {
            let c = open_reader(&self.path).unwrap();
            let Some(s) = start(&c, app, since, tail).unwrap() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            let sent = scan(&c, "h1", app, s, None, 7, &mut |f: Vec<u8>| {
                assert!(f.len() <= 2 * schema::logbatch::BATCH_BYTES, "{}", f.len());
                let b = LogBatch::decode(&f[5..]).unwrap();
                assert_eq!((b.id, b.app.as_str()), (7, app));
                out.extend(b.to_records("h1"));
                true
            })
            .unwrap();
            assert_eq!(sent.records as usize, out.len());
            out
        }
    }

    #[test]
    fn records_read_back_whole_from_any_sequence_number_or_tail() {
        let mut s = Store::new();
        s.fill(6000, 1500, DEFAULT_CAP_BYTES);
        let a = s.all("a");
        assert_eq!(a.len(), 6000);
        for (i, r) in a.iter().enumerate() {
            let want = entry("a", i);
            assert_eq!((r.seq, r.line.as_str()), (i as u64 + 1, want.line.as_str()));
            assert_eq!(
                (&*r.instance, r.stream, r.release),
                (&*want.instance, want.stream, want.release.map(Version))
            );
        }
        assert_eq!(s.all("b").len(), 3000);
        let segments: i64 =
            s.c.query_row("SELECT COUNT(*) FROM log_segments", [], |r| r.get(0))
                .unwrap();
        assert!(segments > 4, "{segments}");
        // Inside a segment, on its edges, before the first and past the last.
        for k in [
            0u64, 1, 1499, 1500, 1501, 2047, 2048, 4444, 5999, 6000, 9000,
        ] {
            let want: Vec<u64> = (k + 1..=6000).collect();
            assert_eq!(s.seqs("a", Some(Since::Seq(k)), None), want, "since {k}");
            let tail = 6000u64.saturating_sub(k);
            if tail > 0 {
                assert_eq!(s.seqs("a", None, Some(tail)), want, "tail {tail}");
            }
        }
        assert_eq!(
            s.seqs("a", Some(Since::Seq(5990)), Some(3)),
            vec![5998, 5999, 6000]
        );
        assert!(s.seqs("a", None, Some(0)).is_empty());
        assert!(s.seqs("nope", None, None).is_empty());
        // The tunnel's bulk read sends the same records.
        assert_eq!(s.scanned("a", None, None), a);
        assert_eq!(s.scanned("a", Some(Since::Seq(1777)), None), a[1777..]);
        assert_eq!(s.scanned("a", None, Some(10)), a[5990..]);
    }

    #[test]
    fn a_tail_of_matching_records_reads_back_from_the_newest() {
        let mut s = Store::new();
        // Small commits: many segments, several pages of them.
        s.fill(20_000, 500, DEFAULT_CAP_BYTES);
        let keep = |p: &mut Vec<LogRecord>| p.retain(|r| r.line.ends_with("77"));
        let got = query_matching(&mut s.c, "h1", "a", None, Some(4), &keep).unwrap();
        let lines: Vec<&str> = got.iter().map(|r| r.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "a line 19677",
                "a line 19777",
                "a line 19877",
                "a line 19977"
            ]
        );
        let every = query_matching(&mut s.c, "h1", "a", None, None, &keep).unwrap();
        assert_eq!(every.len(), 200);
        let since = query_matching(&mut s.c, "h1", "a", Some(Since::Seq(4900)), Some(9), &keep);
        assert_eq!(since.unwrap().len(), 9);
        // The tunnel's read with a compiled filter sends the same records,
        // across pages whose records are refilled in place.
        let m = crate::logs::follow::matcher(Some(r#"line ~ /77$/"#))
            .unwrap()
            .unwrap();
        let c = open_reader(&s.path).unwrap();
        let mut sent = Vec::new();
        let n = scan(
            &c,
            "h1",
            "a",
            Start::new(None),
            Some(&m),
            3,
            &mut |f: Vec<u8>| {
                sent.extend(LogBatch::decode(&f[5..]).unwrap().to_records("h1"));
                true
            },
        )
        .unwrap();
        assert_eq!((n.records, n.last_read), (200, Some(20_000)));
        assert_eq!(sent, every);
    }

    #[test]
    fn the_cap_drops_whole_old_segments_and_numbering_goes_on() {
        let mut s = Store::new();
        s.fill(20_000, 4096, 200_000);
        let a = s.all("a");
        let bytes: i64 =
            s.c.query_row(
                "SELECT SUM(bytes) FROM log_segments WHERE app = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(bytes <= 200_000, "{bytes}");
        assert!(!a.is_empty() && a.len() < 20_000, "{}", a.len());
        // What is left is the newest records, without a gap.
        assert_eq!(a.last().unwrap().seq, 20_000);
        assert!(a.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert_eq!(last_seq(&mut s.c, "a").unwrap(), 20_000);
        remove(&mut s.c, "a").unwrap();
        assert!(s.all("a").is_empty());
        assert_eq!(last_seq(&mut s.c, "a").unwrap(), 20_000);
    }

    #[test]
    fn a_damaged_segment_is_one_system_record_and_the_rest_reads() {
        let mut s = Store::new();
        s.fill(3000, 1000, DEFAULT_CAP_BYTES);
        let (first, last): (i64, i64) = s
            .c
            .query_row(
                "SELECT first_seq, last_seq FROM log_segments WHERE app = 'a' ORDER BY first_seq LIMIT 1 OFFSET 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        s.c.execute(
            "UPDATE log_segments SET body = substr(body, 1, 100) WHERE app = 'a' AND first_seq = ?1",
            [first],
        )
        .unwrap();
        for got in [s.all("a"), s.scanned("a", None, None)] {
            let lost: Vec<&LogRecord> = got.iter().filter(|r| r.stream == Stream::System).collect();
            assert_eq!(lost.len(), 1, "{lost:?}");
            assert_eq!(lost[0].seq, last as u64);
            assert!(
                lost[0].line.contains(&format!("records {first}-{last}"))
                    && lost[0].line.contains("could not be read"),
                "{}",
                lost[0].line
            );
            assert_eq!(got.len() as i64, 3000 - (last - first + 1) + 1);
            assert_eq!(got.last().unwrap().seq, 3000);
        }
    }

    #[test]
    fn a_store_of_a_record_per_row_is_moved_into_segments_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        {
            let mut c = open_connection(&path, Durability::Normal).unwrap();
            migrate(&mut c, &path, schema::migrations::LOGS.up_to(1)).unwrap();
            for (app, n) in [("a", 3000), ("b", 2)] {
                for seq in 1..=n {
                    c.execute(
                        "INSERT INTO log_records (app, seq, time, release, instance, stream, line, partial, bytes)
                         VALUES (?1, ?2, 1000 + ?2, 1, ?1 || '.1', 'stdout', 'line ' || ?2, 0, 70)",
                        params![app, seq],
                    )
                    .unwrap();
                }
                c.execute(
                    "INSERT INTO log_apps (app, next_seq, bytes) VALUES (?1, ?2, ?3)",
                    params![app, n + 1, n * 70],
                )
                .unwrap();
            }
            // Clustered by version 2, still a row per record.
            migrate(&mut c, &path, schema::migrations::LOGS.up_to(2)).unwrap();
        }
        let mut c = open_writer(&path).unwrap();
        let gone: bool = c
            .query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'log_records')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(gone);
        let a = query(&mut c, "h1", "a", None, None).unwrap();
        assert_eq!(a.len(), 3000);
        assert_eq!(
            (a[0].seq, a[0].line.as_str(), a[0].instance.as_str()),
            (1, "line 1", "a.1")
        );
        assert_eq!(a[2999].time, schema::time::rfc3339(4000));
        assert_eq!(query(&mut c, "h1", "b", None, None).unwrap().len(), 2);
        let bytes: i64 = c
            .query_row("SELECT bytes FROM log_apps WHERE app = 'a'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let stored: i64 = c
            .query_row(
                "SELECT SUM(bytes) FROM log_segments WHERE app = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(bytes, stored);
        // Numbering goes on where it was.
        let mut usage = HashMap::new();
        let out = write_batch(
            &mut c,
            &mut usage,
            "h1",
            vec![entry("a", 1)],
            DEFAULT_CAP_BYTES,
        )
        .unwrap();
        assert_eq!(out[0].seq, 3001);
        drop(c);
        // Opening again has nothing to move.
        let mut c = open_writer(&path).unwrap();
        assert_eq!(query(&mut c, "h1", "a", None, None).unwrap().len(), 3001);
    }
}
