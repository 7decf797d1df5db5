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

use crate::Version;
use crate::frame::FrameError;
use crate::time::UnixMillis;
use crate::types::{LogRecord, Stream};

/// The frame tag of a log batch.
pub const TAG_LOGS: u8 = 3;

const PARTIAL: u8 = 1 << 2;
const HAS_RELEASE: u8 = 1 << 3;
const SAME_INSTANCE: u8 = 1 << 4;
const RESET: u8 = 1 << 5;
const KNOWN_FLAGS: u8 = 0b11 | PARTIAL | HAS_RELEASE | SAME_INSTANCE | RESET;

/// A batch is cut when its body passes this size (or its record count
/// reaches [`BATCH_RECORDS`]): big enough that per-frame costs vanish,
/// small enough that the first lines of a bulk read leave at once.
pub const BATCH_BYTES: usize = 128 * 1024;
pub const BATCH_RECORDS: usize = 4096;

/// A segment is cut when its body passes this size or its record count
/// reaches [`SEGMENT_RECORDS`]; at half a batch, any segment fits in a batch.
pub const SEGMENT_BYTES: usize = BATCH_BYTES / 2;
pub const SEGMENT_RECORDS: usize = BATCH_RECORDS / 2;

/// One record as it is read from a batch (or built from a [`LogRecord`]).
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

/// What the next record is delta-coded against.
#[derive(Debug, Clone, Copy, Default)]
struct Context {
    /// The previous record's time; `None` codes the next record RESET.
    last_time: Option<i64>,
    /// Where the previous record's instance is in the buffer.
    last_instance: Option<(usize, usize)>,
}

/// Appends one record to `buf`.
fn encode(buf: &mut Vec<u8>, ctx: &mut Context, r: &LogRef<'_>) {
    put_varint(buf, r.seq);
    let reset = ctx.last_time.is_none();
    put_varint(buf, zigzag(r.time.wrapping_sub(ctx.last_time.unwrap_or(0))));
    ctx.last_time = Some(r.time);
    let same = !reset
        && ctx
            .last_instance
            .is_some_and(|(a, b)| &buf[a..b] == r.instance.as_bytes());
    let mut flags = match r.stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
        Stream::System => 2,
    };
    if r.partial {
        flags |= PARTIAL;
    }
    if r.release.is_some() {
        flags |= HAS_RELEASE;
    }
    if same {
        flags |= SAME_INSTANCE;
    }
    if reset {
        flags |= RESET;
    }
    buf.push(flags);
    if let Some(v) = r.release {
        put_varint(buf, v as u64);
    }
    if !same {
        put_varint(buf, r.instance.len() as u64);
        let at = buf.len();
        buf.extend_from_slice(r.instance.as_bytes());
        ctx.last_instance = Some((at, buf.len()));
    }
    put_varint(buf, r.line.len() as u64);
    buf.extend_from_slice(r.line.as_bytes());
}

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
    /// records of a segment (see [`check_segment`]).
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

/// Every record takes at least 4 bytes: a claimed count beyond that is a lie.
fn check_count(len: usize, count: usize) -> Result<(), String> {
    if count > len / 4 {
        return Err(format!("{count} records cannot fit in {len} bytes"));
    }
    Ok(())
}

/// Reads `count` records from `r`, each checked before `f` sees it.
fn walk<'a>(r: &mut Reader<'a>, count: usize, mut f: impl FnMut(LogRef<'a>)) -> Result<(), String> {
    let mut time = 0i64;
    let mut instance: Option<&'a str> = None;
    for i in 0..count {
        let at = |e: String| format!("record {i}: {e}");
        let seq = r.varint().map_err(at)?;
        let delta = unzigzag(r.varint().map_err(at)?);
        let flags = r.byte().map_err(at)?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(at(format!("unknown flags {flags:#04x}")));
        }
        time = if flags & RESET != 0 { 0 } else { time }.wrapping_add(delta);
        let stream = match flags & 0b11 {
            0 => Stream::Stdout,
            1 => Stream::Stderr,
            2 => Stream::System,
            s => return Err(at(format!("unknown stream {s}"))),
        };
        let release = if flags & HAS_RELEASE != 0 {
            let v = r.varint().map_err(at)?;
            Some(u32::try_from(v).map_err(|_| at(format!("release {v} is out of range")))?)
        } else {
            None
        };
        let inst = if flags & SAME_INSTANCE != 0 {
            instance.ok_or_else(|| at("repeats an instance before naming one".into()))?
        } else {
            let n = r.len().map_err(at)?;
            let s = r.str(n).map_err(at)?;
            instance = Some(s);
            s
        };
        let n = r.len().map_err(at)?;
        let line = r.str(n).map_err(at)?;
        f(LogRef {
            seq,
            time,
            release,
            instance: inst,
            stream,
            line,
            partial: flags & PARTIAL != 0,
        });
    }
    Ok(())
}

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
        let stream = match flags & 0b11 {
            0 => Stream::Stdout,
            1 => Stream::Stderr,
            _ => Stream::System,
        };
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

impl RawRef<'_> {
    pub fn to_record(&self, host: &str, app: &str) -> LogRecord {
        // The decoder checked the text: nothing is replaced here.
        let text = |b| std::str::from_utf8(b).unwrap_or("");
        LogRef {
            seq: self.seq,
            time: self.time,
            release: self.release,
            instance: text(self.instance),
            stream: self.stream,
            line: text(self.line),
            partial: self.partial,
        }
        .to_record(host, app)
    }

    /// Appends the record as `logs` prints it (see [`crate::render::log_line`]),
    /// with a newline.
    pub fn write_text(&self, host: &str, app: &str, clock: &mut Clock, out: &mut Vec<u8>) {
        out.reserve(48 + host.len() + app.len() + self.instance.len() + self.line.len());
        clock.write(self.time, out);
        out.push(b' ');
        out.extend_from_slice(host.as_bytes());
        out.push(b' ');
        out.extend_from_slice(app.as_bytes());
        out.push(b'[');
        match self.release {
            Some(v) => {
                out.push(b'v');
                write_u64(v as u64, out);
            }
            None => out.push(b'-'),
        }
        out.push(b' ');
        out.extend_from_slice(self.instance);
        out.extend_from_slice(b"] ");
        out.extend_from_slice(self.stream.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(self.line);
        if self.partial {
            out.extend_from_slice(" …".as_bytes());
        }
        out.push(b'\n');
    }

    /// Appends the record as `logs --json` prints it: the JSON of the
    /// matching [`LogRecord`], byte for byte, and a newline.
    pub fn write_json(&self, host: &str, app: &str, clock: &mut Clock, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"seq\":");
        write_u64(self.seq, out);
        out.extend_from_slice(b",\"time\":\"");
        clock.write(self.time, out);
        out.extend_from_slice(b"\",\"host\":");
        json_str(host.as_bytes(), out);
        out.extend_from_slice(b",\"app\":");
        json_str(app.as_bytes(), out);
        out.extend_from_slice(b",\"release\":");
        match self.release {
            Some(v) => {
                out.extend_from_slice(b"\"v");
                write_u64(v as u64, out);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"instance\":");
        json_str(self.instance, out);
        out.extend_from_slice(b",\"stream\":\"");
        out.extend_from_slice(self.stream.as_str().as_bytes());
        out.extend_from_slice(b"\",\"line\":");
        json_str(self.line, out);
        if self.partial {
            out.extend_from_slice(b",\"partial\":true");
        }
        out.extend_from_slice(b"}\n");
    }
}

impl<'a> LogRef<'a> {
    /// A record's fields as a [`LogRef`] (the time parsed from RFC 3339).
    pub fn of(r: &'a LogRecord) -> LogRef<'a> {
        LogRef::of_at(r, crate::time::parse_rfc3339(&r.time).unwrap_or(0))
    }

    /// A record's fields, its time already known in Unix milliseconds.
    pub fn of_at(r: &'a LogRecord, time: UnixMillis) -> LogRef<'a> {
        LogRef {
            seq: r.seq,
            time,
            release: r.release.map(|v| v.0),
            instance: &r.instance,
            stream: r.stream,
            line: &r.line,
            partial: r.partial,
        }
    }

    pub fn to_record(&self, host: &str, app: &str) -> LogRecord {
        LogRecord {
            seq: self.seq,
            time: crate::time::rfc3339(self.time),
            host: host.to_string(),
            app: app.to_string(),
            release: self.release.map(Version),
            instance: self.instance.to_string(),
            stream: self.stream,
            line: self.line.to_string(),
            partial: self.partial,
        }
    }

    /// Makes `out` this record of `host` (like [`to_record`](Self::to_record)),
    /// reusing its strings' memory: a page of records refilled for each
    /// page costs no allocation per record.
    pub fn fill_record(&self, host: &str, app: &str, clock: &mut Clock, out: &mut LogRecord) {
        fn set(s: &mut String, v: &str) {
            s.clear();
            s.push_str(v);
        }
        out.seq = self.seq;
        out.time.clear();
        clock.write_string(self.time, &mut out.time);
        set(&mut out.host, host);
        set(&mut out.app, app);
        out.release = self.release.map(Version);
        set(&mut out.instance, self.instance);
        out.stream = self.stream;
        set(&mut out.line, self.line);
        out.partial = self.partial;
    }

    /// The record as a [`RawRef`], to render.
    pub fn raw(&self) -> RawRef<'a> {
        RawRef {
            seq: self.seq,
            time: self.time,
            release: self.release,
            instance: self.instance.as_bytes(),
            stream: self.stream,
            line: self.line.as_bytes(),
            partial: self.partial,
        }
    }

    /// See [`RawRef::write_text`].
    pub fn write_text(&self, host: &str, app: &str, clock: &mut Clock, out: &mut Vec<u8>) {
        self.raw().write_text(host, app, clock, out);
    }

    /// See [`RawRef::write_json`].
    pub fn write_json(&self, host: &str, app: &str, clock: &mut Clock, out: &mut Vec<u8>) {
        self.raw().write_json(host, app, clock, out);
    }
}

/// RFC 3339 text of millisecond timestamps, the date and time of day
/// computed once per second.
#[derive(Debug, Default)]
pub struct Clock {
    second: Option<i64>,
    /// `2026-11-24T10:16:29.` for `second`.
    prefix: String,
}

impl Clock {
    /// The date and time of day up to the second, and the milliseconds.
    fn parts(&mut self, ms: UnixMillis) -> (&str, [u8; 4]) {
        let sec = ms.div_euclid(1000);
        if self.second != Some(sec) {
            let mut full = crate::time::rfc3339(ms);
            full.truncate(full.len() - 4);
            self.prefix = full;
            self.second = Some(sec);
        }
        let m = ms.rem_euclid(1000) as u32;
        let tail = [
            b'0' + (m / 100) as u8,
            b'0' + (m / 10 % 10) as u8,
            b'0' + (m % 10) as u8,
            b'Z',
        ];
        (&self.prefix, tail)
    }

    pub fn write(&mut self, ms: UnixMillis, out: &mut Vec<u8>) {
        let (prefix, tail) = self.parts(ms);
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(&tail);
    }

    /// Like [`write`](Self::write), into a string.
    pub fn write_string(&mut self, ms: UnixMillis, out: &mut String) {
        let (prefix, tail) = self.parts(ms);
        out.push_str(prefix);
        out.extend(tail.iter().map(|b| *b as char));
    }
}

fn write_u64(mut v: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A JSON string as serde_json writes it: `"` and `\` escaped, control
/// characters as `\n`-style or `\u00XX` escapes, everything else as is.
fn json_str(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(esc);
        }
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .buf
            .get(self.at)
            .ok_or_else(|| "ends in the middle of a record".to_string())?;
        self.at += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self
            .buf
            .get(self.at..self.at + N)
            .ok_or_else(|| format!("ends within its {N}-byte header field"))?;
        self.at += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, String> {
        // Most numbers of a batch (time deltas, lengths) fit in one byte.
        if let Some(&b) = self.buf.get(self.at)
            && b < 0x80
        {
            self.at += 1;
            return Ok(b as u64);
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(v);
            }
        }
        Err("a number longer than 64 bits".into())
    }

    fn len(&mut self) -> Result<usize, String> {
        let n = self.varint()?;
        if n > (self.buf.len() - self.at) as u64 {
            return Err(format!(
                "a length of {n} bytes runs past the end of the batch"
            ));
        }
        Ok(n as usize)
    }

    fn str(&mut self, n: usize) -> Result<&'a str, String> {
        let s = self
            .buf
            .get(self.at..self.at + n)
            .ok_or_else(|| format!("a {n}-byte string runs past the end of the batch"))?;
        self.at += n;
        std::str::from_utf8(s).map_err(|e| format!("text that is not UTF-8 ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;
    use proptest::prelude::*;

    fn record(seq: u64, time: i64, inst: &str, line: &str) -> LogRecord {
        LogRecord {
            seq,
            time: crate::time::rfc3339(time),
            host: "h1".into(),
            app: "web".into(),
            release: Some(Version(3)),
            instance: inst.into(),
            stream: Stream::Stdout,
            line: line.into(),
            partial: false,
        }
    }

    fn batch_of(id: u64, app: &str, rs: &[LogRecord]) -> Vec<u8> {
        let mut w = LogBatchWriter::new(id, app);
        for r in rs {
            w.push(&LogRef::of(r));
        }
        w.finish()
    }

    fn decode_frame(wire: &[u8]) -> LogBatch {
        let (f, n) = frame::decode(wire, crate::tunnel::MAX_TUNNEL_FRAME)
            .unwrap()
            .unwrap();
        assert_eq!(n, wire.len());
        assert_eq!(f.tag, TAG_LOGS);
        LogBatch::decode(&f.body).unwrap()
    }

    #[test]
    fn a_batch_round_trips_and_renders_like_the_record_types() {
        let mut rs = vec![
            record(7, 1_764_000_000_123, "web.1", "GET / 200"),
            record(
                8,
                1_764_000_000_999,
                "web.1",
                "tab\there \"quoted\" \\ \u{1} é …",
            ),
            record(9, 1_764_000_001_000, "web.2", ""),
        ];
        rs[1].stream = Stream::Stderr;
        rs[1].partial = true;
        rs[2].release = None;
        rs[2].stream = Stream::System;
        let b = decode_frame(&batch_of(42, "web", &rs));
        assert_eq!((b.id, b.app.as_str(), b.len()), (42, "web", 3));
        assert_eq!(b.to_records("h1"), rs);
        let mut clock = Clock::default();
        for (r, want) in b.iter().zip(&rs) {
            let mut text = Vec::new();
            r.write_text("h1", "web", &mut clock, &mut text);
            assert_eq!(
                String::from_utf8(text).unwrap(),
                crate::render::log_line(want) + "\n"
            );
            let mut json = Vec::new();
            r.write_json("h1", "web", &mut clock, &mut json);
            assert_eq!(
                String::from_utf8(json).unwrap(),
                serde_json::to_string(want).unwrap() + "\n"
            );
        }
    }

    #[test]
    fn skipping_resumes_after_a_sequence_number() {
        let rs: Vec<_> = (1..=5)
            .map(|s| record(s, 1_000 * s as i64, "a.1", "x"))
            .collect();
        let mut b = decode_frame(&batch_of(1, "a", &rs));
        b.skip_through(3);
        assert_eq!(b.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(b.last_seq(), Some(5));
        b.skip_through(9);
        assert!(b.is_empty());
        assert_eq!(b.last_seq(), None);
    }

    #[test]
    fn malformed_batches_are_errors_that_say_what_is_wrong() {
        let rs = vec![record(1, 5, "a.1", "hello")];
        let wire = batch_of(1, "a", &rs);
        let body = &wire[5..];
        // Truncated anywhere: an error, never a panic.
        for cut in 0..body.len() {
            assert!(LogBatch::decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        // Trailing garbage.
        let mut long = body.to_vec();
        long.push(0);
        let e = LogBatch::decode(&long).unwrap_err().to_string();
        assert!(e.contains("after the last record"), "{e}");
        // Not UTF-8.
        let mut bad = body.to_vec();
        let at = bad.len() - 1;
        bad[at] = 0xff;
        let e = LogBatch::decode(&bad).unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        // A count no body could hold.
        let mut lie = body.to_vec();
        lie[11..15].copy_from_slice(&u32::MAX.to_be_bytes());
        let e = LogBatch::decode(&lie).unwrap_err().to_string();
        assert!(e.contains("cannot fit"), "{e}");
    }

    fn segment_of(rs: &[LogRecord]) -> LogSegment {
        let mut w = LogSegmentWriter::new();
        for r in rs {
            w.push(&LogRef::of(r));
        }
        w.finish()
    }

    /// Records pushed one at a time and segments copied in, in turn, at
    /// the given cut points (a cut at an odd index starts a segment).
    fn mixed_batch(rs: &[LogRecord], cuts: &[usize]) -> Vec<u8> {
        let mut w = LogBatchWriter::new(5, "web");
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (rs.len() + 1)).collect();
        bounds.push(0);
        bounds.push(rs.len());
        bounds.sort_unstable();
        bounds.dedup();
        for (i, pair) in bounds.windows(2).enumerate() {
            let part = &rs[pair[0]..pair[1]];
            if i % 2 == 1 {
                let s = segment_of(part);
                check_segment(&s.body, s.count).unwrap();
                w.push_segment(&s.body, s.count);
            } else {
                for r in part {
                    w.push(&LogRef::of(r));
                }
            }
        }
        w.finish()
    }

    #[test]
    fn segments_copied_into_a_batch_read_like_records_pushed_one_at_a_time() {
        let rs: Vec<_> = (1..=9)
            .map(|s| {
                record(
                    s,
                    1_000_000 + 7 * s as i64,
                    ["a.1", "a.2"][s as usize % 3 / 2],
                    "x",
                )
            })
            .collect();
        let b = decode_frame(&mixed_batch(&rs, &[2, 3, 7]));
        assert_eq!(b.to_records("h1"), rs);
        let s = segment_of(&rs[2..6]);
        assert_eq!((s.first_seq, s.last_seq, s.count), (3, 6, 4));
        assert_eq!((s.min_time, s.max_time), (1_000_021, 1_000_042));
        let mut seen = Vec::new();
        segment_records(&s.body, s.count, |r| seen.push(r.to_record("h1", "web"))).unwrap();
        assert_eq!(seen, rs[2..6]);
    }

    #[test]
    fn malformed_segments_are_refused_whole() {
        let rs = vec![record(1, 5, "a.1", "hello"), record(2, 6, "a.2", "world")];
        let s = segment_of(&rs);
        for cut in 0..s.body.len() {
            assert!(
                check_segment(&s.body[..cut], s.count).is_err(),
                "cut at {cut}"
            );
        }
        let e = check_segment(&s.body, 3).unwrap_err().to_string();
        assert!(e.contains("log segment"), "{e}");
        let mut long = s.body.clone();
        long.push(0);
        let e = check_segment(&long, 2).unwrap_err().to_string();
        assert!(e.contains("after the last record"), "{e}");
        // The second record alone depends on the first: not a segment.
        let first = segment_of(&rs[..1]).body.len();
        let e = check_segment(&s.body[first..], 1).unwrap_err().to_string();
        assert!(e.contains("does not start afresh"), "{e}");
        let mut called = false;
        assert!(segment_records(&s.body[..s.body.len() - 1], 2, |_| called = true).is_err());
        assert!(!called, "nothing is read from a malformed segment");
    }

    fn arb_record() -> impl Strategy<Value = LogRecord> {
        (
            any::<u64>(),
            0i64..253_402_300_799_999,
            proptest::option::of(any::<u32>()),
            "[a-z0-9.]{0,12}",
            0u8..3,
            any::<String>(),
            any::<bool>(),
        )
            .prop_map(
                |(seq, time, release, instance, s, line, partial)| LogRecord {
                    seq,
                    time: crate::time::rfc3339(time),
                    host: "host-1".into(),
                    app: "app".into(),
                    release: release.map(Version),
                    instance,
                    stream: [Stream::Stdout, Stream::Stderr, Stream::System][s as usize],
                    line,
                    partial,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn any_records_round_trip_and_render_exactly(rs in proptest::collection::vec(arb_record(), 0..40)) {
            let b = decode_frame(&batch_of(9, "app", &rs));
            prop_assert_eq!(&b.to_records("host-1"), &rs);
            let mut clock = Clock::default();
            // One record refilled with each in turn.
            let mut reused = record(0, 0, "x", "y");
            for want in &rs {
                LogRef::of(want).fill_record("host-1", "app", &mut clock, &mut reused);
                prop_assert_eq!(&reused, want);
            }
            for (r, want) in b.iter().zip(&rs) {
                let mut json = Vec::new();
                r.write_json("host-1", "app", &mut clock, &mut json);
                prop_assert_eq!(String::from_utf8(json).unwrap(), serde_json::to_string(want).unwrap() + "\n");
                let mut text = Vec::new();
                r.write_text("host-1", "app", &mut clock, &mut text);
                prop_assert_eq!(String::from_utf8(text).unwrap(), crate::render::log_line(want) + "\n");
            }
        }

        #[test]
        fn any_segments_copied_into_a_batch_round_trip(
            rs in proptest::collection::vec(arb_record(), 0..40),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let b = decode_frame(&mixed_batch(&rs, &cuts));
            let want: Vec<LogRecord> = rs.iter().map(|r| LogRecord { app: "web".into(), ..r.clone() }).collect();
            prop_assert_eq!(&b.to_records("host-1"), &want);
        }

        #[test]
        fn the_segment_checker_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400), count in 0u32..200) {
            let _ = check_segment(&body, count);
        }

        #[test]
        fn the_decoder_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = LogBatch::decode(&body);
        }
    }
}
