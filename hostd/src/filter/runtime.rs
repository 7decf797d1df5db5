//! The Rust functions compiled filters call, and the per-call state they
//! share ([`EvalCtx`]).
//!
//! JSON fields are found without building a `serde_json::Value`: the first
//! time compiled code asks for a JSON field of a record, the line is parsed
//! once by a serde visitor that keeps only the fields the filter names (their
//! [`Filter::json_fields`](schema::expr::Filter::json_fields) slots) and
//! skips the rest without allocating. It parses through serde_json's own
//! `deserialize_any` path, the one `serde_json::Value` uses, so it accepts
//! and refuses exactly the lines the interpreter does (depth limit, number
//! range, surrogates, trailing characters, last duplicate key wins).
//!
//! Every helper is `extern "C"`, never panics (a panic cannot unwind out of
//! one), and reads only what its arguments point to.

use std::fmt;

use regex::Regex;
use schema::expr::Level;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::record::RawRecord;

/// What one JSON field of the current record holds, as compiled code reads it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Kind {
    /// Absent, `null`, an array or an object: fails every test.
    #[default]
    Missing,
    Number(f64),
    Bool(bool),
    /// A string: `text` points into the line, or into `owned` when the JSON
    /// string had escapes.
    Text,
}

/// One JSON field's value for the record last parsed. Reused across records
/// (the `owned` buffer keeps its capacity).
#[derive(Debug)]
pub(crate) struct Slot {
    kind: Kind,
    text: *const u8,
    len: usize,
    owned: String,
}

impl Default for Slot {
    fn default() -> Slot {
        Slot { kind: Kind::Missing, text: std::ptr::null(), len: 0, owned: String::new() }
    }
}

/// State shared by the helpers during one call of a compiled filter.
pub(crate) struct EvalCtx<'a> {
    names: &'a [String],
    slots: &'a mut [Slot],
    /// The record `slots` describe; null before the first JSON lookup of a
    /// call. Records of one call have distinct addresses, and a fresh
    /// `EvalCtx` is made per call, so a pointer match means "same record".
    current: *const RawRecord,
}

impl<'a> EvalCtx<'a> {
    /// `slots` must hold at least `names.len()` entries.
    pub(crate) fn new(names: &'a [String], slots: &'a mut [Slot]) -> EvalCtx<'a> {
        debug_assert!(slots.len() >= names.len());
        EvalCtx { names, slots, current: std::ptr::null() }
    }

    fn slot(&mut self, rec: &RawRecord, slot: usize) -> Option<&Slot> {
        if !std::ptr::eq(self.current, rec) {
            // SAFETY: `line` was built from a `&str` that the caller's
            // `RecordRef` borrows for the whole call (see `RecordRef`).
            let line = unsafe { str_from(rec.line.ptr, rec.line.len) };
            fill(self.names, self.slots, line);
            self.current = rec;
        }
        self.slots.get(slot)
    }
}

/// Rebuilds a `&str` from compiled code's pointer and length.
///
/// # Safety
/// `ptr` must be valid for `len` bytes of UTF-8 for `'a`. Compiled code only
/// passes pointers it read from a `RawRecord` or a `Slot`, or literals owned
/// by the `CompiledFilter`, all built from `&str`.
unsafe fn str_from<'a>(ptr: *const u8, len: usize) -> &'a str {
    if len == 0 {
        return "";
    }
    // SAFETY: per this function's contract.
    unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len)) }
}

/// Parses `line` into `slots`; a line that is not a JSON object leaves every
/// slot missing.
fn fill(names: &[String], slots: &mut [Slot], line: &str) {
    for s in slots.iter_mut() {
        s.kind = Kind::Missing;
    }
    // Most non-JSON lines are refused here without entering serde; the
    // outcome is the same (no fields).
    if !line.trim_start().starts_with('{') {
        return;
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let parsed = Top { names, slots: &mut *slots }.deserialize(&mut de).and_then(|()| de.end());
    if parsed.is_err() {
        for s in slots.iter_mut() {
            s.kind = Kind::Missing;
        }
    }
}

/// The top-level object.
struct Top<'n, 's> {
    names: &'n [String],
    slots: &'s mut [Slot],
}

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key(self.names))? {
            match key.and_then(|i| self.slots.get_mut(i)) {
                Some(slot) => map.next_value_seed(SlotSeed(slot))?,
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(())
    }
}

/// A key: the index of the wanted name it equals, if any.
struct Key<'n>(&'n [String]);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|n| n == v))
    }
}

/// A wanted field's value, stored in its slot.
struct SlotSeed<'s>(&'s mut Slot);

impl<'de> DeserializeSeed<'de> for SlotSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SlotSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.kind = Kind::Bool(v);
        Ok(())
    }
    // The same conversions as `serde_json::Number::as_f64`.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.kind = Kind::Number(v as f64);
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.kind = Kind::Number(v as f64);
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.kind = Kind::Number(v);
        Ok(())
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        // Points into the line, which outlives this record's evaluation.
        self.0.kind = Kind::Text;
        self.0.text = v.as_ptr();
        self.0.len = v.len();
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        // Had escapes: serde's scratch buffer is transient, so copy.
        self.0.owned.clear();
        self.0.owned.push_str(v);
        self.0.kind = Kind::Text;
        self.0.text = self.0.owned.as_ptr();
        self.0.len = self.0.owned.len();
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.kind = Kind::Missing;
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.kind = Kind::Missing;
        Skip.visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.kind = Kind::Missing;
        Skip.visit_map(map)
    }
}

/// Skips a value through `deserialize_any`, validating it as
/// `serde_json::Value` would. (`IgnoredAny` would take serde_json's faster
/// `ignore_value` path, which enforces neither the depth limit nor number
/// range, and so would accept lines the interpreter refuses.)
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Keys go through `deserialize_str`, as `Value`'s do.
        while map.next_key::<KeyOnly>()?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// A map key read as a string and dropped.
struct KeyOnly;

impl<'de> de::Deserialize<'de> for KeyOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyOnly, D::Error> {
        d.deserialize_str(Key(&[])).map(|_| KeyOnly)
    }
}

// ---------------------------------------------------------------------------
// The helpers compiled code calls. Each states what its pointers must be;
// codegen.rs upholds that by only passing record fields, slot values and
// literals the `CompiledFilter` owns.

/// The JSON number in `slot` of `rec`, or NaN (which every compiled float
/// comparison treats as false) when it is missing or not a number.
///
/// # Safety
/// `ctx` is the live `EvalCtx` of this call; `rec` points to a `RawRecord`
/// of this call's batch.
pub(crate) unsafe extern "C" fn cf_json_number(ctx: *mut EvalCtx<'_>, rec: *const RawRecord, slot: usize) -> f64 {
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
    rec: *const RawRecord,
    slot: usize,
    len_out: *mut usize,
) -> *const u8 {
    // SAFETY: per the contract above.
    let (ctx, rec) = unsafe { (&mut *ctx, &*rec) };
    match ctx.slot(rec, slot) {
        Some(s) if s.kind == Kind::Text => {
            // SAFETY: `len_out` is a stack slot of the compiled function.
            unsafe { *len_out = s.len };
            if s.text.is_null() { std::ptr::dangling() } else { s.text }
        }
        _ => std::ptr::null(),
    }
}

/// 1 or 0 for a JSON boolean in `slot`, -1 when missing or not a boolean.
///
/// # Safety
/// As [`cf_json_number`].
pub(crate) unsafe extern "C" fn cf_json_bool(ctx: *mut EvalCtx<'_>, rec: *const RawRecord, slot: usize) -> i32 {
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
pub(crate) unsafe extern "C" fn cf_json_level(ctx: *mut EvalCtx<'_>, rec: *const RawRecord, slot: usize) -> i32 {
    // SAFETY: per the contract above.
    let (ctx, rec) = unsafe { (&mut *ctx, &*rec) };
    let level = match ctx.slot(rec, slot) {
        Some(Slot { kind: Kind::Number(n), .. }) => Level::from_number(*n),
        // SAFETY: a `Text` slot points to the line or to `owned`, both UTF-8
        // and alive until the next record is parsed.
        Some(s @ Slot { kind: Kind::Text, .. }) => Level::from_name(unsafe { str_from(s.text, s.len) }),
        _ => None,
    };
    level.map_or(-1, |l| l as i32)
}

/// Byte-wise comparison: -1, 0 or 1 as `a` sorts before, with or after `b`.
///
/// # Safety
/// `a` valid for `alen` bytes, `b` for `blen`.
pub(crate) unsafe extern "C" fn cf_text_cmp(a: *const u8, alen: usize, b: *const u8, blen: usize) -> i32 {
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
pub(crate) unsafe extern "C" fn cf_contains(hay: *const u8, hlen: usize, needle: *const u8, nlen: usize) -> u8 {
    // SAFETY: per the contract above.
    let (hay, needle) = unsafe { (str_from(hay, hlen), str_from(needle, nlen)) };
    u8::from(hay.contains(needle))
}

/// 1 when `re` matches anywhere in the text.
///
/// # Safety
/// `re` points to a `Regex` owned by the `CompiledFilter` running; `text`
/// valid UTF-8 for `len` bytes.
pub(crate) unsafe extern "C" fn cf_regex_match(re: *const Regex, text: *const u8, len: usize) -> u8 {
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
pub(crate) fn helpers() -> [Helper; 8] {
    use Ty::*;
    [
        Helper { name: "cf_json_number", addr: cf_json_number as *const u8, params: &[Ptr, Ptr, Ptr], ret: F64 },
        Helper { name: "cf_json_text", addr: cf_json_text as *const u8, params: &[Ptr, Ptr, Ptr, Ptr], ret: Ptr },
        Helper { name: "cf_json_bool", addr: cf_json_bool as *const u8, params: &[Ptr, Ptr, Ptr], ret: I32 },
        Helper { name: "cf_json_level", addr: cf_json_level as *const u8, params: &[Ptr, Ptr, Ptr], ret: I32 },
        Helper { name: "cf_text_cmp", addr: cf_text_cmp as *const u8, params: &[Ptr, Ptr, Ptr, Ptr], ret: I32 },
        Helper { name: "cf_bytes_eq", addr: cf_bytes_eq as *const u8, params: &[Ptr, Ptr, Ptr], ret: I8 },
        Helper { name: "cf_contains", addr: cf_contains as *const u8, params: &[Ptr, Ptr, Ptr, Ptr], ret: I8 },
        Helper { name: "cf_regex_match", addr: cf_regex_match as *const u8, params: &[Ptr, Ptr, Ptr], ret: I8 },
    ]
}
