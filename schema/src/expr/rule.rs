//! Health rules: the language over per-app metrics, and the explanation an
//! audit entry carries when a rule trips ("error_rate=0.12 > 0.05").
//!
//! A rule judges one release from its [`Metrics`]; a gate rule (one that
//! reads `canary.` or `stable.` metrics) judges a canary against the stable
//! release, from both releases' metrics ([`Rule::eval_gate`]).

use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ast::{Arith, CmpOp, Expr, Leaf, Metric, Num, Subject, Test, Which};
use super::error::ExprError;
use super::eval::{self, MetricValue};
use super::{Scope, parse};

/// What a host measured of one app over the health window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Requests (http) or runs (job) finished in the window.
    pub requests: u64,
    /// Of those, how many failed (5xx, trap, non-zero exit).
    pub errors: u64,
    /// `errors / requests`; `None` when there were no requests.
    pub error_rate: Option<f64>,
    /// Median latency in ms; `None` when there were no requests.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in ms; `None` when there were no requests.
    pub p99_ms: Option<f64>,
    /// Instance restarts in the window.
    pub restarts: u64,
}

impl Metrics {
    /// One metric. A `Some(NaN)` float counts as no data.
    pub fn value(&self, metric: Metric) -> MetricValue {
        let float = |x: Option<f64>| MetricValue::Float(x.filter(|x| !x.is_nan()));
        match metric {
            Metric::Requests => MetricValue::Count(self.requests),
            Metric::Errors => MetricValue::Count(self.errors),
            Metric::Restarts => MetricValue::Count(self.restarts),
            Metric::ErrorRate => float(self.error_rate),
            Metric::P50Ms => float(self.p50_ms),
            Metric::P99Ms => float(self.p99_ms),
        }
    }
}

/// The gate of a canary deployed without a health rule.
pub use crate::canary::DEFAULT_GATE;

/// Parses and checks a health rule (names are limited to the metrics of
/// [`Metrics`]; anything else is an error naming them).
pub fn parse_rule(src: &str) -> Result<Rule, ExprError> {
    Rule::parse(src)
}

/// A checked health rule: true means unhealthy.
#[derive(Debug, Clone)]
pub struct Rule {
    source: String,
    expr: Expr,
}

impl Rule {
    /// Same as [`parse_rule`].
    pub fn parse(src: &str) -> Result<Rule, ExprError> {
        let (expr, _) = parse(src, Scope::Health)?;
        Ok(Rule {
            source: src.to_string(),
            expr,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The typed expression, for back ends.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether the rule holds (the release is unhealthy), by the reference
    /// interpreter. Unprefixed and `canary.` metrics read `m`; `stable.`
    /// metrics are missing (so an arithmetic comparison reading one is
    /// false, whatever its operator): evaluate gate rules with
    /// [`Rule::eval_gate`].
    pub fn eval(&self, m: &Metrics) -> bool {
        eval::eval_health(&self.expr, m, None)
    }

    /// Whether a gate rule holds (the canary is unhealthy), by the reference
    /// interpreter: unprefixed and `canary.` metrics read `canary`,
    /// `stable.` metrics read `stable`. On a rule that is not a gate this is
    /// `eval(canary)`.
    pub fn eval_gate(&self, canary: &Metrics, stable: &Metrics) -> bool {
        eval::eval_health(&self.expr, canary, Some(stable))
    }

    /// Whether the rule reads any `canary.` or `stable.` metric: a rule to
    /// judge a canary against the stable release with.
    pub fn is_gate(&self) -> bool {
        self.expr.leaves().into_iter().any(|l| match l {
            Leaf::Arith(a) => a.is_gate(),
            Leaf::Compare(_) => false,
        })
    }

    /// The distinct metrics the rule reads, in order of first use, whichever
    /// release they are read from.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut out: Vec<Metric> = Vec::new();
        let mut add = |m: Metric| {
            if !out.contains(&m) {
                out.push(m);
            }
        };
        for leaf in self.expr.leaves() {
            match leaf {
                Leaf::Compare(c) => {
                    if let Subject::Metric(m) = c.subject {
                        add(m);
                    }
                }
                Leaf::Arith(a) => a.metrics().into_iter().for_each(|(_, m)| add(m)),
            }
        }
        out
    }

    /// Every comparison of the rule with the values it read and whether it
    /// held: what an audit entry says when the rule trips. `stable.`
    /// metrics are missing, as in [`Rule::eval`].
    pub fn explain(&self, m: &Metrics) -> Explanation {
        self.explanation(m, None)
    }

    /// [`Rule::explain`] for a gate: what [`Rule::eval_gate`] read, e.g.
    /// `canary.error_rate=0.3 > 2 * stable.error_rate=0.01`.
    pub fn explain_gate(&self, canary: &Metrics, stable: &Metrics) -> Explanation {
        self.explanation(canary, Some(stable))
    }

    fn explanation(&self, own: &Metrics, stable: Option<&Metrics>) -> Explanation {
        let mut observations = Vec::new();
        let mut arithmetic = Vec::new();
        for leaf in self.expr.leaves() {
            let held = eval::holds(leaf, own, stable);
            match leaf {
                Leaf::Compare(c) => {
                    let Subject::Metric(metric) = c.subject else {
                        continue;
                    };
                    let (op, limit) = match &c.test {
                        Test::Unsigned { op, value } => (*op, value.to_string()),
                        Test::Number { op, value } => (*op, value.to_string()),
                        _ => continue,
                    };
                    observations.push(Observation {
                        metric,
                        value: own.value(metric),
                        op,
                        limit,
                        held,
                    });
                }
                Leaf::Arith(a) => {
                    let position = observations.len() + arithmetic.len();
                    arithmetic.push(ArithObservation::new(a, own, stable, position, held));
                }
            }
        }
        Explanation {
            tripped: eval::eval_health(&self.expr, own, stable),
            observations,
            arithmetic,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.source == other.source
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Rule::parse(&s).map_err(|e| serde::de::Error::custom(e.summary()))
    }
}

/// What a rule read and concluded; see [`Rule::explain`].
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Whether the whole rule held.
    pub tripped: bool,
    /// One per metric-against-literal comparison (`error_rate > 0.05`),
    /// left to right.
    pub observations: Vec<Observation>,
    /// One per arithmetic comparison (`p99_ms > p50_ms * 3`, any with a
    /// `canary.` or `stable.` metric), left to right; each knows its place
    /// among all comparisons.
    pub arithmetic: Vec<ArithObservation>,
}

/// One arithmetic comparison of a rule, e.g.
/// `canary.error_rate=0.3 > 2 * stable.error_rate=0.01` (held).
#[derive(Debug, Clone, PartialEq)]
pub struct ArithObservation {
    /// Its place among all the rule's comparisons of both kinds, from 0,
    /// left to right.
    pub position: usize,
    /// The metrics it read, left to right.
    pub readings: Vec<Reading>,
    /// The comparison as written, each metric followed by `=` and its value
    /// (`-` when missing), literals as numbers (durations in ms).
    pub text: String,
    /// Whether this comparison held.
    pub held: bool,
}

/// One metric an arithmetic comparison read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub of: Which,
    pub metric: Metric,
    /// As arithmetic used it (counts converted); `None` when missing.
    pub value: Option<f64>,
}

impl ArithObservation {
    fn new(
        a: &Arith,
        own: &Metrics,
        stable: Option<&Metrics>,
        position: usize,
        held: bool,
    ) -> ArithObservation {
        let mut readings = Vec::new();
        let mut text = String::new();
        let mut read = |n: &Num, text: &mut String| {
            render(n, 0, false, own, stable, text, &mut readings);
        };
        read(&a.left, &mut text);
        let _ = write!(text, " {} ", a.op.symbol());
        read(&a.right, &mut text);
        ArithObservation {
            position,
            readings,
            text,
            held,
        }
    }
}

/// Writes `n` with each metric's value, parenthesized where precedence (or,
/// on the right of an operator of the same precedence, associativity) needs
/// it.
fn render(
    n: &Num,
    parent: u8,
    right: bool,
    own: &Metrics,
    stable: Option<&Metrics>,
    out: &mut String,
    readings: &mut Vec<Reading>,
) {
    match n {
        Num::Const(x) => {
            let _ = write!(out, "{x}");
        }
        Num::Metric { of, metric } => {
            let x = eval::metric_f64(*of, *metric, own, stable);
            let value = (!x.is_nan()).then_some(x);
            readings.push(Reading {
                of: *of,
                metric: *metric,
                value,
            });
            let _ = write!(out, "{}{}=", of.prefix(), metric.as_str());
            match value {
                Some(x) => {
                    let _ = write!(out, "{}", (x * 10_000.0).round() / 10_000.0);
                }
                None => out.push('-'),
            }
        }
        Num::Bin(op, l, r) => {
            let p = op.precedence();
            let parens = p < parent || (p == parent && right);
            if parens {
                out.push('(');
            }
            render(l, p, false, own, stable, out, readings);
            let _ = write!(out, " {} ", op.symbol());
            render(r, p, true, own, stable, out, readings);
            if parens {
                out.push(')');
            }
        }
    }
}

impl fmt::Display for ArithObservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One comparison of either kind, in order.
enum Shown<'a> {
    Simple(&'a Observation),
    Arith(&'a ArithObservation),
}

impl Shown<'_> {
    fn held(&self) -> bool {
        match self {
            Shown::Simple(o) => o.held,
            Shown::Arith(a) => a.held,
        }
    }
}

impl Explanation {
    /// Both kinds of observation, left to right.
    fn in_order(&self) -> Vec<Shown<'_>> {
        let mut simple = self.observations.iter();
        let mut arith = self.arithmetic.iter().peekable();
        let total = self.observations.len() + self.arithmetic.len();
        let mut out = Vec::with_capacity(total);
        for i in 0..total {
            let next = match arith.peek() {
                Some(a) if a.position == i => arith.next().map(Shown::Arith),
                _ => simple.next().map(Shown::Simple),
            };
            // Positions out of step (an `Explanation` built by hand): show
            // the rest anyway.
            out.extend(next.or_else(|| arith.next().map(Shown::Arith)));
        }
        out
    }
}

/// One comparison of a rule, e.g. `error_rate=0.12 > 0.05` (held).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub metric: Metric,
    /// What the metric was.
    pub value: MetricValue,
    pub op: CmpOp,
    /// The literal it was compared with (durations in ms).
    pub limit: String,
    /// Whether this comparison held.
    pub held: bool,
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={} {} {}",
            self.metric.as_str(),
            self.value,
            self.op.symbol(),
            self.limit
        )
    }
}

/// The comparisons that held, e.g. `error_rate=0.12 > 0.05, restarts=4 > 3`;
/// when none did (a rule tripped through `!`), every comparison, each marked
/// `(false)`.
impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = self.in_order();
        let any_held = all.iter().any(Shown::held);
        let mut first = true;
        for o in all.iter().filter(|o| o.held() || !any_held) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            match o {
                Shown::Simple(o) => write!(f, "{o}")?,
                Shown::Arith(a) => write!(f, "{a}")?,
            }
            if !o.held() {
                f.write_str(" (false)")?;
            }
        }
        Ok(())
    }
}
