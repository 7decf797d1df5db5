//! The tokens of a JSON line, validated by serde_json's rules: strings
//! (escapes, surrogate pairs, no raw control characters), numbers (their
//! shape, and their value where one is wanted) and `true`/`false`/`null`.

use super::{Invalid, R, Scan, Str};

impl Scan<'_> {
    pub(super) fn ident(&mut self, word: &[u8]) -> R<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    pub(super) fn literal(&mut self) -> R<bool> {
        if self.peek() == Some(b't') {
            self.ident(b"true").map(|()| true)
        } else {
            self.ident(b"false").map(|()| false)
        }
    }

    /// A string starting at its opening quote, validated as serde_json does
    /// for `&str` output: no raw control characters, known escapes only,
    /// surrogates paired.
    pub(super) fn string(&mut self) -> R<Str> {
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
    pub(super) fn number(&mut self, want: bool) -> R<Option<f64>> {
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
pub(super) fn plain_prefix(rest: &[u8]) -> usize {
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
