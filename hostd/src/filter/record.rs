//! The `#[repr(C)]` views compiled code reads: one [`RecordRef`] per log
//! record, one [`MetricsRef`] per rule evaluation.
//!
//! Compiled code loads fields at the offsets `std::mem::offset_of!` reports
//! here, so these layouts are the contract between `codegen.rs` and Rust.

use std::marker::PhantomData;

use schema::LogRecord;
use schema::expr::Metrics;
use schema::types::Stream;

/// A borrowed string as compiled code sees it. `ptr` is valid for `len`
/// bytes of UTF-8 for as long as the `RecordRef` holding it borrows.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct StrRef {
    pub ptr: *const u8,
    pub len: usize,
}

impl StrRef {
    fn new(s: &str) -> StrRef {
        StrRef { ptr: s.as_ptr(), len: s.len() }
    }
}

/// The lifetime-free layout; [`RecordRef`] adds the borrow. Kept separate so
/// a reusable buffer of them can outlive any one batch.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord {
    pub host: StrRef,
    pub app: StrRef,
    pub instance: StrRef,
    pub time: StrRef,
    pub line: StrRef,
    pub seq: u64,
    /// The release number; meaningless when `has_release` is 0.
    pub release: u32,
    /// 1 when the record belongs to a release.
    pub has_release: u8,
    /// [`stream_code`] of the record's stream.
    pub stream: u8,
}

/// What compiled code stores in `RawRecord::stream` for each stream.
pub(crate) fn stream_code(s: Stream) -> u8 {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
        Stream::System => 2,
    }
}

impl RawRecord {
    pub(crate) fn new(rec: &LogRecord) -> RawRecord {
        RawRecord {
            host: StrRef::new(&rec.host),
            app: StrRef::new(&rec.app),
            instance: StrRef::new(&rec.instance),
            time: StrRef::new(&rec.time),
            line: StrRef::new(&rec.line),
            seq: rec.seq,
            release: rec.release.map_or(0, |v| v.0),
            has_release: u8::from(rec.release.is_some()),
            stream: stream_code(rec.stream),
        }
    }
}

/// A log record viewed for compiled filters: pointers and lengths of its
/// strings plus its scalars, with no copying of text.
///
/// Build one with [`RecordRef::new`] from a [`LogRecord`], or with
/// [`RecordRef::from_parts`] where records are produced (before a
/// `LogRecord` exists), and pass a slice to
/// [`super::CompiledFilter::matches_refs`].
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub(crate) raw: RawRecord,
    _borrow: PhantomData<&'a str>,
}

/// The fields of a record, borrowed, for [`RecordRef::from_parts`].
#[derive(Debug, Clone, Copy)]
pub struct RecordParts<'a> {
    pub host: &'a str,
    pub app: &'a str,
    pub instance: &'a str,
    pub time: &'a str,
    pub line: &'a str,
    pub seq: u64,
    /// The release number (`v3` is 3), if the record belongs to one.
    pub release: Option<u32>,
    pub stream: Stream,
}

impl<'a> RecordRef<'a> {
    pub fn new(rec: &'a LogRecord) -> RecordRef<'a> {
        RecordRef { raw: RawRecord::new(rec), _borrow: PhantomData }
    }

    pub fn from_parts(p: RecordParts<'a>) -> RecordRef<'a> {
        RecordRef {
            raw: RawRecord {
                host: StrRef::new(p.host),
                app: StrRef::new(p.app),
                instance: StrRef::new(p.instance),
                time: StrRef::new(p.time),
                line: StrRef::new(p.line),
                seq: p.seq,
                release: p.release.unwrap_or(0),
                has_release: u8::from(p.release.is_some()),
                stream: stream_code(p.stream),
            },
            _borrow: PhantomData,
        }
    }
}

/// [`Metrics`] as compiled rules read them: floats with no data are NaN,
/// which every compiled float comparison treats as false.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricsRef {
    pub requests: u64,
    pub errors: u64,
    pub restarts: u64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl MetricsRef {
    pub(crate) fn new(m: &Metrics) -> MetricsRef {
        let f = |x: Option<f64>| x.unwrap_or(f64::NAN);
        MetricsRef {
            requests: m.requests,
            errors: m.errors,
            restarts: m.restarts,
            error_rate: f(m.error_rate),
            p50_ms: f(m.p50_ms),
            p99_ms: f(m.p99_ms),
        }
    }
}
