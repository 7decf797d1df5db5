//! Log records in bulk: the tunnel's binary batch, the store's segments, and
//! text or JSON lines rendered straight from them.
//!
//! Records are the bulk of what crosses a tunnel, and most of what a `logs`
//! command costs is per record: a JSON object and five strings each way
//! would cost more than the SSH hops. A batch is one frame (tag
//! [`TAG_LOGS`]) holding the records of one app from one host:
//!
//! ```text
//! u64 id (BE) | u16 app length (BE) | app | u32 count (BE) | count × record
//! record = varint seq | varint zigzag(time - previous time) | u8 flags
//!          | [varint release]            (flags & HAS_RELEASE)
//!          | [varint length | instance]  (unless flags & SAME_INSTANCE)
//!          | varint length | line
//! flags  = stream (bits 0-1: stdout, stderr, system) | PARTIAL | HAS_RELEASE
//!          | SAME_INSTANCE | RESET
//! ```
//!
//! Times are Unix milliseconds, delta-coded from the previous record of the
//! batch; a record flagged RESET codes its time from 0 and names its
//! instance, so it depends on nothing before it. A *segment* is a run of
//! records whose first is RESET: hostd stores an app's records as segments
//! and a bulk read copies them into a batch as they are, without decoding
//! and encoding each record ([`LogBatchWriter::push_segment`]).
//!
//! The host is not in the batch: the gateway knows which tunnel it came
//! from. Decoding checks every length, varint and UTF-8 string before
//! anything is used, so a malformed batch or segment is one error, never a
//! panic or a half-read batch.
//!
//! The pieces: `format.rs` is the record encoding and its checked reader;
//! `batch.rs` builds batch frames; `segment.rs` builds and checks segments;
//! `read.rs` decodes a batch and reads it in place; `render.rs` turns a
//! record into `logs` text, JSON or a [`LogRecord`](crate::LogRecord).

mod batch;
mod format;
mod read;
mod render;
mod segment;
#[cfg(test)]
mod tests;

pub use batch::LogBatchWriter;
pub use read::{Cursor, LogBatch, RawRef};
pub use render::Clock;
pub use segment::{
    LogSegment, LogSegmentWriter, check_segment, checked_segment_records, segment_records,
};

use crate::time::UnixMillis;
use crate::types::Stream;

/// The frame tag of a log batch.
pub const TAG_LOGS: u8 = 3;

/// A batch is cut when its body passes this size (or its record count
/// reaches [`BATCH_RECORDS`]): big enough that per-frame costs vanish,
/// small enough that the first lines of a bulk read leave at once.
pub const BATCH_BYTES: usize = 128 * 1024;
pub const BATCH_RECORDS: usize = 4096;

/// A segment is cut when its body passes this size or its record count
/// reaches [`SEGMENT_RECORDS`]; at half a batch, any segment fits in a batch.
pub const SEGMENT_BYTES: usize = BATCH_BYTES / 2;
pub const SEGMENT_RECORDS: usize = BATCH_RECORDS / 2;

/// One record as it is read from a batch (or built from a
/// [`LogRecord`](crate::LogRecord)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRef<'a> {
    pub seq: u64,
    pub time: UnixMillis,
    pub release: Option<u32>,
    pub instance: &'a str,
    pub stream: Stream,
    pub line: &'a str,
    pub partial: bool,
}
