//! A typed [`Expr`] to native code with cranelift.
//!
//! A filter becomes one function that runs the batch loop itself:
//!
//! ```text
//! fn(ctx: *mut EvalCtx, records: *const LogRecord, n: usize, out: *mut u8)
//!     for i in 0..n { out[i] = expr(&records[i]) }
//! ```
//!
//! and a rule `fn(metrics: *const MetricsRef) -> u8`. Expressions compile to
//! branches (`&&`/`||` short-circuit exactly as the interpreter does, so a JSON
//! line is only parsed when a JSON field is reached). Record fields are loaded
//! inline, in place (see `layout.rs`); equality with a short string literal is a length check and a few
//! word compares; everything else (ordering of text, `contains`, regex, JSON
//! lookups) calls a helper of `runtime.rs`.

use std::collections::HashMap;
use std::mem::offset_of;
use std::sync::OnceLock;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, Block, FuncRef, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind,
    Type, UserFuncName, Value, types,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};
use regex::Regex;
use schema::expr::{CmpOp, Comparison, Expr, Metric, Subject, Test};

use super::JitError;
use super::layout::{Layout, MetricsRef};
use super::runtime::{self, Ty};

/// Longest string literal compared inline (word loads) rather than by a call.
const INLINE_EQ_MAX: usize = 32;

/// Data the compiled code points at; must live as long as the code.
#[derive(Default)]
pub(crate) struct Keep {
    /// Boxed: the code holds each `Regex`'s own address, which must not move
    /// when this `Vec` grows.
    #[allow(clippy::vec_box)]
    regexes: Vec<Box<Regex>>,
    bytes: Vec<Box<[u8]>>,
}

/// What is being compiled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `fn(ctx, records, n, out)` over `LogRecord`s.
    Filter,
    /// `fn(metrics) -> u8` over a `MetricsRef`.
    Rule,
}

/// The host's ISA, built once: probing the CPU and building flags costs more
/// than compiling a small filter.
fn isa() -> Result<OwnedTargetIsa, JitError> {
    static ISA: OnceLock<Result<OwnedTargetIsa, String>> = OnceLock::new();
    ISA.get_or_init(|| {
        let mut flags = settings::builder();
        let set = |flags: &mut settings::Builder, k: &str, v: &str| {
            flags.set(k, v).map_err(|e| format!("{k}={v}: {e}"))
        };
        // JIT code and helpers may be far apart: no colocated calls, no PIC.
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "is_pic", "false")?;
        set(&mut flags, "opt_level", "speed")?;
        set(
            &mut flags,
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        )?;
        let isa = cranelift_native::builder().map_err(|e| e.to_string())?;
        isa.finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(JitError::Unsupported)
}

/// Compiles `expr`; returns the module owning the code, and the code's
/// address. `keep` receives the data the code points at.
pub(crate) fn compile(
    expr: &Expr,
    shape: Shape,
    keep: &mut Keep,
) -> Result<(JITModule, *const u8), JitError> {
    let codegen = |e: &dyn std::fmt::Display| JitError::Codegen(e.to_string());
    let layout = Layout::get().map_err(JitError::Unsupported)?;
    let mut jb = JITBuilder::with_isa(isa()?, cranelift_module::default_libcall_names());
    for h in runtime::helpers() {
        jb.symbol(h.name, h.addr);
    }
    let mut module = JITModule::new(jb);
    let ptr = module.target_config().pointer_type();

    let mut sig = module.make_signature();
    match shape {
        Shape::Filter => sig.params.extend([AbiParam::new(ptr); 4]),
        Shape::Rule => {
            sig.params.push(AbiParam::new(ptr));
            sig.returns.push(AbiParam::new(types::I8));
        }
    }
    let id = module
        .declare_function("expr", Linkage::Export, &sig)
        .map_err(|e| codegen(&e))?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let mut fctx = FunctionBuilderContext::new();
    {
        let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let mut g = Gen {
            b,
            module: &mut module,
            layout,
            ptr,
            ctx: None,
            rec: None,
            keep,
            funcs: HashMap::new(),
        };
        match shape {
            Shape::Filter => g.filter_body(expr)?,
            Shape::Rule => g.rule_body(expr)?,
        }
        let config = g.module.target_config();
        g.b.seal_all_blocks();
        g.b.finalize(config);
    }
    module
        .define_function(id, &mut ctx)
        .map_err(|e| codegen(&format!("{e:?}")))?;
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(|e| codegen(&e))?;
    let code = module.get_finalized_function(id);
    Ok((module, code))
}

struct Gen<'a, 'b> {
    b: FunctionBuilder<'b>,
    module: &'a mut JITModule,
    layout: Layout,
    ptr: Type,
    /// `*mut EvalCtx` (filters only).
    ctx: Option<Value>,
    /// The current `*const LogRecord` or `*const MetricsRef`.
    rec: Option<Value>,
    keep: &'a mut Keep,
    funcs: HashMap<&'static str, FuncRef>,
}

/// Loads from records and literals: the pointers are valid (records are
/// borrowed for the call), alignment is not promised for string bytes.
fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl Gen<'_, '_> {
    fn filter_body(&mut self, expr: &Expr) -> Result<(), JitError> {
        let entry = self.b.create_block();
        let head = self.b.create_block();
        let body = self.b.create_block();
        let yes = self.b.create_block();
        let no = self.b.create_block();
        let next = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(head, self.ptr);
        let result = self.b.append_block_param(next, types::I8);

        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let &[ctx, recs, n, out] = self.b.block_params(entry) else {
            return Err(JitError::Codegen(
                "filter signature has four parameters".into(),
            ));
        };
        self.ctx = Some(ctx);
        let zero = self.b.ins().iconst(self.ptr, 0);
        self.b.ins().jump(head, &[zero.into()]);

        self.b.switch_to_block(head);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, n);
        self.b.ins().brif(more, body, &[], exit, &[]);

        self.b.switch_to_block(body);
        let offset = self.b.ins().imul_imm_u(i, self.layout.stride as i64);
        self.rec = Some(self.b.ins().iadd(recs, offset));
        self.cond(expr, yes, no)?;

        for (block, value) in [(yes, 1), (no, 0)] {
            self.b.switch_to_block(block);
            let v = self.b.ins().iconst(types::I8, value);
            self.b.ins().jump(next, &[v.into()]);
        }

        self.b.switch_to_block(next);
        let slot = self.b.ins().iadd(out, i);
        self.b.ins().store(mem(), result, slot, 0);
        let i1 = self.b.ins().iadd_imm_u(i, 1);
        self.b.ins().jump(head, &[i1.into()]);

        self.b.switch_to_block(exit);
        self.b.ins().return_(&[]);
        Ok(())
    }

    fn rule_body(&mut self, expr: &Expr) -> Result<(), JitError> {
        let entry = self.b.create_block();
        let yes = self.b.create_block();
        let no = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        self.rec = Some(self.b.block_params(entry)[0]);
        self.cond(expr, yes, no)?;
        for (block, value) in [(yes, 1), (no, 0)] {
            self.b.switch_to_block(block);
            let v = self.b.ins().iconst(types::I8, value);
            self.b.ins().return_(&[v]);
        }
        Ok(())
    }

    /// Emits code that jumps to `t` when `expr` holds and to `f` otherwise;
    /// always terminates the current block.
    fn cond(&mut self, expr: &Expr, t: Block, f: Block) -> Result<(), JitError> {
        match expr {
            Expr::Const(true) => {
                self.b.ins().jump(t, &[]);
            }
            Expr::Const(false) => {
                self.b.ins().jump(f, &[]);
            }
            Expr::Not(e) => self.cond(e, f, t)?,
            Expr::And(es) | Expr::Or(es) => {
                let and = matches!(expr, Expr::And(_));
                let Some((last, init)) = es.split_last() else {
                    self.b.ins().jump(if and { t } else { f }, &[]);
                    return Ok(());
                };
                for e in init {
                    let rest = self.b.create_block();
                    if and {
                        self.cond(e, rest, f)?
                    } else {
                        self.cond(e, t, rest)?
                    }
                    self.b.switch_to_block(rest);
                }
                self.cond(last, t, f)?;
            }
            Expr::Compare(c) => self.compare(c, t, f)?,
        }
        Ok(())
    }

    fn rec(&self) -> Result<Value, JitError> {
        self.rec
            .ok_or_else(|| JitError::Codegen("no record pointer in scope".into()))
    }

    fn ctx(&self) -> Result<Value, JitError> {
        self.ctx
            .ok_or_else(|| JitError::Codegen("a rule cannot read log fields".into()))
    }

    fn branch(&mut self, c: Value, t: Block, f: Block) {
        self.b.ins().brif(c, t, &[], f, &[]);
    }

    fn compare(&mut self, c: &Comparison, t: Block, f: Block) -> Result<(), JitError> {
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

    /// Calls the helper `name` of `runtime.rs`, importing it on first use.
    fn call(&mut self, name: &'static str, args: &[Value]) -> Result<Value, JitError> {
        let fref = match self.funcs.get(name) {
            Some(f) => *f,
            None => {
                let helper = runtime::helpers()
                    .into_iter()
                    .find(|h| h.name == name)
                    .ok_or_else(|| JitError::Codegen(format!("no helper named {name}")))?;
                let mut sig: Signature = self.module.make_signature();
                sig.params
                    .extend(helper.params.iter().map(|&ty| AbiParam::new(self.ty(ty))));
                sig.returns.push(AbiParam::new(self.ty(helper.ret)));
                let id = self
                    .module
                    .declare_function(name, Linkage::Import, &sig)
                    .map_err(|e| JitError::Codegen(e.to_string()))?;
                let fref = self.module.declare_func_in_func(id, self.b.func);
                self.funcs.insert(name, fref);
                fref
            }
        };
        let inst = self.b.ins().call(fref, args);
        Ok(self.b.inst_results(inst)[0])
    }

    fn ty(&self, ty: Ty) -> Type {
        match ty {
            Ty::Ptr => self.ptr,
            Ty::I64 => types::I64,
            Ty::I32 => types::I32,
            Ty::I8 => types::I8,
            Ty::F64 => types::F64,
        }
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
