//! One comparison to native code: a record field, a metric or a JSON field
//! of the line, under its typed test. Short equalities are inlined as word
//! compares; the rest call the helpers of `runtime.rs`.

use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{Block, InstBuilder, StackSlotData, StackSlotKind, Value, types};
use regex::Regex;
use schema::expr::{Arith, CmpOp, Comparison, Metric, Num, NumOp, Subject, Test, Which};

use super::{Gen, mem};
use crate::filter::JitError;
use crate::filter::layout::MetricsRef;

/// Longest string literal compared inline (word loads) rather than by a call.
const INLINE_EQ_MAX: usize = 32;

impl Gen<'_, '_> {
    /// Emits code that jumps to `t` when `c` holds and to `f` otherwise.
    pub(super) fn compare(&mut self, c: &Comparison, t: Block, f: Block) -> Result<(), JitError> {
        let rec = self.rec()?;
        match (&c.subject, &c.test) {
            (Subject::Text(field), test) => {
                let (p_off, len_off) = self.layout.text(*field);
                let p = self.b.ins().load(self.ptr, mem(), rec, p_off as i32);
                let len = self.b.ins().load(self.ptr, mem(), rec, len_off as i32);
                self.text(p, len, test, t, f)?;
            }
            (Subject::Seq, test) => {
                let v = self
                    .b
                    .ins()
                    .load(types::I64, mem(), rec, self.layout.seq as i32);
                self.unsigned(v, test, t, f)?;
            }
            (Subject::Release, test) => {
                let v = self.call("cf_release", &[rec])?;
                let has = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, v, 0);
                let present = self.b.create_block();
                self.branch(has, present, f);
                self.b.switch_to_block(present);
                self.unsigned(v, test, t, f)?;
            }
            (Subject::Stream, Test::Stream { equal, value }) => {
                let s = self
                    .b
                    .ins()
                    .uload8(types::I32, mem(), rec, self.layout.stream as i32);
                let cc = if *equal {
                    IntCC::Equal
                } else {
                    IntCC::NotEqual
                };
                let c = self
                    .b
                    .ins()
                    .icmp_imm_u(cc, s, i64::from(self.layout.stream_code(*value)));
                self.branch(c, t, f);
            }
            (Subject::Json(field), test) => self.json(field.slot, test, t, f)?,
            (Subject::Metric(m), test) => {
                let off = metric_offset(*m) as i32;
                if m.is_count() {
                    let v = self.b.ins().load(types::I64, mem(), rec, off);
                    self.unsigned(v, test, t, f)?;
                } else {
                    let v = self.b.ins().load(types::F64, mem(), rec, off);
                    let Test::Number { op, value } = test else {
                        return Err(ill_typed(c));
                    };
                    self.float(v, *op, *value, t, f);
                }
            }
            _ => return Err(ill_typed(c)),
        }
        Ok(())
    }

    /// Emits code that jumps to `t` when the arithmetic comparison `a`
    /// holds and to `f` otherwise (NaN on either side: `f`).
    pub(super) fn arith(&mut self, a: &Arith, t: Block, f: Block) -> Result<(), JitError> {
        let l = self.num(&a.left)?;
        let r = self.num(&a.right)?;
        let c = self.b.ins().fcmp(float_cc(a.op), l, r);
        self.branch(c, t, f);
        Ok(())
    }

    /// An `F64` holding the value of `n`. Recursion is bounded by the
    /// parser's `MAX_ARITH_DEPTH`.
    fn num(&mut self, n: &Num) -> Result<Value, JitError> {
        Ok(match n {
            Num::Const(x) => self.b.ins().f64const(*x),
            Num::Metric { of, metric } => {
                let base = match of {
                    Which::Own | Which::Canary => self.rec()?,
                    Which::Stable => self.stable()?,
                };
                let off = metric_f64_offset(*metric) as i32;
                self.b.ins().load(types::F64, mem(), base, off)
            }
            Num::Bin(op, l, r) => {
                let l = self.num(l)?;
                let r = self.num(r)?;
                match op {
                    NumOp::Add => self.b.ins().fadd(l, r),
                    NumOp::Sub => self.b.ins().fsub(l, r),
                    NumOp::Mul => self.b.ins().fmul(l, r),
                    NumOp::Div => self.b.ins().fdiv(l, r),
                }
            }
        })
    }

    /// An always-present unsigned integer (`I64`) under `Unsigned` or `Number`.
    fn unsigned(&mut self, v: Value, test: &Test, t: Block, f: Block) -> Result<(), JitError> {
        match test {
            Test::Unsigned { op, value } => {
                let k = self.b.ins().iconst(types::I64, *value as i64);
                let c = self.b.ins().icmp(unsigned_cc(*op), v, k);
                self.branch(c, t, f);
            }
            Test::Number { op, value } => {
                let x = self.b.ins().fcvt_from_uint(types::F64, v);
                self.float(x, *op, *value, t, f);
            }
            _ => {
                return Err(JitError::Codegen(
                    "integer field under a non-numeric test".into(),
                ));
            }
        }
        Ok(())
    }

    /// `x op value`; false when `x` is NaN (every condition code used is ordered).
    fn float(&mut self, x: Value, op: CmpOp, value: f64, t: Block, f: Block) {
        let k = self.b.ins().f64const(value);
        let c = self.b.ins().fcmp(float_cc(op), x, k);
        self.branch(c, t, f);
    }

    fn json(&mut self, slot: usize, test: &Test, t: Block, f: Block) -> Result<(), JitError> {
        let (ctx, rec) = (self.ctx()?, self.rec()?);
        let slot = self.b.ins().iconst(self.ptr, slot as i64);
        match test {
            Test::Text { .. } | Test::Contains(_) | Test::Matches { .. } => {
                let ss = self.b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    8,
                    3,
                ));
                let len_addr = self.b.ins().stack_addr(self.ptr, ss, 0);
                let p = self.call("cf_json_text", &[ctx, rec, slot, len_addr])?;
                let present = self.b.create_block();
                self.branch(p, present, f);
                self.b.switch_to_block(present);
                let len = self.b.ins().load(self.ptr, mem(), len_addr, 0);
                self.text(p, len, test, t, f)?;
            }
            Test::Number { op, value } => {
                let x = self.call("cf_json_number", &[ctx, rec, slot])?;
                self.float(x, *op, *value, t, f);
            }
            Test::Bool { equal, value } => {
                let r = self.call("cf_json_bool", &[ctx, rec, slot])?;
                let want = i64::from(if *equal { *value } else { !*value });
                let c = self.b.ins().icmp_imm_s(IntCC::Equal, r, want);
                self.branch(c, t, f);
            }
            Test::Level { op, value } => {
                let r = self.call("cf_json_level", &[ctx, rec, slot])?;
                let named = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, r, 0);
                let present = self.b.create_block();
                self.branch(named, present, f);
                self.b.switch_to_block(present);
                let c = self.b.ins().icmp_imm_s(signed_cc(*op), r, *value as i64);
                self.branch(c, t, f);
            }
            _ => {
                return Err(JitError::Codegen(
                    "JSON field under a stream or unsigned test".into(),
                ));
            }
        }
        Ok(())
    }

    /// A present text `(p, len)` under a text test.
    fn text(
        &mut self,
        p: Value,
        len: Value,
        test: &Test,
        t: Block,
        f: Block,
    ) -> Result<(), JitError> {
        match test {
            Test::Text {
                op: op @ (CmpOp::Eq | CmpOp::Ne),
                value,
            } => {
                // Equal needs equal lengths; only then are the bytes read.
                let (on_eq, on_ne) = if *op == CmpOp::Eq { (t, f) } else { (f, t) };
                let same_len = self
                    .b
                    .ins()
                    .icmp_imm_u(IntCC::Equal, len, value.len() as i64);
                let bytes = self.b.create_block();
                self.branch(same_len, bytes, on_ne);
                self.b.switch_to_block(bytes);
                let eq = self.bytes_eq(p, value.as_bytes())?;
                self.branch(eq, on_eq, on_ne);
            }
            Test::Text { op, value } => {
                let (lp, ll) = self.literal(value.as_bytes());
                let r = self.call("cf_text_cmp", &[p, len, lp, ll])?;
                let c = self.b.ins().icmp_imm_s(signed_cc(*op), r, 0);
                self.branch(c, t, f);
            }
            Test::Contains(needle) => {
                let (np, nl) = self.literal(needle.as_bytes());
                let r = self.call("cf_contains", &[p, len, np, nl])?;
                self.branch(r, t, f);
            }
            Test::Matches { pattern, negated } => {
                let re = Box::new(pattern.regex.clone());
                let addr = self.b.ins().iconst(self.ptr, &*re as *const Regex as i64);
                self.keep.regexes.push(re);
                let r = self.call("cf_regex_match", &[addr, p, len])?;
                if *negated {
                    self.branch(r, f, t)
                } else {
                    self.branch(r, t, f)
                }
            }
            _ => return Err(JitError::Codegen("text field under a non-text test".into())),
        }
        Ok(())
    }

    /// An `I8` that is 1 when the `lit.len()` bytes at `p` equal `lit`
    /// (the caller has checked the length).
    fn bytes_eq(&mut self, p: Value, lit: &[u8]) -> Result<Value, JitError> {
        if lit.is_empty() {
            return Ok(self.b.ins().iconst(types::I8, 1));
        }
        if lit.len() > INLINE_EQ_MAX {
            let (lp, ll) = self.literal(lit);
            return self.call("cf_bytes_eq", &[p, lp, ll]);
        }
        // Cover the literal with the widest loads that fit, the last one
        // overlapping the one before when the length is not a multiple.
        let n = lit.len();
        let width = [8, 4, 2, 1].into_iter().find(|&w| w <= n).unwrap_or(1);
        let mut offsets: Vec<usize> = (0..n / width).map(|k| k * width).collect();
        if !n.is_multiple_of(width) {
            offsets.push(n - width);
        }
        let ty = match width {
            8 => types::I64,
            4 => types::I32,
            2 => types::I16,
            _ => types::I8,
        };
        let mut acc: Option<Value> = None;
        for off in offsets {
            let mut word = [0u8; 8];
            word[..width].copy_from_slice(&lit[off..off + width]);
            let expected = u64::from_ne_bytes(word) as i64;
            let got = self.b.ins().load(ty, mem(), p, off as i32);
            let c = self.b.ins().icmp_imm_u(IntCC::Equal, got, expected);
            acc = Some(match acc {
                Some(a) => self.b.ins().band(a, c),
                None => c,
            });
        }
        acc.ok_or_else(|| JitError::Codegen("empty inline compare".into()))
    }

    /// A literal the code points at: its address and length.
    fn literal(&mut self, bytes: &[u8]) -> (Value, Value) {
        let owned: Box<[u8]> = bytes.into();
        let addr = self.b.ins().iconst(self.ptr, owned.as_ptr() as i64);
        let len = self.b.ins().iconst(self.ptr, owned.len() as i64);
        self.keep.bytes.push(owned);
        (addr, len)
    }
}

fn ill_typed(c: &Comparison) -> JitError {
    JitError::Codegen(format!(
        "comparison {:?} under {:?} is not in the typing table",
        c.subject, c.test
    ))
}

fn metric_offset(m: Metric) -> usize {
    match m {
        Metric::Requests => offset_of!(MetricsRef, requests),
        Metric::Errors => offset_of!(MetricsRef, errors),
        Metric::Restarts => offset_of!(MetricsRef, restarts),
        Metric::ErrorRate => offset_of!(MetricsRef, error_rate),
        Metric::P50Ms => offset_of!(MetricsRef, p50_ms),
        Metric::P99Ms => offset_of!(MetricsRef, p99_ms),
    }
}

/// Where arithmetic finds a metric as `f64` (NaN when missing).
fn metric_f64_offset(m: Metric) -> usize {
    match m {
        Metric::Requests => offset_of!(MetricsRef, requests_f64),
        Metric::Errors => offset_of!(MetricsRef, errors_f64),
        Metric::Restarts => offset_of!(MetricsRef, restarts_f64),
        Metric::ErrorRate => offset_of!(MetricsRef, error_rate),
        Metric::P50Ms => offset_of!(MetricsRef, p50_ms),
        Metric::P99Ms => offset_of!(MetricsRef, p99_ms),
    }
}

fn unsigned_cc(op: CmpOp) -> IntCC {
    match op {
        CmpOp::Eq => IntCC::Equal,
        CmpOp::Ne => IntCC::NotEqual,
        CmpOp::Lt => IntCC::UnsignedLessThan,
        CmpOp::Le => IntCC::UnsignedLessThanOrEqual,
        CmpOp::Gt => IntCC::UnsignedGreaterThan,
        CmpOp::Ge => IntCC::UnsignedGreaterThanOrEqual,
    }
}

fn signed_cc(op: CmpOp) -> IntCC {
    match op {
        CmpOp::Eq => IntCC::Equal,
        CmpOp::Ne => IntCC::NotEqual,
        CmpOp::Lt => IntCC::SignedLessThan,
        CmpOp::Le => IntCC::SignedLessThanOrEqual,
        CmpOp::Gt => IntCC::SignedGreaterThan,
        CmpOp::Ge => IntCC::SignedGreaterThanOrEqual,
    }
}

/// Ordered condition codes: each is false when either side is NaN, which is
/// how a metric with no data (NaN) or a missing JSON number fails every
/// comparison, `!=` included.
fn float_cc(op: CmpOp) -> FloatCC {
    match op {
        CmpOp::Eq => FloatCC::Equal,
        CmpOp::Ne => FloatCC::OrderedNotEqual,
        CmpOp::Lt => FloatCC::LessThan,
        CmpOp::Le => FloatCC::LessThanOrEqual,
        CmpOp::Gt => FloatCC::GreaterThan,
        CmpOp::Ge => FloatCC::GreaterThanOrEqual,
    }
}
