//! Health rules: the language over per-app metrics, and the explanation an
//! audit entry carries when a rule trips ("error_rate=0.12 > 0.05").

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ast::{CmpOp, Expr, Metric, Subject, Test};
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
    /// interpreter.
    pub fn eval(&self, m: &Metrics) -> bool {
        eval::eval_health(&self.expr, m)
    }

    /// The distinct metrics the rule reads, in order of first use.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut out: Vec<Metric> = Vec::new();
        for c in self.expr.comparisons() {
            if let Subject::Metric(m) = c.subject
                && !out.contains(&m)
            {
                out.push(m);
            }
        }
        out
    }

    /// Every comparison of the rule with the value it read and whether it
    /// held: what an audit entry says when the rule trips.
    pub fn explain(&self, m: &Metrics) -> Explanation {
        let observations = self
            .expr
            .comparisons()
            .into_iter()
            .filter_map(|c| {
                let Subject::Metric(metric) = c.subject else {
                    return None;
                };
                let (op, limit) = match &c.test {
                    Test::Unsigned { op, value } => (*op, value.to_string()),
                    Test::Number { op, value } => (*op, value.to_string()),
                    _ => return None,
                };
                let held = eval::eval_health(&Expr::Compare(c.clone()), m);
                Some(Observation {
                    metric,
                    value: m.value(metric),
                    op,
                    limit,
                    held,
                })
            })
            .collect();
        Explanation {
            tripped: self.eval(m),
            observations,
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
    /// One per comparison, left to right.
    pub observations: Vec<Observation>,
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
        let any_held = self.observations.iter().any(|o| o.held);
        let mut first = true;
        for o in self.observations.iter().filter(|o| o.held || !any_held) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{o}")?;
            if !o.held {
                f.write_str(" (false)")?;
            }
        }
        Ok(())
    }
}
