//! What each instance's `Store` holds: its WASI context and its limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::caps::{Capabilities, Outbound};
use crate::kv::{KvCtx, KvView};

/// Memory and table caps of one instance, and its memory in use.
pub struct Limits {
    memory_cap: usize,
    /// Linear memory of all the instance's memories, for `hosts` and `ps`.
    pub memory_used: Arc<AtomicU64>,
    /// Set when a grow was refused, so the exit can say why.
    pub memory_denied: bool,
}

/// Most table elements an instance may grow to.
const TABLE_CAP: usize = 1 << 20;

impl Limits {
    pub fn new(memory_cap: u64, memory_used: Arc<AtomicU64>) -> Limits {
        Limits {
            memory_cap: memory_cap as usize,
            memory_used,
            memory_denied: false,
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Components have more than one memory (the adapter's); the cap is on
        // their sum, which is what the host pays for.
        let used = self.memory_used.load(Ordering::Relaxed) as usize;
        let after = used.saturating_sub(current) + desired;
        if after > self.memory_cap || maximum.is_some_and(|m| desired > m) {
            self.memory_denied = true;
            return Ok(false);
        }
        self.memory_used.store(after as u64, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_CAP && maximum.is_none_or(|m| desired <= m))
    }
}

impl Drop for Limits {
    fn drop(&mut self) {
        self.memory_used.store(0, Ordering::Relaxed);
    }
}

/// Store data of a preview-1 core module.
pub struct P1State {
    pub wasi: WasiP1Ctx,
    pub limits: Limits,
}

/// Store data of a component (preview-2 command or wasi:http proxy).
pub struct P2State {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    /// Outgoing HTTP, by the release's grants.
    pub hooks: Outbound,
    pub kv: KvCtx,
    pub config: Arc<WasiConfigVariables>,
    pub limits: Limits,
}

impl P2State {
    /// The state of one instance of `rel`.
    pub fn new(wasi: WasiCtx, caps: &Arc<Capabilities>, instance: &str, limits: Limits) -> P2State {
        P2State {
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: Outbound {
                caps: caps.clone(),
                instance: instance.into(),
            },
            kv: caps.kv_ctx(),
            config: caps.config.clone(),
            limits,
        }
    }

    pub fn kv_view(&mut self) -> KvView<'_> {
        KvView {
            ctx: &self.kv,
            table: &mut self.table,
        }
    }
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for P2State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
