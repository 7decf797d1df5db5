//! The tree-walking interpreter: the reference every other back end must
//! agree with (hostd's compiled filters are tested against it).
//!
//! It is written to be obviously right rather than fast: a JSON line is parsed
//! into a `serde_json::Value` (once per record, and only if a JSON field is
//! reached), and each comparison reads the record afresh.

use serde_json::{Map, Value};

use super::Metrics;
use super::ast::{Arith, CmpOp, Comparison, Expr, Leaf, Num, Subject, Test, TextField, Which};
use super::level::Level;
use crate::types::LogRecord;

/// Evaluates `expr` over `rec`.
pub(crate) fn eval_log(expr: &Expr, rec: &LogRecord) -> bool {
    let mut json = LazyJson::Unparsed;
    eval(expr, &mut |leaf| match leaf {
        Leaf::Compare(c) => compare_log(c, rec, &mut json),
        Leaf::Arith(_) => false,
    })
}

/// Evaluates `expr` over the metrics of the release it judges (`own`, also
/// read as `canary.`) and, in a gate, of the stable release (`None`: every
/// `stable.` metric is missing).
pub(crate) fn eval_health(expr: &Expr, own: &Metrics, stable: Option<&Metrics>) -> bool {
    eval(expr, &mut |leaf| holds(leaf, own, stable))
}

/// Whether one comparison of a health rule holds.
pub(crate) fn holds(leaf: Leaf<'_>, own: &Metrics, stable: Option<&Metrics>) -> bool {
    match leaf {
        Leaf::Compare(c) => compare_metric(c, own),
        Leaf::Arith(a) => arith_holds(a, own, stable),
    }
}

fn eval(expr: &Expr, leaf: &mut dyn FnMut(Leaf<'_>) -> bool) -> bool {
    match expr {
        Expr::Const(b) => *b,
        Expr::Not(e) => !eval(e, leaf),
        Expr::And(es) => es.iter().all(|e| eval(e, leaf)),
        Expr::Or(es) => es.iter().any(|e| eval(e, leaf)),
        Expr::Compare(c) => leaf(Leaf::Compare(c)),
        Expr::Arith(a) => leaf(Leaf::Arith(a)),
    }
}

fn arith_holds(a: &Arith, own: &Metrics, stable: Option<&Metrics>) -> bool {
    let read = |of, metric| metric_f64(of, metric, own, stable);
    number_holds(a.op, num_value(&a.left, &read), num_value(&a.right, &read))
}

/// One metric as arithmetic reads it: counts converted to `f64`, NaN when
/// missing (no data, or `stable.` outside a gate).
pub(crate) fn metric_f64(
    of: Which,
    metric: super::Metric,
    own: &Metrics,
    stable: Option<&Metrics>,
) -> f64 {
    let m = match of {
        Which::Own | Which::Canary => own,
        Which::Stable => match stable {
            Some(s) => s,
            None => return f64::NAN,
        },
    };
    match m.value(metric) {
        MetricValue::Count(n) => n as f64,
        MetricValue::Float(Some(x)) => x,
        MetricValue::Float(None) => f64::NAN,
    }
}

/// The value of `n`, IEEE 754 all the way: NaN (a missing metric) stays NaN.
pub(crate) fn num_value(n: &Num, read: &dyn Fn(Which, super::Metric) -> f64) -> f64 {
    match n {
        Num::Const(x) => *x,
        Num::Metric { of, metric } => read(*of, *metric),
        Num::Bin(op, l, r) => op.apply(num_value(l, read), num_value(r, read)),
    }
}

/// A line's JSON object, parsed on first use.
enum LazyJson {
    Unparsed,
    /// `None`: the line is not a JSON object.
    Parsed(Option<Map<String, Value>>),
}

impl LazyJson {
    fn get<'a>(&'a mut self, line: &str, name: &str) -> Option<&'a Value> {
        if let LazyJson::Unparsed = self {
            *self = LazyJson::Parsed(match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(map)) => Some(map),
                _ => None,
            });
        }
        match self {
            LazyJson::Parsed(Some(map)) => map.get(name),
            _ => None,
        }
    }
}

fn compare_log(c: &Comparison, rec: &LogRecord, json: &mut LazyJson) -> bool {
    match &c.subject {
        Subject::Text(field) => text_test(&c.test, Some(text_field(rec, *field))),
        Subject::Seq => match &c.test {
            Test::Unsigned { op, value } => op.holds(rec.seq.cmp(value)),
            Test::Number { op, value } => number_holds(*op, rec.seq as f64, *value),
            _ => false,
        },
        Subject::Release => match (&c.test, rec.release) {
            (Test::Unsigned { op, value }, Some(v)) => op.holds(u64::from(v.0).cmp(value)),
            _ => false,
        },
        Subject::Stream => match &c.test {
            Test::Stream { equal, value } => (rec.stream == *value) == *equal,
            _ => false,
        },
        Subject::Json(field) => {
            let Some(v) = json.get(&rec.line, &field.name) else {
                return false;
            };
            match (&c.test, v) {
                (
                    Test::Text { .. } | Test::Contains(_) | Test::Matches { .. },
                    Value::String(s),
                ) => text_test(&c.test, Some(s)),
                (Test::Number { op, value }, Value::Number(n)) => {
                    n.as_f64().is_some_and(|n| number_holds(*op, n, *value))
                }
                (Test::Bool { equal, value }, Value::Bool(b)) => (b == value) == *equal,
                (Test::Level { op, value }, v) => {
                    json_level(v).is_some_and(|l| op.holds(l.cmp(value)))
                }
                _ => false,
            }
        }
        Subject::Metric(_) => false,
    }
}

fn text_field(rec: &LogRecord, field: TextField) -> &str {
    match field {
        TextField::Host => &rec.host,
        TextField::App => &rec.app,
        TextField::Instance => &rec.instance,
        TextField::Time => &rec.time,
        TextField::Line => &rec.line,
    }
}

fn text_test(test: &Test, text: Option<&str>) -> bool {
    let Some(text) = text else { return false };
    match test {
        Test::Text { op, value } => op.holds(text.as_bytes().cmp(value.as_bytes())),
        Test::Contains(needle) => text.contains(needle.as_str()),
        Test::Matches { pattern, negated } => pattern.regex.is_match(text) != *negated,
        _ => false,
    }
}

/// The level a JSON `level` value names: a level name (any case, any alias
/// of [`Level::from_name`]) or a pino/bunyan number.
pub fn json_level(v: &Value) -> Option<Level> {
    match v {
        Value::String(s) => Level::from_name(s),
        Value::Number(n) => n.as_f64().and_then(Level::from_number),
        _ => None,
    }
}

/// `subject op value` as floats; a NaN subject (a metric with no data) never
/// holds, not even under `!=`.
pub fn number_holds(op: CmpOp, subject: f64, value: f64) -> bool {
    match subject.partial_cmp(&value) {
        Some(ordering) => op.holds(ordering),
        None => false,
    }
}

fn compare_metric(c: &Comparison, m: &Metrics) -> bool {
    let Subject::Metric(metric) = c.subject else {
        return false;
    };
    match (&c.test, m.value(metric)) {
        (Test::Unsigned { op, value }, MetricValue::Count(n)) => op.holds(n.cmp(value)),
        (Test::Number { op, value }, MetricValue::Count(n)) => number_holds(*op, n as f64, *value),
        (Test::Number { op, value }, MetricValue::Float(Some(x))) => number_holds(*op, x, *value),
        _ => false,
    }
}

/// One metric's value, as a rule reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Count(u64),
    /// `None`: no data in the window (e.g. no requests, so no latency).
    Float(Option<f64>),
}

impl std::fmt::Display for MetricValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricValue::Count(n) => write!(f, "{n}"),
            MetricValue::Float(Some(x)) => write!(f, "{}", (x * 10_000.0).round() / 10_000.0),
            MetricValue::Float(None) => f.write_str("none"),
        }
    }
}
