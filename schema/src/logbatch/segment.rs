//! Segments: how a store keeps an app's records, a run of them whose
//! first starts afresh (RESET), so a bulk read can copy it into a batch
//! without decoding it. Built by [`LogSegmentWriter`], checked whole by
//! [`check_segment`] before anything is read from it.

use super::format::{Context, RESET, Reader, check_count, encode, walk};
use super::{LogRef, SEGMENT_BYTES, SEGMENT_RECORDS};
use crate::frame::FrameError;
use crate::time::UnixMillis;

/// Builds one segment: records of one app, in sequence order.
#[derive(Debug, Default)]
pub struct LogSegmentWriter {
    buf: Vec<u8>,
    ctx: Context,
    count: u32,
    first_seq: u64,
    last_seq: u64,
    min_time: i64,
    max_time: i64,
}

/// A finished segment and what a store indexes it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSegment {
    pub body: Vec<u8>,
    pub count: u32,
    pub first_seq: u64,
    pub last_seq: u64,
    pub min_time: UnixMillis,
    pub max_time: UnixMillis,
}

impl LogSegmentWriter {
    pub fn new() -> LogSegmentWriter {
        LogSegmentWriter::default()
    }

    pub fn push(&mut self, r: &LogRef<'_>) {
        if self.count == 0 {
            self.first_seq = r.seq;
            self.min_time = r.time;
            self.max_time = r.time;
        }
        encode(&mut self.buf, &mut self.ctx, r);
        self.count += 1;
        self.last_seq = r.seq;
        self.min_time = self.min_time.min(r.time);
        self.max_time = self.max_time.max(r.time);
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the segment should be stored before another record is added.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= SEGMENT_BYTES || self.count as usize >= SEGMENT_RECORDS
    }

    pub fn finish(self) -> LogSegment {
        LogSegment {
            body: self.buf,
            count: self.count,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            min_time: self.min_time,
            max_time: self.max_time,
        }
    }
}

/// Calls `f` with each of the `count` records of a segment body, after
/// checking the whole segment: nothing is called for a malformed one.
pub fn segment_records<'a>(
    body: &'a [u8],
    count: u32,
    f: impl FnMut(LogRef<'a>),
) -> Result<(), FrameError> {
    check_segment(body, count)?;
    walk(&mut Reader { buf: body, at: 0 }, count as usize, f).map_err(bad_segment)
}

/// Calls `f` with each record of a segment body [`check_segment`] already
/// accepted, without checking it again (a body it did not accept ends the
/// walk at its first bad record).
pub fn checked_segment_records<'a>(body: &'a [u8], count: u32, f: impl FnMut(LogRef<'a>)) {
    let _ = walk(&mut Reader { buf: body, at: 0 }, count as usize, f);
}

/// Checks that `body` is a segment of `count` records: every length,
/// varint and string, the first record RESET, nothing after the last.
pub fn check_segment(body: &[u8], count: u32) -> Result<(), FrameError> {
    if count == 0 {
        return if body.is_empty() {
            Ok(())
        } else {
            Err(bad_segment("bytes in a segment of no record".into()))
        };
    }
    let first_flags = body_flags_at(body).and_then(|i| body.get(i).copied());
    if first_flags.is_some_and(|f| f & RESET == 0) {
        return Err(bad_segment("its first record does not start afresh".into()));
    }
    check_count(body.len(), count as usize).map_err(bad_segment)?;
    let mut r = Reader { buf: body, at: 0 };
    walk(&mut r, count as usize, |_| {}).map_err(bad_segment)?;
    if r.at != body.len() {
        return Err(bad_segment(format!(
            "{} bytes after the last record",
            body.len() - r.at
        )));
    }
    Ok(())
}

/// Where the first record's flags byte is: after two varints.
fn body_flags_at(body: &[u8]) -> Option<usize> {
    let mut r = Reader { buf: body, at: 0 };
    r.varint().ok()?;
    r.varint().ok()?;
    Some(r.at)
}

fn bad_segment(reason: String) -> FrameError {
    FrameError::Malformed {
        what: "log segment",
        reason,
    }
}
