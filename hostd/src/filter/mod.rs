//! Log filters and health rules compiled to native code with cranelift-jit.
//!
//! hostd applies `logs --where` filters where records are made, so only
//! matching lines cross the tunnel; at that rate a tree-walking interpreter
//! is the bottleneck. This module compiles the typed expression of
//! [`schema::expr`] (the language, its semantics and the reference
//! interpreter live there) to one native function per filter that runs the
//! whole batch loop, and one per health rule.
//!
//! # API
//!
//! ```no_run
//! use hostd::filter::{CompiledFilter, CompiledRule};
//! use schema::expr::{parse_filter, parse_rule, Metrics};
//! # fn demo(records: &[schema::LogRecord], m: &Metrics) -> anyhow::Result<()> {
//! let filter = CompiledFilter::compile(&parse_filter("status >= 500 && level >= warn")?)?;
//! let mut keep = Vec::new();
//! filter.matches_batch(records, &mut keep);           // keep[i]: records[i] matches
//! let rule = CompiledRule::compile(&parse_rule("error_rate > 0.05 || p99_ms > 500")?)?;
//! if rule.eval(m) {
//!     let why = rule.explain(m);                      // "error_rate=0.12 > 0.05"
//! }
//! # Ok(()) }
//! ```
//!
//! - [`CompiledFilter::compile`]`(&Filter)`, then [`CompiledFilter::matches`]
//!   (one record), [`CompiledFilter::matches_batch`] (a slice, into a
//!   `Vec<bool>`), [`CompiledFilter::matches_into`] (into a `&mut [bool]`),
//!   [`CompiledFilter::retain`] (drop the others). Records are read in place;
//!   nothing is copied per record.
//! - [`CompiledRule::compile`]`(&Rule)`, then [`CompiledRule::eval`] and
//!   [`CompiledRule::explain`]; for a gate rule (`Rule::is_gate`),
//!   [`CompiledRule::eval_gate`]`(&canary, &stable)` and
//!   [`CompiledRule::explain_gate`].
//! - [`compile_filter`] / [`compile_rule`] parse and compile in one step.
//! - [`Matcher::new`]`(Filter)`: compiled when possible, the interpreter
//!   otherwise (on a [`JitError`], logged once) — what a caller usually wants.
//!
//! All are `Send + Sync`: one compiled filter can serve every task that
//! tails an app. Their code is freed when they are dropped.
//!
//! # Integrating
//!
//! - A filter travels as its source text (`Filter` serializes as a string
//!   and deserializing re-checks it); each host parses it again and
//!   compiles it once per `logs --where` stream (150-250 µs), then drops it
//!   when the stream ends.
//! - Health rules: `Rule::metrics()` says which metrics a rule reads;
//!   evaluate with [`CompiledRule::eval`] each tick; when it trips,
//!   `explain(&m).to_string()` is the audit detail
//!   (`error_rate=0.12 > 0.05`). A gate rule (`Rule::is_gate()`, e.g.
//!   `schema::expr::DEFAULT_GATE`) judges a canary against the stable
//!   release: [`CompiledRule::eval_gate`]`(&canary, &stable)` and
//!   `explain_gate(..)`; under plain `eval`, `stable.` metrics are missing.
//! - Semantics (missing fields never match, levels by severity, durations in
//!   ms) are documented in [`schema::expr`].
//!
//! # Agreement with the interpreter
//!
//! The compiled code must agree with `Filter::matches` / `Rule::eval` on
//! every input; `tests/filter_diff.rs` checks that on thousands of generated
//! expressions and records. Where it would be easy to differ, the code calls
//! the same Rust the interpreter does: `regex::Regex::is_match`,
//! `str::contains`, byte-wise `Ord` of `[u8]`, `Level::from_name`; JSON
//! lines are scanned by `json/`, which follows serde_json's rules and is
//! tested against it.

mod codegen;
mod json;
mod layout;
mod runtime;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::sync::Mutex;

use cranelift_jit::JITModule;
use schema::LogRecord;
use schema::expr::{Explanation, ExprError, Filter, Metrics, Rule};

use codegen::{Keep, Shape};
use json::Slot;
use layout::MetricsRef;
use runtime::EvalCtx;

/// Why an expression could not be compiled to native code. The expression
/// itself was valid (it parsed); the interpreter (`Filter::matches`,
/// `Rule::eval`) can still evaluate it, at lower speed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JitError {
    /// The CPU, or the memory layout of this build, is not one compiled code
    /// can handle.
    #[error(
        "the filter compiler does not support this host ({0}); evaluate with the interpreter (Filter::matches) instead"
    )]
    Unsupported(String),
    #[error(
        "compiling the expression to native code failed ({0}); this is a bug in hostd's filter compiler — \
         evaluate with the interpreter (Filter::matches) meanwhile and report the expression"
    )]
    Codegen(String),
}

/// Why [`compile_filter`] or [`compile_rule`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompileError {
    /// The expression is invalid; `Display` carries the caret diagram.
    #[error("{0}")]
    Expr(#[from] ExprError),
    #[error(transparent)]
    Jit(#[from] JitError),
}

/// Parses and compiles a log filter.
pub fn compile_filter(src: &str) -> Result<CompiledFilter, CompileError> {
    Ok(CompiledFilter::compile(&Filter::parse(src)?)?)
}

/// Parses and compiles a health rule.
pub fn compile_rule(src: &str) -> Result<CompiledRule, CompileError> {
    Ok(CompiledRule::compile(&Rule::parse(src)?)?)
}

/// Native code and what it points at. Dropping it frees the code.
struct Code {
    /// Behind a mutex only so that `Code` is `Sync` (the module holds a
    /// `RefCell`); it is never locked while code runs, only taken in `drop`.
    module: Mutex<Option<JITModule>>,
    /// Regexes and literals the code holds addresses of.
    _keep: Keep,
}

impl Code {
    fn compile(expr: &schema::expr::Expr, shape: Shape) -> Result<(Code, *const u8), JitError> {
        let mut keep = Keep::default();
        let (module, addr) = codegen::compile(expr, shape, &mut keep)?;
        Ok((
            Code {
                module: Mutex::new(Some(module)),
                _keep: keep,
            },
            addr,
        ))
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        let module = self
            .module
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(module) = module {
            // SAFETY: the function pointer into this module lives only in the
            // `CompiledFilter`/`CompiledRule` being dropped, so nothing can
            // call it any more, and no call is running (it would hold a
            // borrow of the owner).
            unsafe { module.free_memory() };
        }
    }
}

type FilterFn = unsafe extern "C" fn(*mut EvalCtx<'_>, *const LogRecord, usize, *mut u8);
type RuleFn = unsafe extern "C" fn(*const MetricsRef, *const MetricsRef) -> u8;

/// A log filter compiled to native code.
pub struct CompiledFilter {
    filter: Filter,
    func: FilterFn,
    _code: Code,
}

thread_local! {
    /// JSON slots reused across calls on one thread (their string buffers
    /// keep their capacity), so filtering allocates nothing once warm.
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

impl CompiledFilter {
    /// Compiles `filter` (its regexes were compiled when it was parsed).
    /// Takes about 150-250 µs; see `benches/filter.rs`.
    pub fn compile(filter: &Filter) -> Result<CompiledFilter, JitError> {
        let (code, addr) = Code::compile(filter.expr(), Shape::Filter)?;
        // SAFETY: `codegen::compile` with `Shape::Filter` builds a function of
        // exactly this signature (four pointer-sized parameters, no result,
        // the platform's C calling convention), which lives as long as `code`.
        let func = unsafe { std::mem::transmute::<*const u8, FilterFn>(addr) };
        Ok(CompiledFilter {
            filter: filter.clone(),
            func,
            _code: code,
        })
    }

    /// The filter this was compiled from.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Whether one record matches.
    pub fn matches(&self, rec: &LogRecord) -> bool {
        let mut out = [false];
        self.matches_into(std::slice::from_ref(rec), &mut out);
        out[0]
    }

    /// Sets `out` to one flag per record: `out[i]` is whether `records[i]`
    /// matches. `out` is cleared first.
    pub fn matches_batch(&self, records: &[LogRecord], out: &mut Vec<bool>) {
        out.clear();
        out.resize(records.len(), false);
        self.matches_into(records, out);
    }

    /// Like [`matches_batch`](Self::matches_batch), into a slice.
    ///
    /// # Panics
    /// If `out.len() != records.len()`.
    pub fn matches_into(&self, records: &[LogRecord], out: &mut [bool]) {
        assert_eq!(
            records.len(),
            out.len(),
            "matches_into needs one output flag per record"
        );
        if self.filter.json_fields().is_empty() {
            self.run(records, out, &mut Vec::new());
            return;
        }
        SLOTS.with(|slots| match slots.try_borrow_mut() {
            Ok(mut slots) => self.run(records, out, &mut slots),
            Err(_) => self.run(records, out, &mut Vec::new()),
        });
    }

    /// Keeps only the matching records, in order.
    pub fn retain(&self, records: &mut Vec<LogRecord>) {
        let mut keep = Vec::new();
        self.matches_batch(records, &mut keep);
        let mut flags = keep.into_iter();
        records.retain(|_| flags.next().unwrap_or(false));
    }

    fn run(&self, records: &[LogRecord], out: &mut [bool], slots: &mut Vec<Slot>) {
        debug_assert_eq!(records.len(), out.len());
        let names = self.filter.json_fields();
        if slots.len() < names.len() {
            slots.resize_with(names.len(), Slot::default);
        }
        let mut ctx = EvalCtx::new(names, &mut slots[..names.len()]);
        // SAFETY: `func` is this filter's code (alive while `self` is). It
        // reads `records.len()` records in place at the offsets `layout.rs`
        // measured for this build, through the shared borrow `records`;
        // writes `out.len() == records.len()` bytes of 0 or 1, valid `bool`s;
        // and passes `ctx`, live for the call and used by no one else
        // meanwhile, to the helpers, with slot numbers below `names.len()`
        // (they come from this filter).
        unsafe {
            (self.func)(
                &mut ctx,
                records.as_ptr(),
                records.len(),
                out.as_mut_ptr().cast::<u8>(),
            )
        };
    }
}

impl std::fmt::Debug for CompiledFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledFilter")
            .field("source", &self.filter.source())
            .finish()
    }
}

/// A log filter evaluated by compiled code when this host supports it, by
/// the interpreter otherwise. Both give the same answers; only speed differs.
#[derive(Debug)]
pub enum Matcher {
    Compiled(CompiledFilter),
    Interpreted(Filter),
}

impl Matcher {
    /// Compiles `filter`, falling back to the interpreter (with a warning in
    /// the log) if the compiler refuses.
    pub fn new(filter: Filter) -> Matcher {
        match CompiledFilter::compile(&filter) {
            Ok(c) => Matcher::Compiled(c),
            Err(e) => {
                tracing::warn!(filter = filter.source(), error = %e, "filter runs interpreted");
                Matcher::Interpreted(filter)
            }
        }
    }

    pub fn filter(&self) -> &Filter {
        match self {
            Matcher::Compiled(c) => c.filter(),
            Matcher::Interpreted(f) => f,
        }
    }

    pub fn matches(&self, rec: &LogRecord) -> bool {
        match self {
            Matcher::Compiled(c) => c.matches(rec),
            Matcher::Interpreted(f) => f.matches(rec),
        }
    }

    /// See [`CompiledFilter::matches_batch`].
    pub fn matches_batch(&self, records: &[LogRecord], out: &mut Vec<bool>) {
        match self {
            Matcher::Compiled(c) => c.matches_batch(records, out),
            Matcher::Interpreted(f) => {
                out.clear();
                out.extend(records.iter().map(|r| f.matches(r)));
            }
        }
    }

    /// Keeps only the matching records, in order.
    pub fn retain(&self, records: &mut Vec<LogRecord>) {
        match self {
            Matcher::Compiled(c) => c.retain(records),
            Matcher::Interpreted(f) => records.retain(|r| f.matches(r)),
        }
    }
}

/// A health rule compiled to native code.
pub struct CompiledRule {
    rule: Rule,
    func: RuleFn,
    _code: Code,
}

impl CompiledRule {
    pub fn compile(rule: &Rule) -> Result<CompiledRule, JitError> {
        let (code, addr) = Code::compile(rule.expr(), Shape::Rule)?;
        // SAFETY: `Shape::Rule` builds `fn(*const MetricsRef, *const
        // MetricsRef) -> u8` in the platform's C calling convention, alive as
        // long as `code`.
        let func = unsafe { std::mem::transmute::<*const u8, RuleFn>(addr) };
        Ok(CompiledRule {
            rule: rule.clone(),
            func,
            _code: code,
        })
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// Whether the rule holds (the release is unhealthy). As
    /// [`Rule::eval`]: `stable.` metrics are missing.
    pub fn eval(&self, m: &Metrics) -> bool {
        self.run(&MetricsRef::new(m), &MetricsRef::missing())
    }

    /// Whether a gate rule holds (the canary is unhealthy), as
    /// [`Rule::eval_gate`]: unprefixed and `canary.` metrics read `canary`,
    /// `stable.` metrics read `stable`.
    pub fn eval_gate(&self, canary: &Metrics, stable: &Metrics) -> bool {
        self.run(&MetricsRef::new(canary), &MetricsRef::new(stable))
    }

    fn run(&self, canary: &MetricsRef, stable: &MetricsRef) -> bool {
        // SAFETY: `func` is this rule's code, reading only the two
        // `MetricsRef`s it is given, which the caller's borrows keep alive
        // for the call.
        unsafe { (self.func)(canary, stable) != 0 }
    }

    /// The values the rule read and which comparisons held, for the audit
    /// entry of a rollback ("error_rate=0.12 > 0.05"). Computed by the
    /// interpreter: it runs once per trip, not per record.
    pub fn explain(&self, m: &Metrics) -> Explanation {
        self.rule.explain(m)
    }

    /// [`explain`](Self::explain) for a gate
    /// ("canary.error_rate=0.3 > 2 * stable.error_rate=0.01"), by the
    /// interpreter.
    pub fn explain_gate(&self, canary: &Metrics, stable: &Metrics) -> Explanation {
        self.rule.explain_gate(canary, stable)
    }
}

impl std::fmt::Debug for CompiledRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRule")
            .field("source", &self.rule.source())
            .finish()
    }
}
