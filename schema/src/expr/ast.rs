//! The typed, checked expression both back ends evaluate.
//!
//! Every [`Comparison`] here is well typed by construction: the checker only
//! builds combinations of [`Subject`] and [`Test`] that mean something (the
//! table on [`Test`]), so back ends match on them without re-checking. A back
//! end that meets a combination the table does not list may treat it as
//! unreachable.

use std::fmt;

use regex::Regex;

use super::error::Span;
use super::level::Level;
use crate::types::Stream;

/// A boolean expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// `true` or `false`.
    Const(bool),
    Not(Box<Expr>),
    /// All hold; evaluated left to right, stopping at the first false.
    And(Vec<Expr>),
    /// Any holds; evaluated left to right, stopping at the first true.
    Or(Vec<Expr>),
    Compare(Comparison),
}

impl Expr {
    /// Every comparison, left to right.
    pub fn comparisons(&self) -> Vec<&Comparison> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Comparison>) {
        match self {
            Expr::Const(_) => {}
            Expr::Not(e) => e.collect(out),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.collect(out)),
            Expr::Compare(c) => out.push(c),
        }
    }
}

/// One field compared with one literal. The field is always on the left: the
/// checker turns `500 <= status` into `status >= 500`.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub subject: Subject,
    pub test: Test,
    /// Where the comparison is in the source.
    pub span: Span,
}

/// What a comparison reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// One of the text fields of a log record.
    Text(TextField),
    /// The record's sequence number (always present).
    Seq,
    /// The record's release number (`v3` is 3); missing on records not tied to a release.
    Release,
    /// stdout, stderr, system or message (always present).
    Stream,
    /// A top-level field of a line that is a JSON object; missing when the line
    /// is not a JSON object or has no such field.
    Json(JsonField),
    /// A health metric.
    Metric(Metric),
}

/// The text fields of a log record; all are always present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    Host,
    App,
    Instance,
    /// RFC 3339, compared as text (`time >= "2026-05-01"` works because the
    /// format sorts as it reads).
    Time,
    /// The whole line as the app wrote it.
    Line,
}

impl TextField {
    pub fn as_str(self) -> &'static str {
        match self {
            TextField::Host => "host",
            TextField::App => "app",
            TextField::Instance => "instance",
            TextField::Time => "time",
            TextField::Line => "line",
        }
    }
}

/// A top-level field of a JSON line, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonField {
    pub name: String,
    /// Index of `name` in [`super::Filter::json_fields`]: one per distinct
    /// name, so a back end can look each name up once per record.
    pub slot: usize,
}

/// The per-app metrics health rules read (see [`super::Metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Requests,
    Errors,
    ErrorRate,
    P50Ms,
    P99Ms,
    Restarts,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::Requests,
        Metric::Errors,
        Metric::ErrorRate,
        Metric::P50Ms,
        Metric::P99Ms,
        Metric::Restarts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Requests => "requests",
            Metric::Errors => "errors",
            Metric::ErrorRate => "error_rate",
            Metric::P50Ms => "p50_ms",
            Metric::P99Ms => "p99_ms",
            Metric::Restarts => "restarts",
        }
    }

    /// Counts are exact integers; the others are floats that may be missing.
    pub fn is_count(self) -> bool {
        matches!(self, Metric::Requests | Metric::Errors | Metric::Restarts)
    }
}

/// An ordering or equality operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether `ordering` (of field against literal) satisfies the operator.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ordering == Equal,
            CmpOp::Ne => ordering != Equal,
            CmpOp::Lt => ordering == Less,
            CmpOp::Le => ordering != Greater,
            CmpOp::Gt => ordering == Greater,
            CmpOp::Ge => ordering != Less,
        }
    }

    /// The operator with its sides swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            same => same,
        }
    }
}

/// What is done with the subject's value. Which subjects each test meets:
///
/// | test | subjects |
/// | --- | --- |
/// | `Text`, `Contains`, `Matches` | `Text(_)`, `Json(_)` (JSON strings only) |
/// | `Unsigned` | `Seq`, `Release`, `Metric(count)` |
/// | `Number` | `Seq`, `Json(_)` (JSON numbers only), `Metric(_)` |
/// | `Bool` | `Json(_)` (JSON booleans only) |
/// | `Level` | `Json(_)` named `level` (strings and numbers that name a level) |
/// | `Stream` | `Stream` |
///
/// A subject that is missing, or holds a value of another kind than the
/// test reads (a JSON string under `Number`), fails every test, including
/// `!=` and `!~`.
#[derive(Debug, Clone)]
pub enum Test {
    /// Byte-wise (lexicographic) comparison with a string.
    Text { op: CmpOp, value: String },
    /// The text contains `value` (case-sensitive; `""` is in every text).
    Contains(String),
    /// The text matches (or, `negated`, does not match) the regex anywhere.
    Matches { pattern: Pattern, negated: bool },
    /// Exact comparison of unsigned integers.
    Unsigned { op: CmpOp, value: u64 },
    /// Comparison as `f64`; the subject is converted (`seq as f64`). Never
    /// holds for a NaN subject. Durations arrive here in milliseconds.
    Number { op: CmpOp, value: f64 },
    /// `== value` when `equal`, `!= value` otherwise.
    Bool { equal: bool, value: bool },
    /// Comparison by severity.
    Level { op: CmpOp, value: Level },
    /// `== value` when `equal`, `!= value` otherwise.
    Stream { equal: bool, value: Stream },
}

/// A regex compiled once, when the expression is parsed.
#[derive(Clone)]
pub struct Pattern {
    pub source: String,
    pub regex: Regex,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.source)
    }
}
