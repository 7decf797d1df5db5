//! Tokens to an untyped syntax tree.
//!
//! ```text
//! expr    := and ("||" and)*
//! and     := unary ("&&" unary)*
//! unary   := "!" unary | "(" expr ")" | operand (op operand)?
//! op      := "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~" | "contains"
//! operand := IDENT | STRING | /REGEX/ | INT | FLOAT | DURATION | true | false
//! ```
//!
//! `&&` binds tighter than `||`; `!` tighter than both. Which operands may
//! meet which operator is the checker's business (`check.rs`), so the parser's
//! errors are only about shape.

use super::error::{ExprError, Span};
use super::lexer::{Tok, Token};

/// Deepest nesting of `(` and `!` accepted. Expressions come from operators
/// over SSH; a bound keeps a hostile one from exhausting the stack of the
/// recursive checker, interpreter and compiler.
pub const MAX_DEPTH: usize = 64;
/// Most comparisons in one expression, for the same reason (and compile time).
pub const MAX_COMPARISONS: usize = 512;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    Not(Box<Ast>),
    And(Vec<Ast>),
    Or(Vec<Ast>),
    /// An operand with no operator: only a boolean literal is a condition.
    Bare(Operand),
    Compare {
        lhs: Operand,
        op: Op,
        op_span: Span,
        rhs: Operand,
    },
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
                if self.peek() != &Tok::RParen {
                    let found = self.peek().describe();
                    let at = ExprError::new(self.src, open, "");
                    return Err(self.err_here(format!(
                        "expected `)` to close the `(` at {}:{}, found {found}",
                        at.line, at.column
                    )));
                }
                self.bump();
                Ok(inner)
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<Ast, ExprError> {
        let lhs = self.operand("a field, a value, `!` or `(`")?;
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
                return Err(self.err_here(format!(
                    "expected an operator (==, !=, <, <=, >, >=, ~, !~, contains) after `{}`, found {found}",
                    &self.src[lhs.span.start..lhs.span.end]
                )));
            }
        };
        let op_span = self.bump().span;
        let rhs = self.operand(&format!("a value after `{}`", op.symbol()))?;
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(ExprError::new(
                self.src,
                lhs.span.to(rhs.span),
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
