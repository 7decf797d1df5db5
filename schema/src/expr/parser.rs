//! Tokens to an untyped syntax tree.
//!
//! ```text
//! expr    := and ("||" and)*
//! and     := unary ("&&" unary)*
//! unary   := "!" unary | "(" expr ")" | "(" sum ")" rest | sum (op sum)?
//! rest    := (("*" | "/") atom)* (("+" | "-") product)* (op sum)?
//! op      := "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~" | "contains"
//! sum     := product (("+" | "-") product)*
//! product := atom (("*" | "/") atom)*
//! atom    := operand | "(" sum ")" | "-" (INT | FLOAT | DURATION)
//! operand := IDENT | STRING | /REGEX/ | INT | FLOAT | DURATION | true | false
//! ```
//!
//! `&&` binds tighter than `||`; `!` tighter than both; `*` and `/` tighter
//! than `+` and `-`, all four left-associative. A `(` at the start of a
//! condition may open a condition or an arithmetic group: it is parsed as a
//! condition, and if what it held was a bare term and an arithmetic or
//! comparison operator follows the `)`, the term continues as arithmetic
//! (`(p50_ms + p99_ms) / 2 > 300`). Which operands may meet which operator,
//! and where arithmetic is allowed at all (health rules only), is the
//! checker's business (`check.rs`), so the parser's errors are only about
//! shape.

use super::error::{ExprError, Span};
use super::lexer::{Tok, Token};

/// Deepest nesting of `(` and `!` accepted. Expressions come from operators
/// over SSH; a bound keeps a hostile one from exhausting the stack of the
/// recursive checker, interpreter and compiler.
pub const MAX_DEPTH: usize = 64;
/// Most comparisons in one expression, for the same reason (and compile time).
pub const MAX_COMPARISONS: usize = 512;
/// Deepest arithmetic term accepted (`a + b + c` is two deep): the same bound
/// as [`MAX_DEPTH`], for the same reason.
pub const MAX_ARITH_DEPTH: usize = MAX_DEPTH;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    Not(Box<Ast>),
    And(Vec<Ast>),
    Or(Vec<Ast>),
    /// A term with no comparison operator: only a boolean literal is a
    /// condition.
    Bare(Term),
    Compare {
        lhs: Term,
        op: Op,
        op_span: Span,
        rhs: Term,
    },
}

/// One side of a comparison: an operand, or arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Term {
    Leaf(Operand),
    /// `- 3`: a minus before a number literal, written apart from it.
    Neg {
        operand: Operand,
        span: Span,
    },
    Bin {
        op: ArithOp,
        op_span: Span,
        lhs: Box<Term>,
        rhs: Box<Term>,
        /// Operators on the longest path down: bounded by [`MAX_ARITH_DEPTH`].
        depth: usize,
    },
}

impl Term {
    pub(crate) fn span(&self) -> Span {
        match self {
            Term::Leaf(o) => o.span,
            Term::Neg { span, .. } => *span,
            Term::Bin { lhs, rhs, .. } => lhs.span().to(rhs.span()),
        }
    }

    fn depth(&self) -> usize {
        match self {
            Term::Leaf(_) | Term::Neg { .. } => 0,
            Term::Bin { depth, .. } => *depth,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl ArithOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
    Contains,
}

impl Op {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Match => "~",
            Op::NotMatch => "!~",
            Op::Contains => "contains",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A bare word: a field name, or a level/stream name where one is expected.
    Ident(String),
    Str(String),
    Regex(String),
    Int(i128),
    Float(f64),
    Duration(f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operand {
    pub value: Value,
    pub span: Span,
}

pub(crate) fn parse(src: &str, tokens: Vec<Token>) -> Result<Ast, ExprError> {
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
        comparisons: 0,
    };
    if p.peek() == &Tok::Eof {
        return Err(p.err_here("empty expression: expected a condition such as status >= 500"));
    }
    let ast = p.or()?;
    if p.peek() != &Tok::Eof {
        let found = p.peek().describe();
        let msg = if p.peek() == &Tok::RParen {
            "unmatched `)`: there is no `(` before it".to_string()
        } else {
            format!("expected `&&`, `||` or the end of the expression, found {found}")
        };
        return Err(p.err_here(msg));
    }
    Ok(ast)
}

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    comparisons: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].tok
    }

    fn span(&self) -> Span {
        self.tokens[self.pos.min(self.tokens.len() - 1)].span
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos.min(self.tokens.len() - 1)].clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_here(&self, message: impl Into<String>) -> ExprError {
        ExprError::new(self.src, self.span(), message)
    }

    fn or(&mut self) -> Result<Ast, ExprError> {
        let mut terms = vec![self.and()?];
        while self.peek() == &Tok::Or {
            self.bump();
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Ast::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Ast, ExprError> {
        let mut terms = vec![self.unary()?];
        while self.peek() == &Tok::And {
            self.bump();
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Ast::And(terms)
        })
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err_here(format!(
                "expression nested too deeply: at most {MAX_DEPTH} levels of `(` and `!`"
            )));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn unary(&mut self) -> Result<Ast, ExprError> {
        match self.peek() {
            Tok::Not => {
                self.bump();
                self.nested(|p| Ok(Ast::Not(Box::new(p.unary()?))))
            }
            Tok::LParen => {
                let open = self.bump().span;
                let inner = self.nested(|p| p.or())?;
                self.close(open)?;
                if !self.peek_continues_term() {
                    return Ok(inner);
                }
                match inner {
                    Ast::Bare(term) => self.comparison_from(Some(term)),
                    _ => {
                        let found = self.peek().describe();
                        Err(self.err_here(format!(
                            "{found} needs a number on its left, but the `(...)` before it is a condition"
                        )))
                    }
                }
            }
            _ => self.comparison_from(None),
        }
    }

    /// Expects the `)` closing the `(` at `open`.
    fn close(&mut self, open: Span) -> Result<(), ExprError> {
        if self.peek() != &Tok::RParen {
            let found = self.peek().describe();
            let at = ExprError::new(self.src, open, "");
            return Err(self.err_here(format!(
                "expected `)` to close the `(` at {}:{}, found {found}",
                at.line, at.column
            )));
        }
        self.bump();
        Ok(())
    }

    /// Whether the next token carries a term on: an arithmetic or a
    /// comparison operator.
    fn peek_continues_term(&self) -> bool {
        matches!(
            self.peek(),
            Tok::Plus
                | Tok::Minus
                | Tok::Star
                | Tok::Slash
                | Tok::Eq
                | Tok::Ne
                | Tok::Lt
                | Tok::Le
                | Tok::Gt
                | Tok::Ge
                | Tok::Match
                | Tok::NotMatch
                | Tok::Contains
        )
    }

    /// A comparison, or a bare term; `first` is its first atom when the
    /// caller has already parsed it (a parenthesized group).
    fn comparison_from(&mut self, first: Option<Term>) -> Result<Ast, ExprError> {
        let lhs = self.sum(first, "a field, a value, `!` or `(`")?;
        let op = match self.peek() {
            Tok::Eq => Op::Eq,
            Tok::Ne => Op::Ne,
            Tok::Lt => Op::Lt,
            Tok::Le => Op::Le,
            Tok::Gt => Op::Gt,
            Tok::Ge => Op::Ge,
            Tok::Match => Op::Match,
            Tok::NotMatch => Op::NotMatch,
            Tok::Contains => Op::Contains,
            Tok::And | Tok::Or | Tok::RParen | Tok::Eof => return Ok(Ast::Bare(lhs)),
            other => {
                let found = other.describe();
                let span = lhs.span();
                return Err(self.err_here(format!(
                    "expected an operator (==, !=, <, <=, >, >=, ~, !~, contains) after `{}`, found {found}",
                    &self.src[span.start..span.end]
                )));
            }
        };
        let op_span = self.bump().span;
        let rhs = self.sum(None, &format!("a value after `{}`", op.symbol()))?;
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(ExprError::new(
                self.src,
                lhs.span().to(rhs.span()),
                format!("too many comparisons: at most {MAX_COMPARISONS} in one expression"),
            ));
        }
        Ok(Ast::Compare {
            lhs,
            op,
            op_span,
            rhs,
        })
    }

    /// `product (("+" | "-") product)*`.
    fn sum(&mut self, first: Option<Term>, expected: &str) -> Result<Term, ExprError> {
        let mut acc = self.product(first, expected)?;
        loop {
            let op = match self.peek() {
                Tok::Plus => ArithOp::Add,
                Tok::Minus => ArithOp::Sub,
                _ => return Ok(acc),
            };
            let op_span = self.bump().span;
            let rhs = self.product(None, &format!("a number after `{}`", op.symbol()))?;
            acc = self.bin(op, op_span, acc, rhs)?;
        }
    }

    /// `atom (("*" | "/") atom)*`.
    fn product(&mut self, first: Option<Term>, expected: &str) -> Result<Term, ExprError> {
        let mut acc = match first {
            Some(t) => t,
            None => self.atom(expected)?,
        };
        loop {
            let op = match self.peek() {
                Tok::Star => ArithOp::Mul,
                Tok::Slash => ArithOp::Div,
                _ => return Ok(acc),
            };
            let op_span = self.bump().span;
            let rhs = self.atom(&format!("a number after `{}`", op.symbol()))?;
            acc = self.bin(op, op_span, acc, rhs)?;
        }
    }

    fn bin(&self, op: ArithOp, op_span: Span, lhs: Term, rhs: Term) -> Result<Term, ExprError> {
        let depth = 1 + lhs.depth().max(rhs.depth());
        if depth > MAX_ARITH_DEPTH {
            return Err(ExprError::new(
                self.src,
                op_span,
                format!(
                    "arithmetic too long: at most {MAX_ARITH_DEPTH} operators deep on one side of a comparison"
                ),
            ));
        }
        Ok(Term::Bin {
            op,
            op_span,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            depth,
        })
    }

    /// An operand, a parenthesized sum, or a minus before a number.
    fn atom(&mut self, expected: &str) -> Result<Term, ExprError> {
        match self.peek() {
            Tok::LParen => {
                let open = self.bump().span;
                let inner = self.nested(|p| p.sum(None, "a number after `(`"))?;
                self.close(open)?;
                Ok(inner)
            }
            Tok::Minus => {
                let minus = self.bump().span;
                match self.peek() {
                    Tok::Int(_) | Tok::Float(_) | Tok::Duration(_) => {
                        let operand = self.operand(expected)?;
                        Ok(Term::Neg {
                            span: minus.to(operand.span),
                            operand,
                        })
                    }
                    other => {
                        let found = other.describe();
                        Err(self.err_here(format!(
                            "a leading `-` only goes before a number, found {found}; \
                             to negate anything else, subtract it from 0 (0 - x)"
                        )))
                    }
                }
            }
            _ => Ok(Term::Leaf(self.operand(expected)?)),
        }
    }

    fn operand(&mut self, expected: &str) -> Result<Operand, ExprError> {
        let value = match self.peek() {
            Tok::Ident(s) if s == "true" => Value::Bool(true),
            Tok::Ident(s) if s == "false" => Value::Bool(false),
            Tok::Ident(s) => Value::Ident(s.clone()),
            Tok::Str(s) => Value::Str(s.clone()),
            Tok::Regex(s) => Value::Regex(s.clone()),
            Tok::Int(n) => Value::Int(*n),
            Tok::Float(n) => Value::Float(*n),
            Tok::Duration(n) => Value::Duration(*n),
            other => {
                let found = other.describe();
                return Err(self.err_here(format!("expected {expected}, found {found}")));
            }
        };
        let span = self.bump().span;
        Ok(Operand { value, span })
    }
}
