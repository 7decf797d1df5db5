//! The untyped syntax tree to a typed [`Expr`], refusing what cannot mean
//! anything (`line > 3`, `seq ~ "x"`, an unknown metric, an invalid regex)
//! before anything is evaluated.

use std::collections::HashMap;

use super::Scope;
use super::ast::{CmpOp, Comparison, Expr, JsonField, Metric, Pattern, Subject, Test, TextField};
use super::error::{ExprError, Span};
use super::level::Level;
use super::parser::{Ast, Op, Operand, Value};
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
            Ast::Bare(Operand {
                value: Value::Bool(b),
                ..
            }) => Expr::Const(b),
            Ast::Bare(Operand {
                value: Value::Ident(name),
                span,
            }) => {
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
            Ast::Bare(Operand { span, .. }) => {
                return Err(self.err(
                    span,
                    "a value alone is not a condition: compare a field with it, e.g. status == 500",
                ));
            }
            Ast::Compare {
                lhs,
                op,
                op_span,
                rhs,
            } => Expr::Compare(self.comparison(lhs, op, op_span, rhs)?),
        })
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
                other => Field::Json(other.to_string()),
            }),
            Scope::Health => match Metric::ALL.into_iter().find(|m| m.as_str() == name) {
                Some(m) => Ok(Field::Metric(m)),
                None => Err(self.err(
                    span,
                    format!(
                        "unknown metric `{name}`: health rules can use requests, errors, error_rate, p50_ms, p99_ms, restarts"
                    ),
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
