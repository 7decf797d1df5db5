//! Finding a few top-level fields of a JSON line, fast, with exactly
//! serde_json's idea of which lines are JSON.
//!
//! The interpreter parses a line into a `serde_json::Value` and reads fields
//! from it; a line serde_json refuses has no fields. Compiled filters must
//! agree on every line, but building a `Value` (a map, a `String` per key and
//! value) costs more than the rest of a filter together. This scanner walks
//! the line once without allocating, keeps only the fields the filter names,
//! and validates everything else by serde_json's rules (read from its
//! source, `de.rs` and `read.rs`), which are RFC 8259 plus:
//!
//! - at most 127 nested arrays/objects (its recursion limit of 128);
//! - a number whose value overflows `f64` is an error (`1e400`), one that
//!   underflows is 0; integers too big for `u64` become floats;
//! - strings refuse raw control characters (< 0x20) and lone surrogates.
//!
//! Where the exact rule is subtle (the value of a float, whether a long
//! number overflows, unescaping) the scanner hands the token to serde_json
//! itself, so both sides compute it with the same code. Tests check the
//! scanner against `serde_json::from_str::<Value>` directly.

/// serde_json's recursion limit: the 128th nested container is an error.
const MAX_NESTING: usize = 127;

/// What one wanted field of the current line holds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// Absent, `null`, an array or an object: fails every test.
    #[default]
    Missing,
    Number(f64),
    Bool(bool),
    /// A string: see `Slot::text`.
    Text,
}

/// One wanted field's value for the line last scanned. Reused across lines
/// (`owned` keeps its capacity).
#[derive(Debug)]
pub(crate) struct Slot {
    pub kind: Kind,
    /// For `Text`: the string, pointing into the line, or into `owned` when
    /// the JSON string had escapes. Valid until the next `fill`.
    pub text: *const u8,
    pub len: usize,
    owned: String,
}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            kind: Kind::Missing,
            text: std::ptr::null(),
            len: 0,
            owned: String::new(),
        }
    }
}

impl Slot {
    /// The string value, if the field holds one.
    pub fn as_str(&self) -> Option<&str> {
        if self.kind != Kind::Text {
            return None;
        }
        // SAFETY: `text`/`len` were set together from a `&str` (a slice of
        // the line, or `owned`) that outlives this borrow: the line is
        // borrowed for the whole filter call and `owned` is not touched
        // until the next `fill`, which needs `&mut self`.
        Some(unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.text, self.len))
        })
    }
}

/// Scans `line` and stores the fields named in `names` into `slots` (same
/// index). A line that is not a JSON object, or not valid JSON, leaves every
/// slot `Missing`.
pub(crate) fn fill(names: &[String], slots: &mut [Slot], line: &str) {
    for s in slots.iter_mut() {
        s.kind = Kind::Missing;
    }
    let mut scan = Scan {
        s: line,
        b: line.as_bytes(),
        i: 0,
    };
    if scan.top(names, slots).is_err() {
        for s in slots.iter_mut() {
            s.kind = Kind::Missing;
        }
    }
}

/// The line is not valid JSON (or not an object).
struct Invalid;

type R<T> = Result<T, Invalid>;

/// A string token: the bytes between its quotes.
#[derive(Clone, Copy)]
struct Str {
    start: usize,
    end: usize,
    escaped: bool,
}

struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> R<u8> {
        let c = self.peek().ok_or(Invalid)?;
        self.i += 1;
        Ok(c)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    fn top(&mut self, names: &[String], slots: &mut [Slot]) -> R<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
        } else {
            loop {
                let key = self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                match self.wanted(key, names)?.and_then(|k| slots.get_mut(k)) {
                    Some(slot) => self.value_into(slot)?,
                    None => self.skip(1)?,
                }
                self.ws();
                match self.next()? {
                    b',' => self.ws(),
                    b'}' => break,
                    _ => return Err(Invalid),
                }
            }
        }
        self.ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// Which wanted name a key is, if any.
    fn wanted(&self, key: Str, names: &[String]) -> R<Option<usize>> {
        if !key.escaped {
            let k = &self.b[key.start..key.end];
            return Ok(names.iter().position(|n| n.as_bytes() == k));
        }
        let k = self.unescape(key)?;
        Ok(names.iter().position(|n| *n == k))
    }

    /// An escaped string's value, by serde_json (rare: only wanted values and
    /// keys with escapes get here).
    fn unescape(&self, s: Str) -> R<String> {
        serde_json::from_str::<String>(&self.s[s.start - 1..s.end + 1]).map_err(|_| Invalid)
    }

    fn value_into(&mut self, slot: &mut Slot) -> R<()> {
        match self.peek() {
            Some(b'"') => {
                let s = self.string()?;
                if s.escaped {
                    slot.owned = self.unescape(s)?;
                    slot.text = slot.owned.as_ptr();
                    slot.len = slot.owned.len();
                } else {
                    slot.text = self.b[s.start..].as_ptr();
                    slot.len = s.end - s.start;
                }
                slot.kind = Kind::Text;
            }
            Some(b'-' | b'0'..=b'9') => {
                slot.kind = Kind::Number(self.number(true)?.unwrap_or(f64::NAN))
            }
            Some(b't' | b'f') => slot.kind = Kind::Bool(self.literal()?),
            _ => {
                self.skip(1)?;
                slot.kind = Kind::Missing;
            }
        }
        Ok(())
    }

    /// Validates and skips one value inside `depth` open containers.
    fn skip(&mut self, depth: usize) -> R<()> {
        match self.peek().ok_or(Invalid)? {
            b'"' => self.string().map(|_| ()),
            b'-' | b'0'..=b'9' => self.number(false).map(|_| ()),
            b't' | b'f' => self.literal().map(|_| ()),
            b'n' => self.ident(b"null"),
            open @ (b'[' | b'{') => {
                if depth + 1 > MAX_NESTING {
                    return Err(Invalid);
                }
                self.i += 1;
                self.ws();
                let close = if open == b'[' { b']' } else { b'}' };
                if self.peek() == Some(close) {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    if open == b'{' {
                        self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        c if c == close => return Ok(()),
                        _ => return Err(Invalid),
                    }
                }
            }
            _ => Err(Invalid),
        }
    }

    fn ident(&mut self, word: &[u8]) -> R<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    fn literal(&mut self) -> R<bool> {
        if self.peek() == Some(b't') {
            self.ident(b"true").map(|()| true)
        } else {
            self.ident(b"false").map(|()| false)
        }
    }

    /// A string starting at its opening quote, validated as serde_json does
    /// for `&str` output: no raw control characters, known escapes only,
    /// surrogates paired.
    fn string(&mut self) -> R<Str> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            self.i += plain_prefix(&self.b[self.i..]);
            match self.next()? {
                b'"' => {
                    return Ok(Str {
                        start,
                        end: self.i - 1,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return Err(Invalid),
            }
        }
    }

    fn escape(&mut self) -> R<()> {
        match self.next()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => {
                let n = self.hex4()?;
                if (0xDC00..=0xDFFF).contains(&n) {
                    return Err(Invalid);
                }
                if (0xD800..=0xDBFF).contains(&n) {
                    self.eat(b'\\')?;
                    self.eat(b'u')?;
                    if !(0xDC00..=0xDFFF).contains(&self.hex4()?) {
                        return Err(Invalid);
                    }
                }
                Ok(())
            }
            _ => Err(Invalid),
        }
    }

    fn hex4(&mut self) -> R<u16> {
        let digits = self.b.get(self.i..self.i + 4).ok_or(Invalid)?;
        let mut n = 0u16;
        for &d in digits {
            n = n * 16 + (d as char).to_digit(16).ok_or(Invalid)? as u16;
        }
        self.i += 4;
        Ok(n)
    }

    /// A number; its value (as `Value::as_f64` would give it) when `want`.
    fn number(&mut self, want: bool) -> R<Option<f64>> {
        let start = self.i;
        let len = self.b[start..]
            .iter()
            .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(self.b.len() - start);
        self.i += len;
        let token = &self.s[start..self.i];
        let shape = Shape::of(token.as_bytes()).ok_or(Invalid)?;
        // Short integers: exact in u64, so serde_json's value is `n as f64`
        // (negated for a minus sign; `-0` is -0.0 there too).
        if shape.int_digits <= 18 && !shape.fraction && !shape.exponent {
            if !want {
                return Ok(None);
            }
            let digits = token.trim_start_matches('-');
            let n: u64 = digits.parse().map_err(|_| Invalid)?;
            let x = n as f64;
            return Ok(Some(if token.starts_with('-') { -x } else { x }));
        }
        // No exponent and a short integer part: below 1e18, so no overflow;
        // the value, if wanted, is serde_json's to compute.
        if shape.int_digits <= 18 && !shape.exponent && !want {
            return Ok(None);
        }
        serde_json::from_str::<f64>(token)
            .map(Some)
            .map_err(|_| Invalid)
    }
}

/// How many bytes at the start of `rest` are plain string content: not a
/// quote, a backslash or a control character. Eight bytes at a time (the
/// classic "has a zero byte" bit trick, as serde_json does): the lowest
/// flagged byte of a word is always a real hit, later ones may be borrows.
fn plain_prefix(rest: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let is_special = |c: &u8| *c == b'"' || *c == b'\\' || *c < 0x20;
    let mut done = 0;
    for chunk in rest.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let ctrl = w.wrapping_sub(ONES * 0x20) & !w;
        let q = w ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let b = w ^ (ONES * u64::from(b'\\'));
        let backslash = b.wrapping_sub(ONES) & !b;
        let hits = (ctrl | quote | backslash) & HIGH;
        if hits != 0 {
            return done + (hits.trailing_zeros() / 8) as usize;
        }
        done += 8;
    }
    done + rest[done..]
        .iter()
        .position(is_special)
        .unwrap_or(rest.len() - done)
}

/// The parts of a number token that decide how it is validated.
struct Shape {
    int_digits: usize,
    fraction: bool,
    exponent: bool,
}

impl Shape {
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, the whole
    /// token; `None` when the token does not have that shape (serde_json
    /// refuses those too).
    fn of(t: &[u8]) -> Option<Shape> {
        let mut i = usize::from(t.first() == Some(&b'-'));
        let digits = |i: usize| t[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let int_digits = digits(i);
        if int_digits == 0 || (int_digits > 1 && t[i] == b'0') {
            return None;
        }
        i += int_digits;
        let fraction = t.get(i) == Some(&b'.');
        if fraction {
            let n = digits(i + 1);
            if n == 0 {
                return None;
            }
            i += 1 + n;
        }
        let exponent = matches!(t.get(i), Some(b'e' | b'E'));
        if exponent {
            i += 1;
            if matches!(t.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let n = digits(i);
            if n == 0 {
                return None;
            }
            i += n;
        }
        (i == t.len()).then_some(Shape {
            int_digits,
            fraction,
            exponent,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    const NAMES: [&str; 3] = ["status", "msg", "level"];

    /// The scanner's reading of `line` against `Value`'s.
    fn agree(line: &str) {
        let names: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
        let mut slots: Vec<Slot> = names.iter().map(|_| Slot::default()).collect();
        fill(&names, &mut slots, line);
        let map = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        };
        for (name, slot) in names.iter().zip(&slots) {
            let want = map.as_ref().and_then(|m| m.get(name));
            match (want, slot.kind) {
                (Some(Value::Number(n)), Kind::Number(x)) => {
                    assert_eq!(
                        n.as_f64().map(f64::to_bits),
                        Some(x.to_bits()),
                        "{line:?} {name}"
                    )
                }
                (Some(Value::String(s)), Kind::Text) => {
                    assert_eq!(slot.as_str(), Some(s.as_str()), "{line:?}")
                }
                (Some(Value::Bool(b)), Kind::Bool(x)) => assert_eq!(*b, x, "{line:?}"),
                (None | Some(Value::Null | Value::Array(_) | Value::Object(_)), Kind::Missing) => {}
                (want, got) => panic!("{line:?} {name}: serde_json {want:?}, scanner {got:?}"),
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_edge_cases() {
        for line in [
            r#"{"status": 500}"#,
            r#" {"status":500} "#,
            "{\"status\":\n1}\t",
            r#"{}"#,
            r#"{"status": 1,}"#,
            r#"{"status": 1 "msg": "x"}"#,
            r#"{"status" 1}"#,
            r#"{status: 1}"#,
            r#"{"status": 01}"#,
            r#"{"status": -0}"#,
            r#"{"status": -}"#,
            r#"{"status": 1.}"#,
            r#"{"status": .5}"#,
            r#"{"status": +1}"#,
            r#"{"status": 1e}"#,
            r#"{"status": 1e+}"#,
            r#"{"status": 1E-2}"#,
            r#"{"status": 259.7}"#,
            r#"{"status": 0.1e-400}"#,
            r#"{"status": 1e308}"#,
            r#"{"status": 1.7976931348623157e308}"#,
            r#"{"status": 1.8e308}"#,
            r#"{"status": 1e400}"#,
            r#"{"msg": 1e400}"#,
            r#"{"x": 1e400, "status": 1}"#,
            r#"{"x": 1e99999999999, "status": 1}"#,
            r#"{"x": 0e99999999999, "status": 1}"#,
            r#"{"x": 1e-99999999999, "status": 1}"#,
            r#"{"status": 18446744073709551615}"#,
            r#"{"status": 18446744073709551616}"#,
            r#"{"status": -9223372036854775808}"#,
            r#"{"status": -9223372036854775809}"#,
            r#"{"status": 123456789012345678}"#,
            r#"{"status": 1234567890123456789}"#,
            r#"{"status": 9007199254740993}"#,
            r#"{"status": 1.00000000000000000000000000001}"#,
            r#"{"status": 1truex}"#,
            r#"{"status": tru}"#,
            r#"{"status": true, "msg": false, "level": null}"#,
            r#"{"status": nul}"#,
            r#"{"msg": "a\"b\\c\/d\b\f\n\r\t\u00e9"}"#,
            r#"{"msg": "\ud83d\ude00"}"#,
            r#"{"msg": "\ud83d"}"#,
            r#"{"msg": "\ud83dx"}"#,
            r#"{"msg": "\ud83d\u0041"}"#,
            r#"{"msg": "\ude00"}"#,
            r#"{"msg": "\u12"}"#,
            r#"{"msg": "\u12g4"}"#,
            r#"{"msg": "\x"}"#,
            "{\"msg\": \"tab\there\"}",
            r#"{"msg": "unterminated}"#,
            r#"{"m\u0073g": "escaped key", "st\u0061tus": 2}"#,
            r#"{"status": 1, "status": "two"}"#,
            r#"{"status": [1, {"a": [true, null]}], "msg": {"x": 1}}"#,
            r#"{"status": [1,]}"#,
            r#"{"status": [,1]}"#,
            r#"{"status": {"a" 1}}"#,
            r#"{"status": 1} x"#,
            r#"{"status": 1}}"#,
            r#"[{"status": 1}]"#,
            r#""status""#,
            "",
            "{",
            "é{}",
            r#"{"é": "ü", "msg": "日本"}"#,
        ] {
            agree(line);
        }
    }

    #[test]
    fn nesting_limit_is_serde_jsons() {
        for depth in 120..132 {
            let line = format!(
                r#"{{"status": 1, "x": {}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            agree(&line);
            let line = format!(
                r#"{{"x": {}1{}, "status": 1}}"#,
                r#"{"a":"#.repeat(depth),
                "}".repeat(depth)
            );
            agree(&line);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn agrees_with_serde_json_on_json_like_text(
            parts in prop::collection::vec(prop::sample::select(vec![
                "{", "}", "[", "]", ",", ":", " ", "\"", "\"status\"", "\"msg\"", "\"level\"", "\\", "\\u00",
                "e9", "\\ud800", "\\udc00", "1", "0", "-", ".", "e", "+", "500", "2.5", "1e400", "true", "null",
                "x", "\n", "\u{1}", "é",
            ]), 0..24),
        ) {
            agree(&parts.concat());
        }

        #[test]
        fn plain_prefix_stops_where_a_byte_loop_does(bytes in prop::collection::vec(prop::sample::select(vec![
            b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xff,
        ]), 0..40)) {
            let naive = bytes.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(bytes.len());
            prop_assert_eq!(plain_prefix(&bytes), naive);
        }

        #[test]
        fn agrees_with_serde_json_on_valid_objects(
            fields in prop::collection::vec((
                prop::sample::select(vec!["status", "msg", "level", "other", "st\\u0061tus"]),
                prop_oneof![
                    any::<i64>().prop_map(|n| n.to_string()),
                    any::<u64>().prop_map(|n| n.to_string()),
                    any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| format!("{x:e}")),
                    (-1_000_000i64..1_000_000, 0u32..8).prop_map(|(n, d)| format!("{}.{}", n, "7".repeat(d as usize + 1))),
                    ".{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
                    Just("[1, [2, {\"a\": null}]]".to_string()),
                    Just("true".to_string()),
                    Just("null".to_string()),
                ],
            ), 0..6),
        ) {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            agree(&format!("{{{}}}", body.join(", ")));
        }
    }
}
