//! The tunnel's bulk read: records from a start on, straight into batch
//! frames, whole segments copied as they are stored unless a filter must
//! see each record.

use rusqlite::Connection;
use schema::LogRecord;
use schema::logbatch::{LogBatchWriter, LogRef, checked_segment_records};

use super::read::{Start, read_forward};

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
