//! The one wasmtime configuration every host uses, and ahead-of-time compilation.
//!
//! `hostd precompile --target T` and a daemon on a machine of arch T must
//! build byte-identical engine settings, or the daemon would refuse the
//! `.cwasm` (wasmtime checks triple, ISA flags and tunables on load). So both
//! come from [`config`], and the cache key includes the engine's
//! compatibility hash: a change of wasmtime version, setting or CPU makes a
//! new key instead of loading stale code.

use std::hash::{Hash, Hasher};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// The targets `hostd precompile` can compile for, from either machine.
pub const TARGETS: &[&str] = &["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"];

/// The target triple of this machine, if it is one hostd supports.
pub fn host_target() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some(TARGETS[0]),
        "aarch64" => Some(TARGETS[1]),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "unsupported target {0:?}: hostd compiles for x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu"
    )]
    UnsupportedTarget(String),
    #[error("could not configure the Cranelift engine: {0}")]
    Config(String),
}

/// Instances a host can run at once unless told (`--max-instances`).
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;

/// How the runtime allocates instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots for this many instances at once: instantiation in
    /// microseconds, what http apps need.
    Pooling(u32),
    /// mmap per instance; for compile-only engines and as a fallback.
    OnDemand,
}

/// The settings of every engine, for `target` (None: this machine).
///
/// Epoch interruption is how instances are stopped and deadlines enforced;
/// it changes generated code, so it must be on for precompiled code too.
pub fn config(target: Option<&str>, allocation: Allocation) -> Result<Config, EngineError> {
    let mut c = Config::new();
    c.epoch_interruption(true);
    c.wasm_component_model(true);
    c.cranelift_opt_level(OptLevel::Speed);
    c.parallel_compilation(true);
    // Funcref tables filled at instantiation: no lazy-init check on every
    // indirect call (CPython in a component makes a great many), for a
    // little more work per fresh instance (measured: `-- ingress`).
    c.table_lazy_init(false);
    if let Some(t) = target {
        if !TARGETS.contains(&t) {
            return Err(EngineError::UnsupportedTarget(t.to_string()));
        }
        c.target(t)
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;
    }
    if let Allocation::Pooling(instances) = allocation {
        // A component is a few core instances, each with up to two
        // memories and tables: two of each per instance, as before.
        let n = instances.max(4);
        let mut p = PoolingAllocationConfig::default();
        p.max_memories_per_module(2)
            .max_tables_per_module(2)
            .table_elements(schema::manifest::MAX_TABLE_ELEMENTS as usize)
            .total_memories(2 * n)
            .total_tables(2 * n)
            .total_stacks(n)
            .total_core_instances(2 * n)
            .total_component_instances(n)
            .max_core_instance_size(4 << 20)
            .max_component_instance_size(4 << 20)
            // http apps make an instance per request: resetting the first
            // pages of a slot with memset is cheaper than madvise, page
            // faults and TLB shootdowns on every request.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(128 << 10)
            // Where the kernel can say which pages an instance touched
            // (PAGEMAP_SCAN, Linux 6.7+), only those are reset: a message
            // handler or a request touching a few pages costs a few pages.
            .pagemap_scan(wasmtime::Enabled::Auto)
            // Slots given back are decommitted several at a time: fewer
            // lock round trips on the hot path of an instance per message.
            .decommit_batch_size(16);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Ok(c)
}

/// Keeps compiles off one core: Cranelift compiles a module's functions in
/// parallel on rayon's pool, which a daemon sizes to all cores but one, so
/// an upload being compiled never starves the apps, the ingress and the
/// control socket. Called once, before the first compile.
pub fn leave_a_core_for_the_daemon() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.saturating_sub(1).max(1);
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("compile-{i}"))
        .build_global();
    if built.is_ok() {
        tracing::debug!(threads, cores, "compile threads");
    }
}

/// Gives the memory a compile used back to the system (glibc keeps freed
/// arenas otherwise: a big compile left hostd a gigabyte larger).
pub fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's
    // arenas; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// An engine for running code on this machine.
///
/// Pooling needs a large virtual reservation; where the system refuses it
/// (a tight `ulimit -v`), we fall back to on-demand allocation and say so.
pub fn runtime_engine(instances: u32) -> Result<Engine, EngineError> {
    match Engine::new(&config(None, Allocation::Pooling(instances))?) {
        Ok(e) => Ok(e),
        Err(e) => {
            tracing::warn!(error = %e, "pooling allocator unavailable; instances will be allocated on demand");
            Engine::new(&config(None, Allocation::OnDemand)?)
                .map_err(|e| EngineError::Config(format!("{e:#}")))
        }
    }
}

/// An engine that only compiles, for `target`.
pub fn compile_engine(target: &str) -> Result<Engine, EngineError> {
    Engine::new(&config(Some(target), Allocation::OnDemand)?)
        .map_err(|e| EngineError::Config(format!("{e:#}")))
}

/// The engine's compatibility hash as hex: part of every cache key.
pub fn compat_hash(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0 // unused: we take the full digest below
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..16])
}

pub use schema::artifact::digest;

pub use schema::artifact::{ArtifactError, Form, classify};

/// The result of compiling an artifact ahead of time.
pub struct Precompiled {
    pub form: Form,
    pub cwasm: Vec<u8>,
    pub compile_ms: u64,
}

/// Compiles `bytes` with Cranelift for `engine`'s target.
pub fn precompile(engine: &Engine, bytes: &[u8]) -> Result<Precompiled, ArtifactError> {
    let form = classify(bytes)?;
    let start = Instant::now();
    let out = match form {
        Form::Module => engine.precompile_module(bytes),
        Form::Component => engine.precompile_component(bytes),
    }
    .map_err(|e| ArtifactError::Invalid(format!("{e:#}")))?;
    Ok(Precompiled {
        form,
        cwasm: out,
        compile_ms: start.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_compiled_code_is_refused_by_this_machine() {
        let wat = "(module (func (export \"_start\")))";
        let bytes = wat::parse_str(wat).unwrap();
        let here = host_target().unwrap();
        let other = TARGETS.iter().find(|t| **t != here).unwrap();
        let foreign = precompile(&compile_engine(other).unwrap(), &bytes).unwrap();
        let engine = runtime_engine(DEFAULT_MAX_INSTANCES).unwrap();
        // Safety: the bytes come from wasmtime's own precompile above; the
        // point of the test is that a foreign target is rejected, not loaded.
        let err = unsafe { wasmtime::Module::deserialize(&engine, &foreign.cwasm) }.unwrap_err();
        assert!(
            format!("{err:#}").contains("compiled for architecture"),
            "{err:#}"
        );
        assert_ne!(
            compat_hash(&engine),
            compat_hash(&compile_engine(other).unwrap())
        );
    }
}
