//! Running one instance of a command (worker replica or job run).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use schema::Stream;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

use super::state::{Limits, P1State, P2State};
use super::{Code, ReleaseRun, Runtime, StopToken, TICK};
use crate::logs::capture::{LogSink, Origin};

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It returned, or called `exit(n)`.
    Code(i32),
    /// It trapped (the message says where).
    Trap(String),
    /// It ran past its deadline and was interrupted.
    Deadline(Duration),
    /// It was asked to stop and did (or was interrupted after its grace).
    Stopped,
    /// It could not be instantiated.
    Failed(String),
}

impl Exit {
    pub fn is_success(&self) -> bool {
        matches!(self, Exit::Code(0) | Exit::Stopped)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Trap(t) => write!(f, "trap: {t}"),
            Exit::Deadline(d) => {
                write!(f, "interrupted after its deadline of {} ms", d.as_millis())
            }
            Exit::Stopped => write!(f, "stopped"),
            Exit::Failed(e) => write!(f, "failed to start: {e}"),
        }
    }
}

/// A WASI context whose stdout and stderr become log records of `instance`.
pub fn wasi_builder(rt: &Runtime, rel: &ReleaseRun, instance: &str) -> WasiCtxBuilder {
    let origin = Origin {
        app: rel.app.clone(),
        release: Some(rel.version.0),
        instance: instance.into(),
    };
    let mut b = WasiCtxBuilder::new();
    b.stdout(LogSink::new(
        rt.logs.clone(),
        origin.clone(),
        Stream::Stdout,
    ))
    .stderr(LogSink::new(rt.logs.clone(), origin, Stream::Stderr))
    .arg(&*rel.app)
    .envs(&rel.env)
    .env("CRANEFLEET_INSTANCE", instance)
    .env("CRANEFLEET_HOST", rt.logs.host());
    // Sockets: TCP connects to granted destinations only.
    b.socket_addr_check(super::caps::socket_check(rel.caps.clone(), instance.into()))
        .allow_ip_name_lookup(rel.caps.needs_name_lookup())
        // On, so that a denied connect is named in the app's logs; every
        // use is checked against the grants.
        .allow_tcp(true)
        .allow_udp(false);
    b
}

/// Store settings shared by every instance: memory cap, and an epoch
/// callback that yields to tokio every tick (so a busy guest cannot starve
/// the host) and traps once `interrupt` is set.
pub fn configure_store<T: Send + 'static>(
    store: &mut Store<T>,
    interrupt: Arc<AtomicBool>,
    limits: fn(&mut T) -> &mut Limits,
) {
    store.limiter(move |s| -> &mut dyn wasmtime::ResourceLimiter { limits(s) });
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if interrupt.load(Ordering::Relaxed) {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

/// Classifies what a guest call returned.
pub fn exit_of(result: wasmtime::Result<i32>, memory_denied: bool, cap: u64) -> Exit {
    match result {
        Ok(code) => Exit::Code(code),
        Err(e) => {
            if let Some(code) = e.downcast_ref::<I32Exit>() {
                return Exit::Code(code.0);
            }
            if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                return Exit::Stopped;
            }
            let mut msg = one_line(&format!("{e:#}"));
            if memory_denied {
                msg.push_str(&format!(
                    " (memory.grow was refused at the cap of {} MiB)",
                    cap >> 20
                ));
            }
            Exit::Trap(msg)
        }
    }
}

/// A trap's message and wasm backtrace on one line, as log records are lines.
pub fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Runs one instance of `rel` to its end.
///
/// A stop request gives it `stop_grace_ms` to end by itself; then it is
/// interrupted at the next epoch tick, and if it sits in a host call (a
/// sleep), its future is dropped, which unwinds it. `deadline` bounds the
/// whole run the same way.
pub async fn run(
    rt: &Arc<Runtime>,
    rel: &Arc<ReleaseRun>,
    instance: &str,
    memory: Arc<AtomicU64>,
    stop: &StopToken,
    deadline: Option<Duration>,
) -> Exit {
    let interrupt = Arc::new(AtomicBool::new(false));
    let wasm = run_wasm(rt, rel, instance, memory, interrupt.clone());
    tokio::pin!(wasm);
    let until_deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let cut = |interrupt: &AtomicBool| interrupt.store(true, Ordering::Relaxed);
    tokio::select! {
        exit = &mut wasm => exit,
        _ = stop.requested() => {
            let grace = Duration::from_millis(rel.manifest.stop_grace_ms());
            match tokio::time::timeout(grace, &mut wasm).await {
                Ok(exit) => exit,
                Err(_) => {
                    cut(&interrupt);
                    let _ = tokio::time::timeout(TICK * 5, &mut wasm).await;
                    Exit::Stopped
                }
            }
        }
        _ = until_deadline => {
            cut(&interrupt);
            let _ = tokio::time::timeout(TICK * 5, &mut wasm).await;
            Exit::Deadline(deadline.unwrap_or_default())
        }
    }
}

async fn run_wasm(
    rt: &Arc<Runtime>,
    rel: &Arc<ReleaseRun>,
    instance: &str,
    memory: Arc<AtomicU64>,
    interrupt: Arc<AtomicBool>,
) -> Exit {
    let cap = rel.manifest.memory_bytes();
    let limits = Limits::new(cap, memory);
    let mut b = wasi_builder(rt, rel, instance);
    match &*rel.code {
        Code::Module(pre) => {
            let mut store = Store::new(
                &rt.engine,
                P1State {
                    wasi: b.build_p1(),
                    limits,
                },
            );
            configure_store(&mut store, interrupt, |s| &mut s.limits);
            let result = async {
                let inst = pre.instantiate_async(&mut store).await?;
                let start = inst.get_typed_func::<(), ()>(&mut store, "_start")?;
                start.call_async(&mut store, ()).await?;
                Ok(0)
            }
            .await;
            exit_of(result, store.data().limits.memory_denied, cap)
        }
        Code::Command(pre) => {
            let state = P2State::new(b.build(), &rel.caps, instance, limits);
            let mut store = Store::new(&rt.engine, state);
            configure_store(&mut store, interrupt, |s| &mut s.limits);
            let result = async {
                let cmd = pre.instantiate_async(&mut store).await?;
                Ok(match cmd.wasi_cli_run().call_run(&mut store).await? {
                    Ok(()) => 0,
                    Err(()) => 1,
                })
            }
            .await;
            exit_of(result, store.data().limits.memory_denied, cap)
        }
        Code::Http(_) => {
            Exit::Failed("an http release is instantiated per request, not run".into())
        }
        Code::Message(_) => {
            Exit::Failed("a message release is instantiated per message, not run".into())
        }
    }
}
