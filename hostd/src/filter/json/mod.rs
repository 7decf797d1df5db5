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
//!
//! This file walks the object and its values; `token.rs` reads the tokens
//! (strings with their escapes, numbers, literals).

#[cfg(test)]
mod tests;
mod token;

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
}
