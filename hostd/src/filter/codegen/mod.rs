//! A typed [`Expr`] to native code with cranelift.
//!
//! A filter becomes one function that runs the batch loop itself:
//!
//! ```text
//! fn(ctx: *mut EvalCtx, records: *const LogRecord, n: usize, out: *mut u8)
//!     for i in 0..n { out[i] = expr(&records[i]) }
//! ```
//!
//! and a rule `fn(canary: *const MetricsRef, stable: *const MetricsRef) -> u8`
//! (a plain rule reads the first; unprefixed and `canary.` metrics read the
//! first, `stable.` ones the second). Expressions compile to
//! branches (`&&`/`||` short-circuit exactly as the interpreter does, so a JSON
//! line is only parsed when a JSON field is reached). Record fields are loaded
//! inline, in place (see `layout.rs`); equality with a short string literal is a length check and a few
//! word compares; everything else (ordering of text, `contains`, regex, JSON
//! lookups) calls a helper of `runtime.rs`. Arithmetic of health rules is
//! inline `f64` code (`fadd`, `fsub`, `fmul`, `fdiv`, then an ordered
//! `fcmp`, false on NaN).
//!
//! This file builds the function (the batch loop of a filter, the body of
//! a rule) and the control flow of `&&`, `||` and `!`; `compare.rs` emits
//! each comparison.

mod compare;

use std::collections::HashMap;
use std::sync::OnceLock;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, Block, FuncRef, InstBuilder, MemFlagsData, Signature, Type, UserFuncName, Value,
    types,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};
use regex::Regex;
use schema::expr::Expr;

use super::JitError;
use super::layout::Layout;
use super::runtime::{self, Ty};

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
    /// `fn(canary, stable) -> u8` over two `MetricsRef`s.
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
            sig.params.extend([AbiParam::new(ptr); 2]);
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
            stable: None,
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
    /// The current `*const LogRecord` or (rules) the `*const MetricsRef` of
    /// the release judged.
    rec: Option<Value>,
    /// `*const MetricsRef` of the stable release (rules only).
    stable: Option<Value>,
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
        let &[canary, stable] = self.b.block_params(entry) else {
            return Err(JitError::Codegen(
                "rule signature has two parameters".into(),
            ));
        };
        self.rec = Some(canary);
        self.stable = Some(stable);
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
            Expr::Arith(a) => self.arith(a, t, f)?,
        }
        Ok(())
    }

    fn rec(&self) -> Result<Value, JitError> {
        self.rec
            .ok_or_else(|| JitError::Codegen("no record pointer in scope".into()))
    }

    fn stable(&self) -> Result<Value, JitError> {
        self.stable
            .ok_or_else(|| JitError::Codegen("a filter cannot read metrics".into()))
    }

    fn ctx(&self) -> Result<Value, JitError> {
        self.ctx
            .ok_or_else(|| JitError::Codegen("a rule cannot read log fields".into()))
    }

    fn branch(&mut self, c: Value, t: Block, f: Block) {
        self.b.ins().brif(c, t, &[], f, &[]);
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
