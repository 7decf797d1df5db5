//! A segment as the store keeps it: one row of `log_segments` holding a
//! segment body (the format is [`schema::logbatch`]'s) with what a read
//! picks segments by: its first and last sequence numbers, its time span
//! and its record count.

use rusqlite::{Connection, params};
use schema::Stream;
use schema::logbatch::{LogRef, LogSegment, segment_records};

use schema::command::Since;

/// What a segment costs besides its body (row, index, page slack), so that
/// the cap tracks the file size.
const SEGMENT_OVERHEAD: u64 = 64;

/// Stores a segment of `app`; returns what it counts against the cap.
pub(super) fn insert_segment(tx: &Connection, app: &str, s: LogSegment) -> rusqlite::Result<u64> {
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

/// A segment's row, its body borrowed from SQLite.
pub(super) struct Segment<'a> {
    pub(super) first_seq: i64,
    pub(super) last_seq: i64,
    pub(super) min_time: i64,
    pub(super) max_time: i64,
    pub(super) count: u32,
    pub(super) body: &'a [u8],
}

pub(super) const SEGMENT_COLS: &str = "first_seq, last_seq, min_time, max_time, count, body";

impl<'a> Segment<'a> {
    pub(super) fn of(r: &'a rusqlite::Row<'_>) -> rusqlite::Result<Segment<'a>> {
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
    pub(super) fn whole(&self, start: &Start) -> bool {
        self.first_seq > start.after && self.min_time >= start.min_time
    }

    /// Whether `start` wants any record of the segment.
    pub(super) fn any(&self, start: &Start) -> bool {
        self.last_seq > start.after && self.max_time >= start.min_time
    }

    /// Calls `f` with the records `start` wants. A damaged segment (the
    /// file changed under SQLite, a disk error) is one `system` record that
    /// says which records are lost, numbered as the last of them: a read
    /// goes on past it and a resume does not ask for them again.
    pub(super) fn records(&self, app: &str, start: &Start, mut f: impl FnMut(&LogRef<'_>)) {
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

/// Where a read starts: after sequence number `after`, at or after
/// `min_time`.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub(super) after: i64,
    pub(super) min_time: i64,
}

impl Start {
    pub(super) fn new(since: Option<Since>) -> Start {
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

    pub(super) fn wants(&self, r: &LogRef<'_>) -> bool {
        r.seq as i64 > self.after && r.time >= self.min_time
    }
}
