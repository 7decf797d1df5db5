//! Source text to tokens.
//!
//! Literals are decoded here (escapes, numbers, duration units) so the parser
//! and the checker only see values; every token keeps its span for errors.

use super::error::{ExprError, Span};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A field name, a bare level or stream name, or `true`/`false`.
    Ident(String),
    /// `"..."` or `'...'`, escapes decoded.
    Str(String),
    /// `/.../`: a regex, only `\/` decoded (everything else is the regex's).
    Regex(String),
    /// From `i64::MIN` to `u64::MAX`.
    Int(i128),
    Float(f64),
    /// A number with a unit, in milliseconds.
    Duration(f64),
    Contains,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
    And,
    Or,
    Not,
    LParen,
    RParen,
    Plus,
    /// `-` between operands (binary) or before a number written with a
    /// space (`- 3`); `-3` right after an operator is one number token.
    Minus,
    Star,
    /// `/` right after an operand (division); elsewhere `/` opens a regex.
    Slash,
    Eof,
}

impl Tok {
    /// Whether the token ends an operand, so that a `/` after it divides
    /// (rather than opening a regex) and a `-` subtracts (rather than
    /// starting a negative number).
    fn ends_operand(&self) -> bool {
        matches!(
            self,
            Tok::Ident(_)
                | Tok::Str(_)
                | Tok::Regex(_)
                | Tok::Int(_)
                | Tok::Float(_)
                | Tok::Duration(_)
                | Tok::RParen
        )
    }

    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("the string {s:?}"),
            Tok::Regex(s) => format!("the regex /{s}/"),
            Tok::Int(n) => format!("the number {n}"),
            Tok::Float(n) => format!("the number {n}"),
            Tok::Duration(ms) => format!("the duration {ms}ms"),
            Tok::Contains => "`contains`".into(),
            Tok::Eq => "`==`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::Match => "`~`".into(),
            Tok::NotMatch => "`!~`".into(),
            Tok::And => "`&&`".into(),
            Tok::Or => "`||`".into(),
            Tok::Not => "`!`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Star => "`*`".into(),
            Tok::Slash => "`/`".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ExprError> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        after_operand: false,
    };
    let mut out = Vec::new();
    loop {
        let token = lexer.next()?;
        lexer.after_operand = token.tok.ends_operand();
        let end = token.tok == Tok::Eof;
        out.push(token);
        if end {
            return Ok(out);
        }
    }
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    /// Whether the previous token ended an operand (see [`Tok::ends_operand`]).
    after_operand: bool,
}

impl<'s> Lexer<'s> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }

    fn err(&self, start: usize, end: usize, message: impl Into<String>) -> ExprError {
        ExprError::new(self.src, Span::new(start, end), message)
    }

    fn next(&mut self) -> Result<Token, ExprError> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += self.peek().map_or(1, char::len_utf8);
        }
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Token {
                tok: Tok::Eof,
                span: Span::new(start, start),
            });
        };
        let two = |l: &mut Self, tok: Tok| {
            l.pos += 2;
            tok
        };
        let one = |l: &mut Self, tok: Tok| {
            l.pos += 1;
            tok
        };
        let next = self.peek2();
        let tok = match (c, next) {
            ('=', Some('=')) => two(self, Tok::Eq),
            ('!', Some('=')) => two(self, Tok::Ne),
            ('!', Some('~')) => two(self, Tok::NotMatch),
            ('<', Some('=')) => two(self, Tok::Le),
            ('>', Some('=')) => two(self, Tok::Ge),
            ('&', Some('&')) => two(self, Tok::And),
            ('|', Some('|')) => two(self, Tok::Or),
            ('<', _) => one(self, Tok::Lt),
            ('>', _) => one(self, Tok::Gt),
            ('!', _) => one(self, Tok::Not),
            ('~', _) => one(self, Tok::Match),
            ('(', _) => one(self, Tok::LParen),
            (')', _) => one(self, Tok::RParen),
            ('+', _) => one(self, Tok::Plus),
            ('*', _) => one(self, Tok::Star),
            ('/', _) if self.after_operand => one(self, Tok::Slash),
            ('-', Some(d)) if d.is_ascii_digit() && !self.after_operand => self.number()?,
            ('-', _) => one(self, Tok::Minus),
            ('=', _) => {
                return Err(self.err(
                    start,
                    start + 1,
                    "expected `==`: `=` alone is not an operator",
                ));
            }
            ('&', _) => {
                return Err(self.err(
                    start,
                    start + 1,
                    "expected `&&`: `&` alone is not an operator",
                ));
            }
            ('|', _) => {
                return Err(self.err(
                    start,
                    start + 1,
                    "expected `||`: `|` alone is not an operator",
                ));
            }
            ('"' | '\'', _) => self.string(c)?,
            ('/', _) => self.regex()?,
            (d, _) if d.is_ascii_digit() => self.number()?,
            (a, _) if a.is_alphabetic() || a == '_' => {
                let word_start = self.pos;
                self.take_while(|c| c.is_alphanumeric() || c == '_');
                // `canary.error_rate`: a dot followed by a name joins them.
                while self.peek() == Some('.')
                    && self.peek2().is_some_and(|c| c.is_alphabetic() || c == '_')
                {
                    self.pos += 1;
                    self.take_while(|c| c.is_alphanumeric() || c == '_');
                }
                let word = &self.src[word_start..self.pos];
                match word {
                    "contains" => Tok::Contains,
                    _ => Tok::Ident(word.to_string()),
                }
            }
            (other, _) => {
                return Err(self.err(
                    start,
                    start + other.len_utf8(),
                    format!("unexpected character {other:?}: expected a field, a value, an operator or `(`"),
                ));
            }
        };
        Ok(Token {
            tok,
            span: Span::new(start, self.pos),
        })
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'s str {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|&c| f(c)) {
            self.pos += c.len_utf8();
        }
        &self.src[start..self.pos]
    }

    fn string(&mut self, quote: char) -> Result<Tok, ExprError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(
                    start,
                    start + 1,
                    format!("unterminated string: expected a closing {quote}"),
                ));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                c if c == quote => return Ok(Tok::Str(out)),
                '\\' => {
                    let Some(e) = self.peek() else { continue };
                    self.pos += e.len_utf8();
                    match e {
                        '\\' | '"' | '\'' => out.push(e),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        'u' => out.push(self.unicode_escape(at)?),
                        other => {
                            return Err(self.err(
                                at,
                                self.pos,
                                format!(
                                    "unknown escape `\\{other}`: strings know \\\\ \\\" \\' \\n \\t \\r \\0 \\u{{...}}; \
                                     for a regex write /.../ after `~`, e.g. line ~ /\\d+ms/"
                                ),
                            ));
                        }
                    }
                }
                _ => out.push(c),
            }
        }
    }

    fn unicode_escape(&mut self, at: usize) -> Result<char, ExprError> {
        let bad = |l: &Self| {
            l.err(
                at,
                l.pos,
                "invalid unicode escape: expected \\u{HEX} naming a character, e.g. \\u{e9}",
            )
        };
        if self.peek() != Some('{') {
            return Err(bad(self));
        }
        self.pos += 1;
        let hex = self.take_while(|c| c.is_ascii_hexdigit()).to_string();
        if self.peek() != Some('}') || hex.is_empty() || hex.len() > 6 {
            return Err(bad(self));
        }
        self.pos += 1;
        u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| bad(self))
    }

    fn regex(&mut self) -> Result<Tok, ExprError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(start, start + 1, "unterminated regex: expected a closing /"));
            };
            self.pos += c.len_utf8();
            match c {
                '/' => return Ok(Tok::Regex(out)),
                '\\' if self.peek() == Some('/') => {
                    self.pos += 1;
                    out.push('/');
                }
                _ => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<Tok, ExprError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        self.take_while(|c| c.is_ascii_digit() || c == '_');
        let mut float = false;
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.pos += 1;
            self.take_while(|c| c.is_ascii_digit() || c == '_');
        }
        let rest = &self.src[self.pos..];
        let exp_digits = rest
            .strip_prefix(['e', 'E'])
            .map(|r| r.strip_prefix(['+', '-']).unwrap_or(r));
        if exp_digits.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())) {
            float = true;
            self.pos += 1;
            if self.peek().is_some_and(|c| c == '+' || c == '-') {
                self.pos += 1;
            }
            self.take_while(|c| c.is_ascii_digit());
        }
        let text: String = self.src[start..self.pos]
            .chars()
            .filter(|&c| c != '_')
            .collect();
        let unit_start = self.pos;
        let unit = self.take_while(|c| c.is_alphanumeric() || c == '_');
        let too_big = |l: &Self| {
            l.err(
                start,
                l.pos,
                "number out of range: too large for a 64-bit float",
            )
        };
        if !unit.is_empty() {
            let scale = match unit {
                "ms" => 1.0,
                "s" => 1_000.0,
                "m" => 60_000.0,
                "h" => 3_600_000.0,
                other => {
                    return Err(self.err(
                        unit_start,
                        self.pos,
                        format!("unknown unit `{other}`: durations take ms, s, m or h (e.g. 250ms, 2s, 1m)"),
                    ));
                }
            };
            let value: f64 = text.parse().map_err(|_| too_big(self))?;
            let ms = value * scale;
            return if ms.is_finite() {
                Ok(Tok::Duration(ms))
            } else {
                Err(too_big(self))
            };
        }
        if float {
            let value: f64 = text.parse().map_err(|_| too_big(self))?;
            if value.is_finite() {
                Ok(Tok::Float(value))
            } else {
                Err(too_big(self))
            }
        } else {
            match text.parse::<i128>() {
                Ok(n) if n >= i128::from(i64::MIN) && n <= i128::from(u64::MAX) => Ok(Tok::Int(n)),
                _ => Err(self.err(
                    start,
                    self.pos,
                    format!(
                        "number out of range: integers go from {} to {}",
                        i64::MIN,
                        u64::MAX
                    ),
                )),
            }
        }
    }
}
