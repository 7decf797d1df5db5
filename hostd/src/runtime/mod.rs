//! Running apps: one engine, linkers prepared once, and per-app supervisors.

pub mod caps;
pub mod http;
mod instance;
mod job;
pub mod message;
pub mod metrics;
mod outbound;
pub mod state;
pub mod status;
pub mod supervisor;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schema::{AppKind, Manifest, Version};
use tokio::sync::watch;
use wasmtime::component::{Component, Linker as ComponentLinker};
use wasmtime::{Engine, InstancePre, Linker, Module};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::logs::LogHub;
use state::{P1State, P2State};

pub use instance::Exit;
pub use supervisor::{AppRuntime, Event};

/// How often the engine's epoch advances: the granularity of deadlines,
/// interruption and cooperative yielding of busy guests.
pub const TICK: Duration = Duration::from_millis(10);

/// Compiled code, loaded into the engine.
#[derive(Clone)]
pub enum Loaded {
    Module(Module),
    Component(Component),
}

/// Code linked against what hostd provides, ready to instantiate many times.
pub enum Code {
    /// A preview-1 command module (`_start`).
    Module(InstancePre<P1State>),
    /// A preview-2 command component (`wasi:cli/run`).
    Command(CommandPre<P2State>),
    /// A `wasi:http/proxy` component.
    Http(ProxyPre<P2State>),
    /// A message handler (Spin's `fermyon:spin/inbound-redis`).
    Message(message::MessageHandlerPre<P2State>),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot link the artifact: {0}")]
pub struct LinkError(pub String);

/// The engine, the linkers, and the epoch ticker of one host.
pub struct Runtime {
    pub engine: Engine,
    p1: Linker<P1State>,
    p2: ComponentLinker<P2State>,
    pub logs: LogHub,
    /// The http apps the ingress routes to.
    pub routes: http::Routes,
    /// Message apps whose consumer has started since hostd started (the
    /// first one handles this host's pending messages).
    pub consumed: Mutex<std::collections::HashSet<String>>,
    /// Message apps' handling, as health rules and `ps` read it (http apps
    /// keep theirs on their route).
    message_metrics: Mutex<std::collections::HashMap<String, Arc<metrics::MessageMetrics>>>,
    /// Message apps' live canaries (http apps keep theirs on their route).
    message_canaries: Mutex<std::collections::HashMap<String, Arc<http::CanarySplit>>>,
    ticking: Arc<AtomicBool>,
}

impl Runtime {
    pub fn new(engine: Engine, logs: LogHub) -> Result<Arc<Runtime>, LinkError> {
        let link = |e: wasmtime::Error| LinkError(format!("{e:#}"));
        let mut p1 = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1, |s: &mut P1State| &mut s.wasi)
            .map_err(link)?;
        let mut p2 = ComponentLinker::new(&engine);
        // What `wasmtime serve -S cli` gives: all of WASI (its preview-2
        // interfaces; files and sockets stay empty because no directory or
        // network is granted) plus wasi:http.
        wasmtime_wasi::p2::add_to_linker_async(&mut p2).map_err(link)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut p2).map_err(link)?;
        // What `-S keyvalue -S config` add: an app's buckets and its config.
        crate::kv::add_to_linker(&mut p2, P2State::kv_view).map_err(link)?;
        wasmtime_wasi_config::add_to_linker(&mut p2, |s: &mut P2State| {
            wasmtime_wasi_config::WasiConfig::from(&*s.config)
        })
        .map_err(link)?;

        let ticking = Arc::new(AtomicBool::new(true));
        let (e, t) = (engine.clone(), ticking.clone());
        std::thread::Builder::new()
            .name("epoch".into())
            .spawn(move || {
                while t.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    e.increment_epoch();
                }
            })
            .map_err(|e| LinkError(format!("cannot start the epoch thread: {e}")))?;
        Ok(Arc::new(Runtime {
            engine,
            p1,
            p2,
            logs,
            routes: http::Routes::default(),
            consumed: Mutex::new(std::collections::HashSet::new()),
            message_metrics: Mutex::new(std::collections::HashMap::new()),
            message_canaries: Mutex::new(std::collections::HashMap::new()),
            ticking,
        }))
    }

    /// Sets (or ends) the canary of message app `app`: its share of
    /// messages goes to the canary release.
    pub fn set_message_canary(&self, app: &str, split: Option<Arc<http::CanarySplit>>) {
        let mut m = self
            .message_canaries
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match split {
            Some(s) => {
                m.insert(app.to_string(), s);
            }
            None => {
                m.remove(app);
            }
        }
    }

    /// The live canary of message app `app`, if any.
    pub fn message_canary(&self, app: &str) -> Option<Arc<http::CanarySplit>> {
        self.message_canaries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(app)
            .cloned()
    }

    /// The handling metrics of message app `app` (made on first use).
    pub fn message_metrics(&self, app: &str) -> Arc<metrics::MessageMetrics> {
        self.message_metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(app.to_string())
            .or_default()
            .clone()
    }

    /// Those metrics, if the app has handled anything here.
    pub fn message_metrics_of(&self, app: &str) -> Option<Arc<metrics::MessageMetrics>> {
        self.message_metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(app)
            .cloned()
    }

    /// Links `loaded` for `kind`: every import must be something hostd
    /// provides, and the exports must be what the kind runs.
    pub fn link(&self, loaded: &Loaded, kind: AppKind) -> Result<Code, LinkError> {
        let link = |e: wasmtime::Error| LinkError(format!("{e:#}"));
        Ok(match (loaded, kind) {
            (Loaded::Module(m), AppKind::Worker | AppKind::Job) => {
                Code::Module(self.p1.instantiate_pre(m).map_err(link)?)
            }
            (Loaded::Component(c), AppKind::Worker | AppKind::Job) => Code::Command(
                CommandPre::new(self.p2.instantiate_pre(c).map_err(link)?).map_err(link)?,
            ),
            (Loaded::Component(c), AppKind::Http) => {
                Code::Http(ProxyPre::new(self.p2.instantiate_pre(c).map_err(link)?).map_err(link)?)
            }
            (Loaded::Component(c), AppKind::Message) => Code::Message(
                message::MessageHandlerPre::new(self.p2.instantiate_pre(c).map_err(link)?)
                    .map_err(link)?,
            ),
            (Loaded::Module(_), AppKind::Message) => {
                return Err(LinkError(
                    "a core module cannot handle messages; build a component exporting fermyon:spin/inbound-redis".into(),
                ));
            }
            (Loaded::Module(_), AppKind::Http) => {
                return Err(LinkError(
                    "a core module cannot serve http; build a wasi:http/proxy component".into(),
                ));
            }
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

/// Failed starts within this window that make a crash loop.
pub const CRASHLOOP_STARTS: usize = 5;
pub const CRASHLOOP_WINDOW: Duration = Duration::from_secs(60);

/// A release as it runs on this host: its code, manifest and crash record.
pub struct ReleaseRun {
    pub app: Arc<str>,
    pub version: Version,
    pub manifest: Arc<Manifest>,
    pub code: Arc<Code>,
    /// The manifest's environment plus `CRANEFLEET_APP` and
    /// `CRANEFLEET_RELEASE`, built once: http apps make an instance per request.
    pub env: Vec<(String, String)>,
    /// Network grants, key-value store and config.
    pub caps: Arc<caps::Capabilities>,
    crashes: Mutex<VecDeque<Instant>>,
    crashlooped: AtomicBool,
}

impl ReleaseRun {
    pub fn new(
        version: Version,
        manifest: Manifest,
        code: Code,
        caps: Arc<caps::Capabilities>,
    ) -> Arc<ReleaseRun> {
        let mut env: Vec<(String, String)> = manifest
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push(("CRANEFLEET_APP".into(), manifest.name.clone()));
        env.push(("CRANEFLEET_RELEASE".into(), version.to_string()));
        caps.bind(version);
        Arc::new(ReleaseRun {
            app: manifest.name.as_str().into(),
            env,
            caps,
            version,
            manifest: Arc::new(manifest),
            code: Arc::new(code),
            crashes: Mutex::new(VecDeque::new()),
            crashlooped: AtomicBool::new(false),
        })
    }

    /// Records a failed start; true exactly once, when this makes a crash loop.
    fn record_crash(&self) -> bool {
        let now = Instant::now();
        let mut c = self.crashes.lock().unwrap_or_else(|p| p.into_inner());
        c.push_back(now);
        while c
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASHLOOP_WINDOW)
        {
            c.pop_front();
        }
        c.len() >= CRASHLOOP_STARTS && !self.crashlooped.swap(true, Ordering::SeqCst)
    }

    pub fn is_crashlooped(&self) -> bool {
        self.crashlooped.load(Ordering::SeqCst)
    }

    /// Forgets the failed starts (a `restart`): the release may run again,
    /// and a new crash loop needs as many failures as the first.
    pub fn clear_crashes(&self) {
        self.crashes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.crashlooped.store(false, Ordering::SeqCst);
    }
}

/// Asks an instance, a slot or a job loop to stop.
///
/// A stop request lets an instance finish within its grace period; after it
/// the instance is interrupted at the next epoch tick (see `instance::run`).
#[derive(Clone)]
pub struct StopToken {
    requested: Arc<watch::Sender<bool>>,
}

impl Default for StopToken {
    fn default() -> Self {
        StopToken {
            requested: Arc::new(watch::channel(false).0),
        }
    }
}

impl StopToken {
    pub fn request(&self) {
        self.requested.send_replace(true);
    }

    pub fn is_requested(&self) -> bool {
        *self.requested.borrow()
    }

    /// Resolves once a stop is requested.
    pub async fn requested(&self) {
        let mut rx = self.requested.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}
