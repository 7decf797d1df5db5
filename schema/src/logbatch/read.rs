//! Reading a batch frame: [`LogBatch::decode`] checks every record once,
//! then records are read in place with a [`Cursor`] as [`RawRef`]s, their
//! text the frame's own bytes.

use super::format::{
    HAS_RELEASE, PARTIAL, RESET, Reader, SAME_INSTANCE, check_count, unzigzag, walk,
};
use crate::frame::FrameError;
use crate::time::UnixMillis;
use crate::types::{LogRecord, Stream};

/// A checked batch, read in place: its records are decoded as they are
/// read (with a [`Cursor`]) and rendered from the frame's own bytes, with
/// no copy of the text and no record object in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBatch {
    pub id: u64,
    pub app: String,
    body: Vec<u8>,
    /// Where reading starts: records before it are skipped (seen before).
    start: Cursor,
    count: usize,
    last_seq: Option<u64>,
}

/// A position in a [`LogBatch`]: its next record, and what that record is
/// delta-coded against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    at: usize,
    index: usize,
    time: i64,
    instance: (usize, usize),
}

/// One record read from a [`LogBatch`]: its text as the batch's bytes,
/// which the decoder checked are UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRef<'a> {
    pub seq: u64,
    pub time: UnixMillis,
    pub release: Option<u32>,
    pub instance: &'a [u8],
    pub stream: Stream,
    pub line: &'a [u8],
    pub partial: bool,
}

impl LogBatch {
    /// Decodes a batch frame's body (after the tag): every record is
    /// checked before the batch is returned.
    pub fn decode(body: &[u8]) -> Result<LogBatch, FrameError> {
        LogBatch::decode_owned(body.to_vec())
    }

    /// Like [`decode`](Self::decode), keeping `body` without a copy.
    pub fn decode_owned(body: Vec<u8>) -> Result<LogBatch, FrameError> {
        let bad = |reason: String| FrameError::Malformed {
            what: "log batch",
            reason,
        };
        let mut r = Reader { buf: &body, at: 0 };
        let id = u64::from_be_bytes(r.array::<8>().map_err(bad)?);
        let app_len = u16::from_be_bytes(r.array::<2>().map_err(bad)?) as usize;
        let app = r.str(app_len).map_err(bad)?.to_string();
        let count = u32::from_be_bytes(r.array::<4>().map_err(bad)?) as usize;
        check_count(body.len(), count).map_err(bad)?;
        let records_at = r.at;
        let mut last_seq = None;
        walk(&mut r, count, |x| last_seq = Some(x.seq)).map_err(bad)?;
        if r.at != body.len() {
            return Err(bad(format!(
                "{} bytes after the last record",
                body.len() - r.at
            )));
        }
        Ok(LogBatch {
            id,
            app,
            body,
            start: Cursor {
                at: records_at,
                index: 0,
                time: 0,
                instance: (0, 0),
            },
            count,
            last_seq,
        })
    }

    /// Records not skipped.
    pub fn len(&self) -> usize {
        self.count - self.start.index
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where reading starts.
    pub fn cursor(&self) -> Cursor {
        self.start
    }

    /// Records from `c` on.
    pub fn remaining(&self, c: &Cursor) -> usize {
        self.count.saturating_sub(c.index)
    }

    /// The record at `c`, and the cursor after it; `None` at the end.
    pub fn read(&self, c: &Cursor) -> Option<(RawRef<'_>, Cursor)> {
        if c.index >= self.count {
            return None;
        }
        // Checked at decoding: the `?`s below never fire.
        let body = &self.body[..];
        let mut r = Reader {
            buf: body,
            at: c.at,
        };
        let seq = r.varint().ok()?;
        let delta = unzigzag(r.varint().ok()?);
        let flags = r.byte().ok()?;
        let time = if flags & RESET != 0 { 0 } else { c.time }.wrapping_add(delta);
        // Checked at decoding: a code no writer uses never gets here.
        let stream = super::format::stream_of(flags).unwrap_or(Stream::System);
        let release = if flags & HAS_RELEASE != 0 {
            Some(r.varint().ok()? as u32)
        } else {
            None
        };
        let instance = if flags & SAME_INSTANCE != 0 {
            c.instance
        } else {
            let n = r.len().ok()?;
            r.at += n;
            (r.at - n, r.at)
        };
        let n = r.len().ok()?;
        r.at += n;
        let line = (r.at - n, r.at);
        let rec = RawRef {
            seq,
            time,
            release,
            instance: body.get(instance.0..instance.1)?,
            stream,
            line: body.get(line.0..line.1)?,
            partial: flags & PARTIAL != 0,
        };
        let next = Cursor {
            at: r.at,
            index: c.index + 1,
            time,
            instance,
        };
        Some((rec, next))
    }

    /// The records not skipped, in order.
    pub fn iter(&self) -> impl Iterator<Item = RawRef<'_>> + '_ {
        let mut c = self.start;
        std::iter::from_fn(move || {
            let (r, next) = self.read(&c)?;
            c = next;
            Some(r)
        })
    }

    /// The sequence number of the last record, if any is not skipped.
    pub fn last_seq(&self) -> Option<u64> {
        if self.is_empty() { None } else { self.last_seq }
    }

    /// Skips the records numbered `seq` or lower (seen before a resume).
    /// Records of a batch are in sequence order.
    pub fn skip_through(&mut self, seq: u64) {
        while let Some((r, next)) = self.read(&self.start) {
            if r.seq > seq {
                break;
            }
            self.start = next;
        }
    }

    /// The records as owned [`LogRecord`]s of `host`.
    pub fn to_records(&self, host: &str) -> Vec<LogRecord> {
        self.iter().map(|r| r.to_record(host, &self.app)).collect()
    }
}
