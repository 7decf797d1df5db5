//! The typed, checked expression both back ends evaluate.
//!
//! Every [`Comparison`] here is well typed by construction: the checker only
//! builds combinations of [`Subject`] and [`Test`] that mean something (the
//! table on [`Test`]), so back ends match on them without re-checking. A back
//! end that meets a combination the table does not list may treat it as
//! unreachable.
//!
//! Health rules also have [`Arith`] comparisons: arithmetic over metrics of
//! either release of a gate ([`Which`]) on both sides, computed in `f64`.

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
    /// Arithmetic compared with arithmetic (health rules only).
    Arith(Arith),
}

/// One comparison of either kind, as [`Expr::leaves`] lists them.
#[derive(Debug, Clone, Copy)]
pub enum Leaf<'a> {
    Compare(&'a Comparison),
    Arith(&'a Arith),
}

impl Expr {
    /// Every field-against-literal comparison, left to right (not the
    /// [`Arith`] ones; see [`Expr::leaves`] for both).
    pub fn comparisons(&self) -> Vec<&Comparison> {
        self.leaves()
            .into_iter()
            .filter_map(|l| match l {
                Leaf::Compare(c) => Some(c),
                Leaf::Arith(_) => None,
            })
            .collect()
    }

    /// Every comparison of both kinds, left to right.
    pub fn leaves(&self) -> Vec<Leaf<'_>> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<Leaf<'a>>) {
        match self {
            Expr::Const(_) => {}
            Expr::Not(e) => e.collect(out),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.collect(out)),
            Expr::Compare(c) => out.push(Leaf::Compare(c)),
            Expr::Arith(a) => out.push(Leaf::Arith(a)),
        }
    }
}

/// Two arithmetic expressions compared as `f64`: `p99_ms > p50_ms * 3`,
/// `canary.error_rate > 2 * stable.error_rate`. A missing metric makes its
/// side NaN, and a NaN side fails every operator, `!=` included.
#[derive(Debug, Clone)]
pub struct Arith {
    pub left: Num,
    pub op: CmpOp,
    pub right: Num,
    /// Where the comparison is in the source.
    pub span: Span,
}

impl Arith {
    /// Whether it reads a `canary.` or `stable.` metric.
    pub fn is_gate(&self) -> bool {
        self.metrics()
            .iter()
            .any(|(of, _)| matches!(of, Which::Canary | Which::Stable))
    }

    /// The metrics it reads, left to right (repeats included).
    pub fn metrics(&self) -> Vec<(Which, Metric)> {
        let mut out = Vec::new();
        self.left.collect(&mut out);
        self.right.collect(&mut out);
        out
    }
}

/// An arithmetic expression over metrics and literals, computed in `f64`
/// (counts converted, durations in milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub enum Num {
    /// A literal.
    Const(f64),
    /// A metric of one of the releases a rule reads.
    Metric { of: Which, metric: Metric },
    /// `left op right`, IEEE 754 (`x / 0` is ±inf, `0 / 0` NaN).
    Bin(NumOp, Box<Num>, Box<Num>),
}

impl Num {
    fn collect(&self, out: &mut Vec<(Which, Metric)>) {
        match self {
            Num::Const(_) => {}
            Num::Metric { of, metric } => out.push((*of, *metric)),
            Num::Bin(_, l, r) => {
                l.collect(out);
                r.collect(out);
            }
        }
    }
}

/// Which release a metric is read from. A plain rule judges one release;
/// a gate rule compares a canary with the stable release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Which {
    /// No prefix: the release the rule is judging (in a gate, the canary).
    Own,
    /// `canary.`: the release being judged.
    Canary,
    /// `stable.`: the release it is compared with (missing outside a gate).
    Stable,
}

impl Which {
    /// How the metric name is prefixed in the source: `""`, `"canary."` or
    /// `"stable."`.
    pub fn prefix(self) -> &'static str {
        match self {
            Which::Own => "",
            Which::Canary => "canary.",
            Which::Stable => "stable.",
        }
    }
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl NumOp {
    pub fn symbol(self) -> &'static str {
        match self {
            NumOp::Add => "+",
            NumOp::Sub => "-",
            NumOp::Mul => "*",
            NumOp::Div => "/",
        }
    }

    /// `*` and `/` (2) bind tighter than `+` and `-` (1).
    pub fn precedence(self) -> u8 {
        match self {
            NumOp::Add | NumOp::Sub => 1,
            NumOp::Mul | NumOp::Div => 2,
        }
    }

    /// The IEEE 754 operation.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            NumOp::Add => a + b,
            NumOp::Sub => a - b,
            NumOp::Mul => a * b,
            NumOp::Div => a / b,
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
