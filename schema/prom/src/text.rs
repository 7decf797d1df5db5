//! The Prometheus text exposition format, version 0.0.4: per family a
//! `# HELP` and a `# TYPE` line, then its samples, one per line:
//! `name{label="value",…} value`.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::histogram::HistogramSnapshot;

/// A metric family's type, as its `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value: counts print as integers, everything else as floats
/// (`+Inf`, `-Inf` and `NaN` as the format spells them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(u64::from(v))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v as u64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(u64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Rust's shortest round-trip form; never an exponent Go cannot read.
        let _ = write!(out, "{v}");
    }
}

fn write_value(out: &mut String, v: Value) {
    match v {
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(f) => write_float(out, f),
    }
}

/// A label value as the format wants it between double quotes: backslash,
/// double quote and line feed escaped (`\\`, `\"`, `\n`). Every other
/// character, control characters included, is legal as it is.
pub fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text: backslash and line feed escaped.
fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` (label names: without `:`).
fn valid_name(name: &str, colons: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (colons && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

/// Writes one scrape's worth of metric families.
///
/// Names (of families and labels) are the program's own, fixed in its
/// code; a name the format does not allow is a bug and panics in debug
/// builds. Label values may come from anywhere: they are escaped.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    family: Option<(String, Kind)>,
    seen: HashSet<String>,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts the family `name`: its `# HELP` and `# TYPE` lines. The
    /// samples written next belong to it. A family may be started once.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Exposition {
        debug_assert!(valid_name(name, true), "bad metric name {name:?}");
        let fresh = self.seen.insert(name.to_string());
        debug_assert!(fresh, "the family {name} was started twice");
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(&mut self.out, help);
        self.out.push('\n');
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        self.family = Some((name.to_string(), kind));
        self
    }

    fn current(&self) -> (String, Kind) {
        self.family
            .clone()
            .unwrap_or_else(|| (String::from("unnamed"), Kind::Gauge))
    }

    /// A sample of the current counter or gauge.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Exposition {
        let (name, kind) = self.current();
        debug_assert!(self.family.is_some(), "a sample before any family");
        debug_assert!(kind != Kind::Histogram, "use Exposition::histogram");
        self.line(&name, "", labels, None, value.into());
        self
    }

    /// The samples of one histogram of the current family: a cumulative
    /// `_bucket` per bound (`le`), `+Inf` included, then `_sum` and `_count`.
    pub fn histogram(&mut self, labels: &[(&str, &str)], h: &HistogramSnapshot) -> &mut Exposition {
        let (name, kind) = self.current();
        debug_assert!(kind == Kind::Histogram, "{name} is not a histogram");
        let mut le = String::new();
        for (bound, n) in h.buckets() {
            le.clear();
            write_float(&mut le, bound);
            self.line(&name, "_bucket", labels, Some(&le), Value::Int(n));
        }
        self.line(&name, "_sum", labels, None, Value::Float(h.sum));
        self.line(&name, "_count", labels, None, Value::Int(h.count));
        self
    }

    fn line(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        le: Option<&str>,
        value: Value,
    ) {
        let out = &mut self.out;
        out.push_str(name);
        out.push_str(suffix);
        let le = le.map(|v| ("le", v));
        let mut all = labels.iter().copied().chain(le).peekable();
        if all.peek().is_some() {
            out.push('{');
            for (i, (k, v)) in all.enumerate() {
                debug_assert!(valid_name(k, false), "bad label name {k:?}");
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label_value(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }

    /// The text, ready to serve.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Histogram;
    use std::time::Duration;

    #[test]
    fn families_have_help_and_type_and_label_values_are_escaped() {
        let mut e = Exposition::new();
        e.family(
            "cranefleet_http_requests_total",
            "Requests\nanswered, by \\ class",
            Kind::Counter,
        )
        .sample(&[("app", "a\"b\\c\nd"), ("code", "2xx")], 3u64)
        .sample(&[], 0u64);
        e.family("cranefleet_up", "Up.", Kind::Gauge)
            .sample(&[("host", "h")], 0.5)
            .sample(&[("host", "i")], f64::NAN)
            .sample(&[("host", "j")], f64::NEG_INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP cranefleet_http_requests_total Requests\\nanswered, by \\\\ class\n\
             # TYPE cranefleet_http_requests_total counter\n\
             cranefleet_http_requests_total{app=\"a\\\"b\\\\c\\nd\",code=\"2xx\"} 3\n\
             cranefleet_http_requests_total 0\n\
             # HELP cranefleet_up Up.\n\
             # TYPE cranefleet_up gauge\n\
             cranefleet_up{host=\"h\"} 0.5\n\
             cranefleet_up{host=\"i\"} NaN\n\
             cranefleet_up{host=\"j\"} -Inf\n"
        );
    }

    #[test]
    fn a_histogram_is_cumulative_with_le_sum_and_count() {
        let h = Histogram::new(&[0.01, 0.1, 1.0]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(10)); // on a bound: le is "<="
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let mut e = Exposition::new();
        e.family("x_seconds", "X.", Kind::Histogram)
            .histogram(&[("app", "a")], &h.snapshot());
        assert_eq!(
            e.finish(),
            "# HELP x_seconds X.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{app=\"a\",le=\"0.01\"} 2\n\
             x_seconds_bucket{app=\"a\",le=\"0.1\"} 3\n\
             x_seconds_bucket{app=\"a\",le=\"1\"} 3\n\
             x_seconds_bucket{app=\"a\",le=\"+Inf\"} 4\n\
             x_seconds_sum{app=\"a\"} 3.065\n\
             x_seconds_count{app=\"a\"} 4\n"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("cranefleet_a:b_1", true));
        assert!(!valid_name("cranefleet_a:b_1", false));
        assert!(!valid_name("1x", true));
        assert!(!valid_name("", true));
        assert!(!valid_name("a-b", true));
    }
}
