//! Errors of the expression language, with the caret diagram operators see.
//!
//! Every error carries the line of source it is about, so it can be shown
//! anywhere (a CLI's stderr, the console's status line, an SSH channel)
//! without the caller keeping the source around.

use std::fmt;

/// A byte range of the source an AST node came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte (`start == end` for "end of input").
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Why an expression was refused: a syntax error, an unknown field, a type
/// error or an invalid regex. Nothing has been evaluated when one is returned.
///
/// `Display` prints the position, the message and a caret diagram under the
/// offending source, e.g.
///
/// ```text
/// 1:6: `line` is text and cannot be compared with the number 3; compare it with a string, e.g. line contains "3"
///   line > 3
///        ^
/// ```
///
/// Use [`ExprError::summary`] where only one line fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExprError {
    /// What went wrong and, where it helps, what was expected instead.
    pub message: String,
    /// 1-based line of the source.
    pub line: usize,
    /// 1-based column (in characters) of the first offending character.
    pub column: usize,
    /// Byte span in the whole source.
    pub span: Span,
    /// The source line the error is on (tabs kept as they were).
    pub source_line: String,
    /// How many characters of `source_line` the carets cover (at least 1).
    pub width: usize,
}

impl ExprError {
    /// Builds an error about `span` of `source`.
    pub fn new(source: &str, span: Span, message: impl Into<String>) -> ExprError {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let width = source[start..end.min(line_end)].chars().count().max(1);
        ExprError {
            message: message.into(),
            line,
            column,
            span: Span::new(start, end),
            source_line: source[line_start..line_end]
                .trim_end_matches('\r')
                .to_string(),
            width,
        }
    }

    /// `line:column: message` on one line, for places that show one line.
    pub fn summary(&self) -> String {
        format!("{}:{}: {}", self.line, self.column, self.message)
    }

    /// The two lines under the summary: the source line and the carets.
    pub fn diagram(&self) -> String {
        let shown: String = self.source_line.replace('\t', " ");
        let pad = " ".repeat(self.column - 1);
        format!("  {shown}\n  {pad}{}", "^".repeat(self.width))
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}", self.summary(), self.diagram())
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
