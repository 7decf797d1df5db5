//! Where compiled code finds the fields of a `LogRecord` and of `Metrics`.
//!
//! Compiled filters read records in place, straight from `&[LogRecord]`:
//! copying each record into a `#[repr(C)]` view first cost more (11 ns per
//! record, all memory traffic) than evaluating most filters. Field offsets
//! come from `offset_of!`; what compiled code needs beyond that is where a
//! `String` keeps its pointer and length, and how a `Stream` is stored. Both
//! are unspecified by Rust, so they are measured once at startup from real
//! values ([`Layout::probe`]); if the measurement is not conclusive,
//! compiling fails with `JitError::Unsupported` and callers keep the
//! interpreter. Release numbers (an `Option`, whose layout is not measurable
//! without reading padding) are read by a helper instead.

use std::mem::{offset_of, size_of};
use std::sync::OnceLock;

use schema::LogRecord;
use schema::expr::{Metrics, TextField};
use schema::types::Stream;

/// Offsets (bytes) of what compiled code loads from a `LogRecord`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Distance between consecutive records of a slice.
    pub stride: usize,
    /// Offset of the data pointer and of the length within a `String`.
    string_ptr: usize,
    string_len: usize,
    pub seq: usize,
    pub stream: usize,
    /// The byte a `Stream` is stored as, by variant.
    stream_codes: [u8; 5],
}

// The fields compiled code reads must keep these types; if one changes, this
// stops compiling and `Layout` must be revisited.
const _: fn(&LogRecord) = |r| {
    let _: (&String, &String, &String, &String, &String) =
        (&r.host, &r.app, &r.instance, &r.time, &r.line);
    let _: (&u64, &Stream) = (&r.seq, &r.stream);
};

impl Layout {
    /// The layout of this build, measured once.
    pub(crate) fn get() -> Result<Layout, String> {
        static LAYOUT: OnceLock<Result<Layout, String>> = OnceLock::new();
        LAYOUT.get_or_init(Layout::probe).clone()
    }

    fn probe() -> Result<Layout, String> {
        let (string_ptr, string_len) =
            probe_string().ok_or("could not locate String's pointer and length")?;
        if size_of::<Stream>() != 1 {
            return Err(format!(
                "Stream is {} bytes, expected 1",
                size_of::<Stream>()
            ));
        }
        let code = |s: Stream| {
            // SAFETY: `Stream` is a fieldless enum of size 1 (checked above):
            // its one byte is always initialized, so it can be read as a u8.
            unsafe { std::mem::transmute_copy::<Stream, u8>(&s) }
        };
        let stream_codes = [
            code(Stream::Stdout),
            code(Stream::Stderr),
            code(Stream::System),
            code(Stream::Message),
            code(Stream::Access),
        ];
        let distinct = stream_codes
            .iter()
            .enumerate()
            .all(|(i, a)| stream_codes[i + 1..].iter().all(|b| a != b));
        if !distinct {
            return Err("Stream variants are not told apart by their byte".into());
        }
        Ok(Layout {
            stride: size_of::<LogRecord>(),
            string_ptr,
            string_len,
            seq: offset_of!(LogRecord, seq),
            stream: offset_of!(LogRecord, stream),
            stream_codes,
        })
    }

    /// Offsets of a text field's data pointer and length.
    pub(crate) fn text(&self, field: TextField) -> (usize, usize) {
        let base = match field {
            TextField::Host => offset_of!(LogRecord, host),
            TextField::App => offset_of!(LogRecord, app),
            TextField::Instance => offset_of!(LogRecord, instance),
            TextField::Time => offset_of!(LogRecord, time),
            TextField::Line => offset_of!(LogRecord, line),
        };
        (base + self.string_ptr, base + self.string_len)
    }

    pub(crate) fn stream_code(&self, s: Stream) -> u8 {
        match s {
            Stream::Stdout => self.stream_codes[0],
            Stream::Stderr => self.stream_codes[1],
            Stream::System => self.stream_codes[2],
            Stream::Message => self.stream_codes[3],
            Stream::Access => self.stream_codes[4],
        }
    }
}

/// Offsets of a `String`'s data pointer and length. `String` is documented
/// to consist of a pointer, a capacity and a length, in unspecified order; at
/// three words' size each is one word, with no padding. Two strings with
/// distinct pointer, length and capacity tell which word is which.
fn probe_string() -> Option<(usize, usize)> {
    const WORD: usize = size_of::<usize>();
    if size_of::<String>() != 3 * WORD {
        return None;
    }
    let locate = |s: &String| -> Option<(usize, usize)> {
        // SAFETY: three words with no padding (size checked above), all
        // initialized: reading them as `[usize; 3]` reads initialized memory.
        let words: [usize; 3] = unsafe { std::mem::transmute_copy(s) };
        let find = |v: usize| {
            let mut hits = words.iter().enumerate().filter(|&(_, &w)| w == v);
            let first = hits.next()?.0;
            hits.next().is_none().then_some(first)
        };
        let (p, l, c) = (
            find(s.as_ptr() as usize)?,
            find(s.len())?,
            find(s.capacity())?,
        );
        (p != l && l != c && p != c).then_some((p * WORD, l * WORD))
    };
    let mut a = String::with_capacity(61);
    a.push_str("abc");
    let mut b = String::with_capacity(40);
    b.push_str("0123456789abcdefg");
    let found = locate(&a)?;
    (locate(&b)? == found).then_some(found)
}

/// [`Metrics`] as compiled rules read them: floats with no data are NaN,
/// which every compiled float comparison treats as false. Counts are here
/// twice: exact, for comparisons with an integer, and as `f64`, for
/// arithmetic (where a missing count, `stable.` outside a gate, is NaN).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricsRef {
    pub requests: u64,
    pub errors: u64,
    pub restarts: u64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests_f64: f64,
    pub errors_f64: f64,
    pub restarts_f64: f64,
}

impl MetricsRef {
    pub(crate) fn new(m: &Metrics) -> MetricsRef {
        // NaN in `Some` is no data too (`Metrics::value`); it stays NaN.
        let f = |x: Option<f64>| x.unwrap_or(f64::NAN);
        MetricsRef {
            requests: m.requests,
            errors: m.errors,
            restarts: m.restarts,
            error_rate: f(m.error_rate),
            p50_ms: f(m.p50_ms),
            p99_ms: f(m.p99_ms),
            requests_f64: m.requests as f64,
            errors_f64: m.errors as f64,
            restarts_f64: m.restarts as f64,
        }
    }

    /// A release with no metrics at all: what `stable.` reads outside a
    /// gate. Only arithmetic reads the stable release, and only the `f64`
    /// fields, all NaN.
    pub(crate) fn missing() -> MetricsRef {
        MetricsRef {
            requests: 0,
            errors: 0,
            restarts: 0,
            error_rate: f64::NAN,
            p50_ms: f64::NAN,
            p99_ms: f64::NAN,
            requests_f64: f64::NAN,
            errors_f64: f64::NAN,
            restarts_f64: f64::NAN,
        }
    }
}
