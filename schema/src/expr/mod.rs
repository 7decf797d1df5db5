//! The filter and health-rule language: parser, type checker and the
//! reference interpreter.
//!
//! Operators narrow logs (`logs --where`, the console's `/`) and say when a
//! release is unhealthy (a manifest's `health.rule`) in one small language.
//! This module turns source text into a checked, typed [`Expr`] and evaluates
//! it. hostd also compiles the same `Expr` to native code
//! (`hostd::filter`); this interpreter is the reference that code is tested
//! against, so the semantics below are defined here.
//!
//! # API
//!
//! - [`parse_filter`]`(src) -> Result<`[`Filter`]`, `[`ExprError`]`>`, then
//!   [`Filter::matches`]`(&LogRecord) -> bool`.
//! - [`parse_rule`]`(src) -> Result<`[`Rule`]`, ExprError>`, then
//!   [`Rule::eval`]`(&`[`Metrics`]`) -> bool` and, for the audit entry,
//!   [`Rule::explain`]`(&Metrics)` ("error_rate=0.12 > 0.05").
//! - Gate rules (a canary judged against the stable release):
//!   [`Rule::is_gate`]`() -> bool`, [`Rule::eval_gate`]`(&canary, &stable)
//!   -> bool`, [`Rule::explain_gate`]`(&canary, &stable) -> Explanation`
//!   ("canary.error_rate=0.3 > 2 * stable.error_rate=0.01"); [`DEFAULT_GATE`]
//!   is the stock gate rule for canary releases.
//! - Both serialize as their source text, and deserializing re-checks it, so
//!   a `Filter` can travel in a frame and arrive valid or not at all.
//! - [`ExprError`]'s `Display` is the position, the message and a caret
//!   diagram; [`ExprError::summary`] is the one-line form.
//!
//! # The language
//!
//! ```text
//! level >= warn && app == "api" && msg ~ /time(d )?out/
//! status >= 500 || latency_ms > 250ms
//! !(stream == stderr) && line contains "panic"
//! error_rate > 0.05 || p99_ms > 500          (a health rule)
//! p99_ms > p50_ms * 3 || errors / requests > 0.1
//! canary.error_rate > 2 * stable.error_rate || canary.p99_ms > stable.p99_ms + 50   (a gate)
//! ```
//!
//! - **Fields of a log record** ([`Scope::Log`]): `host`, `app`, `instance`,
//!   `time` (RFC 3339, compared as text), `line` (text); `seq` (unsigned
//!   integer); `release` (compare with `"v3"` or `3`; missing on records not
//!   tied to a release); `stream` (`== / !=` with `stdout`, `stderr`, `system`,
//!   quoted or not). Any other name is a top-level field of the line when the
//!   line is a JSON object (`status`, `latency_ms`, `level`, `msg`…); the
//!   record fields win over JSON fields of the same name.
//! - **Metrics** ([`Scope::Health`]): `requests`, `errors`, `restarts`
//!   (counts), `error_rate`, `p50_ms`, `p99_ms` (floats, missing when the
//!   window had no requests). Other names are errors. A metric may be
//!   prefixed `canary.` or `stable.` (see *Gates* below); no other prefix
//!   is known.
//! - **Literals**: strings `"..."` or `'...'` (escapes `\\ \" \' \n \t \r \0
//!   \u{..}`), integers (`-3`, `500`, from `i64::MIN` to `u64::MAX`), floats
//!   (`0.05`, `1e3`), durations (`250ms`, `1.5s`, `1m`, `1h`, compared as
//!   milliseconds), `true`/`false`, and regexes `/.../` after `~` (only `\/`
//!   is an escape there; a string works too, with its own escapes).
//! - **Operators**: `== != < <= > >=`, `~` / `!~` (regex search, the `regex`
//!   crate's syntax, compiled once at parse time), `contains` (substring,
//!   case-sensitive), `&& || !` and parentheses. `&&` binds tighter than `||`.
//!   One side of a comparison is a field and the other a literal; a literal on
//!   the left is fine for ordering (`500 <= status`), not for `~`/`contains`.
//!   Health rules may also compare arithmetic (below).
//! - **Arithmetic** (health rules only; a log filter refuses it): `+ - * /`
//!   over metrics, numbers and durations (as milliseconds), `*` and `/`
//!   binding tighter than `+` and `-`, all left-associative, with
//!   parentheses; a `-` before a number negates it (`- 3`, `-3`; `0 - x`
//!   negates anything else). Right after a name, a number or `)`, `-`
//!   subtracts and `/` divides (`p99_ms-3`, `errors/requests`); elsewhere
//!   they start a negative number and a regex, as before. Either or both
//!   sides of `== != < <= > >=` may be arithmetic, and may read two metrics:
//!   `p99_ms > p50_ms * 3`, `errors / requests > 0.1`,
//!   `(p50_ms + p99_ms) / 2 > 300ms`. Strings, booleans and regexes take no
//!   part in it, and one side at least must read a metric. A plain
//!   `metric op literal` stays a field-against-literal comparison (exact
//!   counts, explained as `error_rate=0.12 > 0.05`).
//! - **Gates.** `canary.NAME` and `stable.NAME` read a metric of the canary
//!   release being judged and of the stable release it is compared with
//!   (e.g. [`DEFAULT_GATE`]); an unprefixed name reads the release being
//!   judged (in a gate, the canary). A comparison with a prefixed metric is
//!   arithmetic, even `canary.error_rate > 0.05`.
//!
//! # Semantics
//!
//! - **Missing → no match.** A comparison whose field is missing (a JSON field
//!   on a line that is not a JSON object or lacks it, `release` on a record
//!   with none, a metric with no data) is false, whatever its operator —
//!   `!=` and `!~` included. `!` negates the result, so `!(status == 500)`
//!   is true on a line with no `status`, and `status != 500` is false there.
//! - **JSON fields are dynamically typed.** Against a number (or duration),
//!   a JSON number compares numerically (as `f64`); against a string, a JSON
//!   string compares as text; against `true`/`false`, a JSON boolean. A value
//!   of any other kind (a string against a number, `null`, an array) is
//!   treated as missing. A line that is not valid JSON has no JSON fields.
//! - **Text** compares byte-wise (lexicographically) and case-sensitively.
//! - **Levels.** `level` compared with a level name (`warn`, `"WARNING"`…,
//!   see [`Level`]) compares by severity: `trace < debug < info < warn <
//!   error < fatal`, names case-insensitive with aliases (`warning`, `err`,
//!   `critical`…), and pino/bunyan numbers (30 = info, 50 = error). A `level`
//!   value that names no level is missing for such a comparison. Compared
//!   with any other string, `level` is plain text (`level == "custom"`).
//! - **Numbers.** Counts (`seq`, `requests`…) compared with an integer are
//!   compared exactly; anything involving a float compares as `f64`. A
//!   negative number against a count is an error, as is a duration against
//!   anything but `p50_ms`, `p99_ms` and JSON fields (in arithmetic,
//!   durations are just milliseconds, but a lone metric against a lone
//!   literal is checked the same way: `canary.requests > -1` is refused).
//! - **Arithmetic is `f64`**: counts are converted (exact up to 2^53), and
//!   each operation is IEEE 754 (`x / 0` is ±inf, `0 / 0` is NaN). A
//!   missing metric reads as NaN, which every operation propagates, so the
//!   whole side is NaN and the comparison is false whatever its operator
//!   (the same "missing → no match" rule). [`Rule::eval`] has no stable
//!   release: every `stable.` metric is missing there (counts too), so a
//!   comparison reading one is false; [`Rule::eval_gate`] reads both.
//!
//! Type errors (`line > 3`, `seq ~ "x"`, `stream < "stdout"`, `"x" * 2`),
//! unknown metrics and prefixes, arithmetic in a log filter and invalid
//! regexes are refused by the parse functions, with the
//! position; nothing is evaluated.

mod ast;
mod check;
mod error;
mod eval;
mod level;
mod lexer;
mod parser;
mod rule;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use ast::{
    Arith, CmpOp, Comparison, Expr, JsonField, Leaf, Metric, Num, NumOp, Pattern, Subject, Test,
    TextField, Which,
};
pub use error::{ExprError, Span};
pub use eval::{MetricValue, json_level, number_holds};
pub use level::Level;
pub use parser::{MAX_ARITH_DEPTH, MAX_COMPARISONS, MAX_DEPTH};
pub use rule::{
    ArithObservation, DEFAULT_GATE, Explanation, Metrics, Observation, Reading, Rule, parse_rule,
};

use crate::types::LogRecord;

/// Longest expression accepted, in bytes.
pub const MAX_SOURCE_LEN: usize = 4096;

/// Which names an expression may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Log filters: record fields and JSON fields of the line.
    Log,
    /// Health rules: per-app metrics.
    Health,
}

/// A checked expression with the JSON field names it reads (see
/// [`Filter::json_fields`]). Prefer [`parse_filter`] and [`parse_rule`].
pub fn parse(src: &str, scope: Scope) -> Result<(Expr, Vec<String>), ExprError> {
    if src.len() > MAX_SOURCE_LEN {
        return Err(ExprError::new(
            src,
            error::Span::new(MAX_SOURCE_LEN, src.len()),
            format!("expression too long: at most {MAX_SOURCE_LEN} bytes"),
        ));
    }
    let tokens = lexer::lex(src)?;
    let ast = parser::parse(src, tokens)?;
    let checked = check::check(src, ast, scope)?;
    Ok((checked.expr, checked.json_fields))
}

/// Parses and checks a log filter. Errors name the position and what was
/// expected; see the module documentation for the language.
pub fn parse_filter(src: &str) -> Result<Filter, ExprError> {
    Filter::parse(src)
}

/// A checked log filter.
#[derive(Debug, Clone)]
pub struct Filter {
    source: String,
    expr: Expr,
    json_fields: Vec<String>,
}

impl Filter {
    /// Same as [`parse_filter`].
    pub fn parse(src: &str) -> Result<Filter, ExprError> {
        let (expr, json_fields) = parse(src, Scope::Log)?;
        Ok(Filter {
            source: src.to_string(),
            expr,
            json_fields,
        })
    }

    /// The text it was parsed from: what to send to another process, which
    /// parses it again.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The typed expression, for back ends.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The distinct JSON field names the filter reads; a [`JsonField`]'s
    /// `slot` indexes this. Empty when the filter never looks inside lines.
    pub fn json_fields(&self) -> &[String] {
        &self.json_fields
    }

    /// Whether `rec` matches, by the reference interpreter.
    pub fn matches(&self, rec: &LogRecord) -> bool {
        eval::eval_log(&self.expr, rec)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        self.source == other.source
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Filter::parse(&s).map_err(|e| serde::de::Error::custom(e.summary()))
    }
}
