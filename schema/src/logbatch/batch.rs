//! Building batch frames: records pushed one at a time, or whole
//! segments copied in as they are stored.

use super::format::{Context, encode};
use super::{BATCH_BYTES, BATCH_RECORDS, LogRef, TAG_LOGS};

/// Builds one batch frame, ready for the wire.
#[derive(Debug)]
pub struct LogBatchWriter {
    buf: Vec<u8>,
    count_at: usize,
    count: u32,
    ctx: Context,
}

impl LogBatchWriter {
    /// A batch of `app`'s records answering the request `id`.
    pub fn new(id: u64, app: &str) -> LogBatchWriter {
        let app = &app.as_bytes()[..app.len().min(u16::MAX as usize)];
        let mut buf = Vec::with_capacity(BATCH_BYTES + 4096);
        buf.extend_from_slice(&[0, 0, 0, 0, TAG_LOGS]);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&(app.len() as u16).to_be_bytes());
        buf.extend_from_slice(app);
        let count_at = buf.len();
        buf.extend_from_slice(&[0, 0, 0, 0]);
        LogBatchWriter {
            buf,
            count_at,
            count: 0,
            ctx: Context::default(),
        }
    }

    pub fn push(&mut self, r: &LogRef<'_>) {
        encode(&mut self.buf, &mut self.ctx, r);
        self.count += 1;
    }

    /// Appends a segment's records as they are. `body` must hold `count`
    /// records of a segment (see [`check_segment`](super::check_segment)).
    pub fn push_segment(&mut self, body: &[u8], count: u32) {
        self.buf.extend_from_slice(body);
        self.count += count;
        // Where the segment's last instance is, and its time, are not
        // known without decoding it: the next record starts afresh.
        self.ctx = Context::default();
    }

    /// Pushes `r`; when that fills the batch, the frame goes to `frames`
    /// and this writer starts the next batch of the same request.
    pub fn push_into(&mut self, r: &LogRef<'_>, frames: &mut Vec<Vec<u8>>) {
        self.push(r);
        if self.is_full() {
            frames.push(self.take());
        }
    }

    /// Like [`push_into`](Self::push_into) for a segment: a batch that
    /// cannot take the whole segment is sent first, so no frame passes
    /// twice [`BATCH_BYTES`].
    pub fn push_segment_into(&mut self, body: &[u8], count: u32, frames: &mut Vec<Vec<u8>>) {
        if !self.is_empty()
            && (self.buf.len() + body.len() > BATCH_BYTES
                || self.count as usize + count as usize > BATCH_RECORDS)
        {
            frames.push(self.take());
        }
        self.push_segment(body, count);
        if self.is_full() {
            frames.push(self.take());
        }
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the batch should be sent before another record is added.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= BATCH_BYTES || self.count as usize >= BATCH_RECORDS
    }

    /// The frame so far; this writer goes on with an empty batch of the
    /// same request.
    pub fn take(&mut self) -> Vec<u8> {
        let mut next = Vec::with_capacity(BATCH_BYTES + 4096);
        next.extend_from_slice(&self.buf[..self.count_at + 4]);
        let full = std::mem::replace(
            self,
            LogBatchWriter {
                buf: next,
                count_at: self.count_at,
                count: 0,
                ctx: Context::default(),
            },
        );
        full.finish()
    }

    /// The whole frame (length, tag, body).
    pub fn finish(mut self) -> Vec<u8> {
        let len = (self.buf.len() - 4) as u32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf[self.count_at..self.count_at + 4].copy_from_slice(&self.count.to_be_bytes());
        self.buf
    }
}
