//! The Rust functions compiled filters call, and the per-call state they
//! share ([`EvalCtx`]).
//!
//! JSON fields are found lazily: the first time compiled code asks for a JSON
//! field of a record, its line is scanned once (`json/`) for all the fields
//! the filter names, and later lookups of that record read the slots.
//!
//! Every helper is `extern "C"`, never panics (a panic cannot unwind out of
//! one), and reads only what its arguments point to.

use regex::Regex;
use schema::LogRecord;
use schema::expr::Level;

use super::json::{self, Kind, Slot};

/// State shared by the helpers during one call of a compiled filter.
pub(crate) struct EvalCtx<'a> {
    names: &'a [String],
    slots: &'a mut [Slot],
    /// The record `slots` describe; null before the first JSON lookup of a
    /// call. Records of one call have distinct addresses, and a fresh
    /// `EvalCtx` is made per call, so a pointer match means "same record".
    current: *const LogRecord,
}

impl<'a> EvalCtx<'a> {
    /// `slots` must hold at least `names.len()` entries.
    pub(crate) fn new(names: &'a [String], slots: &'a mut [Slot]) -> EvalCtx<'a> {
        debug_assert!(slots.len() >= names.len());
        EvalCtx {
            names,
            slots,
            current: std::ptr::null(),
        }
    }

    fn slot(&mut self, rec: &LogRecord, slot: usize) -> Option<&Slot> {
        if !std::ptr::eq(self.current, rec) {
            json::fill(self.names, self.slots, &rec.line);
            self.current = rec;
        }
        self.slots.get(slot)
    }
}

/// Rebuilds a `&str` from compiled code's pointer and length.
///
/// # Safety
/// `ptr` must be valid for `len` bytes of UTF-8 for `'a`. Compiled code only
/// passes pointers it read from a record's `String`s or a `Slot`, or
/// literals owned by the `CompiledFilter`, all taken from `&str`.
unsafe fn str_from<'a>(ptr: *const u8, len: usize) -> &'a str {
    if len == 0 {
        return "";
    }
    // SAFETY: per this function's contract.
    unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len)) }
}

// ---------------------------------------------------------------------------
// The helpers compiled code calls. Each states what its pointers must be;
// codegen/ upholds that by only passing record fields, slot values and
// literals the `CompiledFilter` owns.

/// The JSON number in `slot` of `rec`, or NaN (which every compiled float
/// comparison treats as false) when it is missing or not a number.
///
/// # Safety
/// `ctx` is the live `EvalCtx` of this call; `rec` points to a `LogRecord`
/// of this call's batch.
pub(crate) unsafe extern "C" fn cf_json_number(
    ctx: *mut EvalCtx<'_>,
    rec: *const LogRecord,
    slot: usize,
) -> f64 {
    // SAFETY: per the contract above.
    let (ctx, rec) = unsafe { (&mut *ctx, &*rec) };
    match ctx.slot(rec, slot).map(|s| s.kind) {
        Some(Kind::Number(n)) => n,
        _ => f64::NAN,
    }
}

/// The JSON string in `slot` of `rec`: its pointer, with its length stored
/// at `len_out`; null when missing or not a string.
///
/// # Safety
/// As [`cf_json_number`]; `len_out` is valid for a `usize` write.
pub(crate) unsafe extern "C" fn cf_json_text(
    ctx: *mut EvalCtx<'_>,
    rec: *const LogRecord,
    slot: usize,
    len_out: *mut usize,
) -> *const u8 {
    // SAFETY: per the contract above.
    let (ctx, rec) = unsafe { (&mut *ctx, &*rec) };
    match ctx.slot(rec, slot).and_then(Slot::as_str) {
        Some(text) => {
            // SAFETY: `len_out` is a stack slot of the compiled function.
            unsafe { *len_out = text.len() };
            // Never null (that means missing), even for "".
            text.as_ptr()
        }
        None => std::ptr::null(),
    }
}

/// 1 or 0 for a JSON boolean in `slot`, -1 when missing or not a boolean.
///
/// # Safety
/// As [`cf_json_number`].
pub(crate) unsafe extern "C" fn cf_json_bool(
    ctx: *mut EvalCtx<'_>,
    rec: *const LogRecord,
    slot: usize,
) -> i32 {
    // SAFETY: per the contract above.
    let (ctx, rec) = unsafe { (&mut *ctx, &*rec) };
    match ctx.slot(rec, slot).map(|s| s.kind) {
        Some(Kind::Bool(b)) => i32::from(b),
        _ => -1,
    }
}

/// The severity (`Level as i32`) of the level named by `slot`, -1 when it is
/// missing or names no level (see `schema::expr::json_level`).
///
/// # Safety
/// As [`cf_json_number`].
pub(crate) unsafe extern "C" fn cf_json_level(
    ctx: *mut EvalCtx<'_>,
    rec: *const LogRecord,
    slot: usize,
) -> i32 {
    // SAFETY: per the contract above.
    let (ctx, rec) = unsafe { (&mut *ctx, &*rec) };
    let level = match ctx.slot(rec, slot) {
        Some(Slot {
            kind: Kind::Number(n),
            ..
        }) => Level::from_number(*n),
        Some(s) => s.as_str().and_then(Level::from_name),
        None => None,
    };
    level.map_or(-1, |l| l as i32)
}

/// The record's release number, or -1 when it has none.
///
/// # Safety
/// `rec` points to a live `LogRecord`.
pub(crate) unsafe extern "C" fn cf_release(rec: *const LogRecord) -> i64 {
    // SAFETY: per the contract above.
    let rec = unsafe { &*rec };
    rec.release.map_or(-1, |v| i64::from(v.0))
}

/// Byte-wise comparison: -1, 0 or 1 as `a` sorts before, with or after `b`.
///
/// # Safety
/// `a` valid for `alen` bytes, `b` for `blen`.
pub(crate) unsafe extern "C" fn cf_text_cmp(
    a: *const u8,
    alen: usize,
    b: *const u8,
    blen: usize,
) -> i32 {
    // SAFETY: per the contract above (UTF-8 is not needed for bytes).
    let (a, b) = unsafe { (bytes_from(a, alen), bytes_from(b, blen)) };
    a.cmp(b) as i32
}

/// 1 when the `len` bytes at `a` and `b` are equal.
///
/// # Safety
/// Both valid for `len` bytes.
pub(crate) unsafe extern "C" fn cf_bytes_eq(a: *const u8, b: *const u8, len: usize) -> u8 {
    // SAFETY: per the contract above.
    let (a, b) = unsafe { (bytes_from(a, len), bytes_from(b, len)) };
    u8::from(a == b)
}

/// 1 when `needle` occurs in `hay`.
///
/// # Safety
/// Both valid UTF-8 for their lengths.
pub(crate) unsafe extern "C" fn cf_contains(
    hay: *const u8,
    hlen: usize,
    needle: *const u8,
    nlen: usize,
) -> u8 {
    // SAFETY: per the contract above.
    let (hay, needle) = unsafe { (str_from(hay, hlen), str_from(needle, nlen)) };
    u8::from(hay.contains(needle))
}

/// 1 when `re` matches anywhere in the text.
///
/// # Safety
/// `re` points to a `Regex` owned by the `CompiledFilter` running; `text`
/// valid UTF-8 for `len` bytes.
pub(crate) unsafe extern "C" fn cf_regex_match(
    re: *const Regex,
    text: *const u8,
    len: usize,
) -> u8 {
    // SAFETY: per the contract above.
    let (re, text) = unsafe { (&*re, str_from(text, len)) };
    u8::from(re.is_match(text))
}

/// # Safety
/// `ptr` valid for `len` bytes (or `len == 0`).
unsafe fn bytes_from<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: per this function's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// Argument and result types of the helpers, for their cranelift signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Ptr,
    I64,
    I32,
    I8,
    F64,
}

/// One helper: its symbol name, address and signature.
pub(crate) struct Helper {
    pub name: &'static str,
    pub addr: *const u8,
    pub params: &'static [Ty],
    pub ret: Ty,
}

/// Every helper compiled code may import, by name.
pub(crate) fn helpers() -> [Helper; 9] {
    use Ty::*;
    [
        Helper {
            name: "cf_json_number",
            addr: cf_json_number as *const u8,
            params: &[Ptr, Ptr, Ptr],
            ret: F64,
        },
        Helper {
            name: "cf_json_text",
            addr: cf_json_text as *const u8,
            params: &[Ptr, Ptr, Ptr, Ptr],
            ret: Ptr,
        },
        Helper {
            name: "cf_json_bool",
            addr: cf_json_bool as *const u8,
            params: &[Ptr, Ptr, Ptr],
            ret: I32,
        },
        Helper {
            name: "cf_json_level",
            addr: cf_json_level as *const u8,
            params: &[Ptr, Ptr, Ptr],
            ret: I32,
        },
        Helper {
            name: "cf_release",
            addr: cf_release as *const u8,
            params: &[Ptr],
            ret: I64,
        },
        Helper {
            name: "cf_text_cmp",
            addr: cf_text_cmp as *const u8,
            params: &[Ptr, Ptr, Ptr, Ptr],
            ret: I32,
        },
        Helper {
            name: "cf_bytes_eq",
            addr: cf_bytes_eq as *const u8,
            params: &[Ptr, Ptr, Ptr],
            ret: I8,
        },
        Helper {
            name: "cf_contains",
            addr: cf_contains as *const u8,
            params: &[Ptr, Ptr, Ptr, Ptr],
            ret: I8,
        },
        Helper {
            name: "cf_regex_match",
            addr: cf_regex_match as *const u8,
            params: &[Ptr, Ptr, Ptr],
            ret: I8,
        },
    ]
}
