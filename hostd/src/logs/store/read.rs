//! Queries: where a read starts (after a sequence number, within an age,
//! the last N records) and reading forward from there a page of segments
//! at a time, or back from the newest for the last N matching records.

use rusqlite::{Connection, OptionalExtension, params};
use schema::LogRecord;
use schema::command::Since;
use schema::logbatch::{LogRef, check_segment, checked_segment_records};

pub use super::segment::Start;
use super::segment::{SEGMENT_COLS, Segment};

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
pub(super) fn read_forward(
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
