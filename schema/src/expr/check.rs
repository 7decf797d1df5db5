//! The untyped syntax tree to a typed [`Expr`], refusing what cannot mean
//! anything (`line > 3`, `seq ~ "x"`, an unknown metric, an invalid regex)
//! before anything is evaluated.

use std::collections::HashMap;

use super::Scope;
use super::ast::{
    Arith, CmpOp, Comparison, Expr, JsonField, Metric, Num, NumOp, Pattern, Subject, Test,
    TextField, Which,
};
use super::error::{ExprError, Span};
use super::level::Level;
use super::parser::{ArithOp, Ast, Op, Operand, Term, Value};
use crate::names::Version;
use crate::types::Stream;

/// Compiled size limit of one regex. Regexes come from operators over SSH;
/// the regex crate's default (10 MiB) lets one expression cost a host
/// seconds of compile time and megabytes per filter.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(crate) struct Checked {
    pub expr: Expr,
    pub json_fields: Vec<String>,
}

pub(crate) fn check(src: &str, ast: Ast, scope: Scope) -> Result<Checked, ExprError> {
    let mut c = Checker {
        src,
        scope,
        slots: HashMap::new(),
        json_fields: Vec::new(),
    };
    let expr = c.expr(ast)?;
    Ok(Checked {
        expr,
        json_fields: c.json_fields,
    })
}

/// A name resolved in a scope.
enum Field {
    Text(TextField),
    Seq,
    Release,
    Stream,
    Json(String),
    Metric(Metric),
}

/// The metrics health rules know, for error messages.
const METRIC_LIST: &str = "requests, errors, error_rate, p50_ms, p99_ms, restarts";

/// A comparison's two sides, the field's first: what the field is called
/// and where, the value, and whether they were written the other way round
/// (`500 < status`).
struct Sides {
    name: String,
    name_span: Span,
    lit: Operand,
    flipped: bool,
}

struct Checker<'s> {
    src: &'s str,
    scope: Scope,
    slots: HashMap<String, usize>,
    json_fields: Vec<String>,
}

impl Checker<'_> {
    fn err(&self, span: Span, message: impl Into<String>) -> ExprError {
        ExprError::new(self.src, span, message)
    }

    fn text(&self, span: Span) -> &str {
        &self.src[span.start..span.end]
    }

    fn expr(&mut self, ast: Ast) -> Result<Expr, ExprError> {
        Ok(match ast {
            Ast::Not(inner) => Expr::Not(Box::new(self.expr(*inner)?)),
            Ast::And(terms) => Expr::And(
                terms
                    .into_iter()
                    .map(|t| self.expr(t))
                    .collect::<Result<_, _>>()?,
            ),
            Ast::Or(terms) => Expr::Or(
                terms
                    .into_iter()
                    .map(|t| self.expr(t))
                    .collect::<Result<_, _>>()?,
            ),
            Ast::Bare(Term::Leaf(Operand {
                value: Value::Bool(b),
                ..
            })) => Expr::Const(b),
            Ast::Bare(Term::Leaf(Operand {
                value: Value::Ident(name),
                span,
            })) => {
                self.resolve(&name, span)?;
                let example = match self.scope {
                    Scope::Log => format!("{name} == \"...\""),
                    Scope::Health => format!("{name} > 0"),
                };
                return Err(self.err(
                    span,
                    format!(
                        "`{name}` alone is not a condition: compare it with a value, e.g. {example}"
                    ),
                ));
            }
            Ast::Bare(Term::Leaf(Operand { span, .. })) => {
                return Err(self.err(
                    span,
                    "a value alone is not a condition: compare a field with it, e.g. status == 500",
                ));
            }
            Ast::Bare(term) => {
                self.num(&term)?;
                let text = self.text(term.span());
                return Err(self.err(
                    term.span(),
                    format!(
                        "arithmetic alone is not a condition: compare it with something, e.g. {text} > 0"
                    ),
                ));
            }
            Ast::Compare {
                lhs,
                op,
                op_span,
                rhs,
            } => {
                let (lhs, rhs) = match self.scope {
                    Scope::Health => (fold_neg(lhs), fold_neg(rhs)),
                    Scope::Log => (lhs, rhs),
                };
                match (lhs, rhs) {
                    (Term::Leaf(l), Term::Leaf(r)) if self.is_simple(&l, &r) => {
                        Expr::Compare(self.comparison(l, op, op_span, r)?)
                    }
                    (lhs, rhs) => Expr::Arith(self.arith(lhs, op, op_span, rhs)?),
                }
            }
        })
    }

    /// Whether a comparison of two operands takes the field-against-literal
    /// path: always in log filters; in health rules when one side is an
    /// unprefixed metric name and the other is not a name (`error_rate >
    /// 0.05`, `500 < p99_ms`, `requests == "x"` — the last refused there).
    /// Two names, or a `canary.`/`stable.` name, is arithmetic.
    fn is_simple(&self, lhs: &Operand, rhs: &Operand) -> bool {
        let plain = |o: &Operand| matches!(&o.value, Value::Ident(n) if !n.contains('.'));
        let name = |o: &Operand| matches!(o.value, Value::Ident(_));
        match self.scope {
            Scope::Log => true,
            Scope::Health => (plain(lhs) && !name(rhs)) || (plain(rhs) && !name(lhs)),
        }
    }

    /// A comparison with arithmetic, two metrics or a prefixed metric on a
    /// side (health rules only).
    fn arith(&mut self, lhs: Term, op: Op, op_span: Span, rhs: Term) -> Result<Arith, ExprError> {
        let span = lhs.span().to(rhs.span());
        if self.scope == Scope::Log {
            let term = [&lhs, &rhs]
                .into_iter()
                .find(|t| !matches!(t, Term::Leaf(_)))
                .unwrap_or(&lhs);
            let (at, message) = match term {
                Term::Bin { op, op_span, .. } => (
                    *op_span,
                    format!(
                        "arithmetic (`{}`) is only for health rules: a log filter compares a field with a value",
                        op.symbol()
                    ),
                ),
                other => (
                    other.span(),
                    "arithmetic (a `-` apart from its number) is only for health rules: \
                     write a negative number as -3"
                        .to_string(),
                ),
            };
            return Err(self.err(at, message));
        }
        let cmp = match op {
            Op::Eq => CmpOp::Eq,
            Op::Ne => CmpOp::Ne,
            Op::Lt => CmpOp::Lt,
            Op::Le => CmpOp::Le,
            Op::Gt => CmpOp::Gt,
            Op::Ge => CmpOp::Ge,
            Op::Match | Op::NotMatch | Op::Contains => {
                return Err(self.err(
                    op_span,
                    format!(
                        "`{}` works on text; health rules compare numbers with ==, !=, <, <=, > or >=",
                        op.symbol()
                    ),
                ));
            }
        };
        let left = self.num(&lhs)?;
        let right = self.num(&rhs)?;
        if !has_metric(&left) && !has_metric(&right) {
            return Err(self.err(
                span,
                "compare a metric with a value: neither side of this comparison reads a metric",
            ));
        }
        // A lone metric against a lone literal gets the checks the simple
        // form does (`canary.requests > -1`, `stable.error_rate > 5ms`).
        for (metric_side, lit_side) in [(&lhs, &rhs), (&rhs, &lhs)] {
            if let (Term::Leaf(m), Some(lit)) = (metric_side, self.literal(lit_side))
                && let Value::Ident(name) = &m.value
                && let Num::Metric { metric, .. } = self.metric(name, m.span)?
            {
                let field = Field::Metric(metric);
                let mismatch = |example: &str| {
                    self.err(
                        lit.span,
                        format!("compare `{name}` with a number; {example}"),
                    )
                };
                self.numeric(&field, name, cmp, &lit, mismatch)?;
            }
        }
        Ok(Arith {
            left,
            op: cmp,
            right,
            span,
        })
    }

    /// A side that is one number literal, as an operand (`- 3` was folded
    /// into one by [`fold_neg`]).
    fn literal(&self, term: &Term) -> Option<Operand> {
        match term {
            Term::Leaf(
                o @ Operand {
                    value: Value::Int(_) | Value::Float(_) | Value::Duration(_),
                    ..
                },
            ) => Some(o.clone()),
            _ => None,
        }
    }

    /// A side of an arithmetic comparison.
    fn num(&self, term: &Term) -> Result<Num, ExprError> {
        match term {
            Term::Leaf(o) => match &o.value {
                Value::Ident(name) => self.metric(name, o.span),
                Value::Int(n) => Ok(Num::Const(*n as f64)),
                Value::Float(x) | Value::Duration(x) => Ok(Num::Const(*x)),
                other => Err(self.err(
                    o.span,
                    format!(
                        "{} cannot take part in arithmetic: use metrics, numbers and durations",
                        describe(other)
                    ),
                )),
            },
            Term::Neg { operand, .. } => match negate(&operand.value) {
                Value::Int(n) => Ok(Num::Const(n as f64)),
                Value::Float(x) | Value::Duration(x) => Ok(Num::Const(x)),
                other => Err(self.err(
                    operand.span,
                    format!("{} cannot be negated", describe(&other)),
                )),
            },
            Term::Bin { op, lhs, rhs, .. } => {
                let op = match op {
                    ArithOp::Add => NumOp::Add,
                    ArithOp::Sub => NumOp::Sub,
                    ArithOp::Mul => NumOp::Mul,
                    ArithOp::Div => NumOp::Div,
                };
                Ok(Num::Bin(
                    op,
                    Box::new(self.num(lhs)?),
                    Box::new(self.num(rhs)?),
                ))
            }
        }
    }

    /// A metric name in arithmetic, perhaps prefixed `canary.` or `stable.`.
    fn metric(&self, name: &str, span: Span) -> Result<Num, ExprError> {
        let (of, bare, bare_span) = match name.split_once('.') {
            None => (Which::Own, name, span),
            Some((prefix, rest)) => {
                let of = match prefix {
                    "canary" => Which::Canary,
                    "stable" => Which::Stable,
                    other => {
                        return Err(self.err(
                            Span::new(span.start, span.start + other.len()),
                            format!(
                                "unknown prefix `{other}.`: a metric may be prefixed canary. (the release being judged) \
                                 or stable. (the release it is compared with), e.g. canary.{rest} > 2 * stable.{rest}"
                            ),
                        ));
                    }
                };
                let start = span.start + prefix.len() + 1;
                (of, rest, Span::new(start, span.end))
            }
        };
        match Metric::ALL.into_iter().find(|m| m.as_str() == bare) {
            Some(metric) => Ok(Num::Metric { of, metric }),
            None => Err(self.err(
                bare_span,
                format!(
                    "unknown metric `{name}`: health rules can use {METRIC_LIST} \
                     (each also as canary.NAME or stable.NAME)"
                ),
            )),
        }
    }

    fn resolve(&mut self, name: &str, span: Span) -> Result<Field, ExprError> {
        match self.scope {
            Scope::Log => Ok(match name {
                "host" => Field::Text(TextField::Host),
                "app" => Field::Text(TextField::App),
                "instance" => Field::Text(TextField::Instance),
                "time" => Field::Text(TextField::Time),
                "line" => Field::Text(TextField::Line),
                "seq" => Field::Seq,
                "release" => Field::Release,
                "stream" => Field::Stream,
                other if other.contains('.') => {
                    return Err(self.err(
                        span,
                        format!(
                            "`{other}`: field names cannot contain `.` (the canary. and stable. prefixes belong to health rules)"
                        ),
                    ));
                }
                other => Field::Json(other.to_string()),
            }),
            Scope::Health => match self.metric(name, span)? {
                Num::Metric {
                    of: Which::Own,
                    metric,
                } => Ok(Field::Metric(metric)),
                _ => Err(self.err(
                    span,
                    format!("`{name}` alone is not a condition: compare it, e.g. {name} > 0"),
                )),
            },
        }
    }

    fn slot(&mut self, name: String) -> JsonField {
        let next = self.json_fields.len();
        let slot = *self.slots.entry(name.clone()).or_insert(next);
        if slot == next {
            self.json_fields.push(name.clone());
        }
        JsonField { name, slot }
    }

    fn comparison(
        &mut self,
        lhs: Operand,
        op: Op,
        op_span: Span,
        rhs: Operand,
    ) -> Result<Comparison, ExprError> {
        let span = lhs.span.to(rhs.span);
        let Sides {
            name,
            name_span,
            lit,
            flipped,
        } = self.sides(lhs, rhs, span)?;
        let field = self.resolve(&name, name_span)?;
        let ordered = |op: CmpOp| if flipped { op.flipped() } else { op };
        let test = match op {
            Op::Eq => self.ordered(&field, &name, ordered(CmpOp::Eq), lit, op_span)?,
            Op::Ne => self.ordered(&field, &name, ordered(CmpOp::Ne), lit, op_span)?,
            Op::Lt => self.ordered(&field, &name, ordered(CmpOp::Lt), lit, op_span)?,
            Op::Le => self.ordered(&field, &name, ordered(CmpOp::Le), lit, op_span)?,
            Op::Gt => self.ordered(&field, &name, ordered(CmpOp::Gt), lit, op_span)?,
            Op::Ge => self.ordered(&field, &name, ordered(CmpOp::Ge), lit, op_span)?,
            Op::Match | Op::NotMatch | Op::Contains => {
                if flipped {
                    return Err(self.err(
                        span,
                        format!(
                            "put the field on the left of `{}`, e.g. line {} \"...\"",
                            op.symbol(),
                            op.symbol()
                        ),
                    ));
                }
                self.textual(&field, &name, op, op_span, lit)?
            }
        };
        let subject = match field {
            Field::Text(t) => Subject::Text(t),
            Field::Seq => Subject::Seq,
            Field::Release => Subject::Release,
            Field::Stream => Subject::Stream,
            Field::Json(n) => Subject::Json(self.slot(n)),
            Field::Metric(m) => Subject::Metric(m),
        };
        Ok(Comparison {
            subject,
            test,
            span,
        })
    }

    /// Which side of a comparison is the field and which the value. A bare
    /// level or stream name on the right is a value, so `level >= warn` and
    /// `stream == stderr` read naturally; two fields, or two values, are
    /// refused.
    fn sides(&mut self, lhs: Operand, rhs: Operand, span: Span) -> Result<Sides, ExprError> {
        let sides = |name, name_span, value, value_span, flipped| Sides {
            name,
            name_span,
            lit: Operand {
                value,
                span: value_span,
            },
            flipped,
        };
        match (lhs.value, rhs.value) {
            (Value::Ident(l), Value::Ident(r)) => {
                let field = self.resolve(&l, lhs.span)?;
                let word = match &field {
                    Field::Json(n) if n == "level" => Level::from_name(&r).is_some(),
                    Field::Stream => r.parse::<Stream>().is_ok(),
                    _ => false,
                };
                if !word {
                    self.resolve(&r, rhs.span)?;
                    return Err(self.err(
                        span,
                        format!(
                            "comparing two fields (`{l}` and `{r}`) is not supported: compare a field with a value \
                             such as \"text\", 42, 0.5, 250ms or true"
                        ),
                    ));
                }
                Ok(sides(l, lhs.span, Value::Str(r), rhs.span, false))
            }
            (Value::Ident(l), r) => Ok(sides(l, lhs.span, r, rhs.span, false)),
            (l, Value::Ident(r)) => Ok(sides(r, rhs.span, l, lhs.span, true)),
            _ => Err(self.err(
                span,
                "compare a field with a value: neither side of this comparison is a field",
            )),
        }
    }

    /// `~`, `!~` and `contains`: text only.
    fn textual(
        &self,
        field: &Field,
        name: &str,
        op: Op,
        op_span: Span,
        lit: Operand,
    ) -> Result<Test, ExprError> {
        if !matches!(field, Field::Text(_) | Field::Json(_)) {
            let what = if matches!(op, Op::Contains) {
                "looks for text in text"
            } else {
                "matches text against a regex"
            };
            return Err(self.err(
                op_span,
                format!(
                    "`{}` {what}, but `{name}` is {}",
                    op.symbol(),
                    describe_field(field)
                ),
            ));
        }
        match (op, lit.value) {
            (Op::Contains, Value::Str(s)) => Ok(Test::Contains(s)),
            (Op::Contains, other) => Err(self.err(
                lit.span,
                format!(
                    "`contains` needs a string, found {}; e.g. {name} contains \"timeout\"",
                    describe(&other)
                ),
            )),
            (_, Value::Str(p) | Value::Regex(p)) => {
                let regex = regex::RegexBuilder::new(&p)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        self.err(
                            lit.span,
                            format!(
                                "invalid regex {}: {}",
                                self.text(lit.span),
                                regex_reason(&e)
                            ),
                        )
                    })?;
                Ok(Test::Matches {
                    pattern: Pattern { source: p, regex },
                    negated: op == Op::NotMatch,
                })
            }
            (_, other) => Err(self.err(
                lit.span,
                format!(
                    "`{}` needs a regex, found {}; e.g. {name} ~ /time(d )?out/",
                    op.symbol(),
                    describe(&other)
                ),
            )),
        }
    }

    /// `== != < <= > >=`.
    fn ordered(
        &self,
        field: &Field,
        name: &str,
        op: CmpOp,
        lit: Operand,
        op_span: Span,
    ) -> Result<Test, ExprError> {
        let mismatch = |example: &str| {
            self.err(
                lit.span,
                format!(
                    "`{name}` is {} and cannot be compared with {}; {example}",
                    describe_field(field),
                    describe(&lit.value)
                ),
            )
        };
        if let Value::Regex(_) = lit.value {
            return Err(self.err(
                lit.span,
                format!("a /regex/ only goes after `~` or `!~`, e.g. {name} ~ /err(or)?/"),
            ));
        }
        let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
        match field {
            Field::Text(_) => match lit.value {
                Value::Str(value) => Ok(Test::Text { op, value }),
                _ => Err(mismatch(&format!("compare it with a string, e.g. {name} == \"...\""))),
            },
            Field::Seq | Field::Metric(_) => self.numeric(field, name, op, &lit, mismatch),
            Field::Release => {
                let value = match &lit.value {
                    Value::Int(n) => u64::try_from(*n).ok(),
                    Value::Str(s) => s.parse::<Version>().ok().map(|v| u64::from(v.0)),
                    _ => None,
                };
                value
                    .map(|value| Test::Unsigned { op, value })
                    .ok_or_else(|| mismatch("compare it with a release like \"v3\" (or the number 3)"))
            }
            Field::Stream => {
                let stream = match &lit.value {
                    Value::Str(s) => s.parse::<Stream>().ok(),
                    _ => None,
                };
                let stream = stream.ok_or_else(|| mismatch("compare it with \"stdout\", \"stderr\", \"system\", \"message\" or \"access\""))?;
                if !equality {
                    return Err(self.err(op_span, "streams have no order: compare `stream` with == or !="));
                }
                Ok(Test::Stream { equal: op == CmpOp::Eq, value: stream })
            }
            Field::Json(json) => match lit.value {
                Value::Str(s) => match (json == "level", Level::from_name(&s)) {
                    (true, Some(value)) => Ok(Test::Level { op, value }),
                    (true, None) if !equality => Err(self.err(
                        lit.span,
                        format!(
                            "{:?} is not a level: ordering `level` needs one of trace, debug, info, warn, error, fatal",
                            s
                        ),
                    )),
                    _ => Ok(Test::Text { op, value: s }),
                },
                Value::Int(n) => Ok(Test::Number { op, value: n as f64 }),
                Value::Float(f) | Value::Duration(f) => Ok(Test::Number { op, value: f }),
                Value::Bool(value) if equality => Ok(Test::Bool { equal: op == CmpOp::Eq, value }),
                Value::Bool(_) => Err(self.err(op_span, "booleans have no order: compare with == or !=")),
                Value::Ident(_) | Value::Regex(_) => Err(mismatch("")),
            },
        }
    }

    fn numeric(
        &self,
        field: &Field,
        name: &str,
        op: CmpOp,
        lit: &Operand,
        mismatch: impl Fn(&str) -> ExprError,
    ) -> Result<Test, ExprError> {
        let count =
            matches!(field, Field::Seq) || matches!(field, Field::Metric(m) if m.is_count());
        let ms = matches!(field, Field::Metric(Metric::P50Ms | Metric::P99Ms));
        match lit.value {
            Value::Int(n) if count => match u64::try_from(n) {
                Ok(value) => Ok(Test::Unsigned { op, value }),
                Err(_) => Err(self.err(lit.span, format!("`{name}` is never negative: compare it with 0 or more"))),
            },
            Value::Int(n) => Ok(Test::Number { op, value: n as f64 }),
            Value::Float(value) => Ok(Test::Number { op, value }),
            Value::Duration(value) if ms => Ok(Test::Number { op, value }),
            Value::Duration(_) => Err(self.err(
                lit.span,
                format!("`{name}` is not a duration: only p50_ms, p99_ms and JSON fields take one (e.g. p99_ms > 250ms)"),
            )),
            _ => Err(mismatch(&format!("compare it with a number, e.g. {name} > 10"))),
        }
    }
}

fn has_metric(n: &Num) -> bool {
    match n {
        Num::Const(_) => false,
        Num::Metric { .. } => true,
        Num::Bin(_, l, r) => has_metric(l) || has_metric(r),
    }
}

/// `- 3` as the literal -3 (a minus apart from its number, in a health
/// rule); any other term as it is.
fn fold_neg(term: Term) -> Term {
    match term {
        Term::Neg { operand, span } => Term::Leaf(Operand {
            value: negate(&operand.value),
            span,
        }),
        other => other,
    }
}

/// A number literal negated (`- 3`); other values are returned as they are.
fn negate(value: &Value) -> Value {
    match value {
        Value::Int(n) => Value::Int(-n),
        Value::Float(x) => Value::Float(-x),
        Value::Duration(x) => Value::Duration(-x),
        other => other.clone(),
    }
}

fn describe_field(field: &Field) -> &'static str {
    match field {
        Field::Text(_) => "text",
        Field::Seq => "a number (the record's sequence number)",
        Field::Release => "a release",
        Field::Stream => "a stream (stdout, stderr, system, message or access)",
        Field::Json(_) => "a JSON field",
        Field::Metric(m) if m.is_count() => "a count",
        Field::Metric(_) => "a number",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Ident(s) => format!("`{s}`"),
        Value::Str(s) => format!("the string {s:?}"),
        Value::Regex(s) => format!("the regex /{s}/"),
        Value::Int(n) => format!("the number {n}"),
        Value::Float(n) => format!("the number {n}"),
        Value::Duration(n) => format!("the duration {n}ms"),
        Value::Bool(b) => format!("{b}"),
    }
}

/// The regex crate's message without its own multi-line diagram (ours points
/// at the literal).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim().to_string())
}
