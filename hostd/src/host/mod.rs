//! A host: its databases, its code store, its runtime, and the operations of
//! CLI.md applied to them. The control socket and (later) the gateway tunnel
//! are front doors onto these methods; nothing here knows about either.

mod canary;
mod capability;
mod change;
mod fleet;
mod health;
mod operations;
mod view;

pub use operations::HostOps;

use std::collections::HashMap;
use std::sync::Arc;

use schema::audit::{Action, Outcome};
use schema::manifest::ManifestError;
use schema::{Actor, AppKind, Manifest, ReleaseState, Version};
use tokio::sync::{Mutex, mpsc};

use crate::artifacts::{Artifacts, StoreError};
use crate::config::{HostConfig, KEEP_RELEASES};
use crate::logs::LogHub;
use crate::runtime::caps::Capabilities;
use crate::runtime::{AppRuntime, Event, LinkError, ReleaseRun, Runtime};
use crate::store::{self, AppRecord, ReleaseRecord};
use db::{Db, DbError, Durability};
use schema::artifact::KindError;

/// Why an operation was refused or failed. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("unknown app {0:?}: `hostd ps` lists the apps on this host")]
    UnknownApp(String),
    #[error("{0}")]
    BadName(#[from] schema::names::NameError),
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Kind(#[from] KindError),
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{app} has no release {version}; `hostd releases {app}` lists them")]
    NoSuchRelease { app: String, version: Version },
    #[error(
        "{app} {version} is no longer kept on this host (only the last {KEEP_RELEASES} releases are); deploy its artifact again"
    )]
    NotKept { app: String, version: Version },
    #[error("{app} {version} failed its health check: {reason}; {outcome}")]
    HealthCheckFailed {
        app: String,
        version: Version,
        reason: String,
        outcome: String,
    },
    /// A release the gateway activated failed its health check here; the
    /// gateway says what happens to the fleet, so the host only says why.
    #[error("health check {reason}")]
    Unhealthy { reason: String },
    #[error("{0}")]
    Refused(String),
    /// Refused by a check a host and the fleet share (`ops::cmd`).
    #[error("{0}")]
    Op(#[from] ops::OpError),
    /// A filter or rule that does not parse or type-check; the message is
    /// the position, what was expected, and a caret under the source.
    #[error("invalid {what} expression at {err}")]
    Expr {
        what: &'static str,
        err: schema::expr::ExprError,
    },
    #[error("{0}")]
    Db(#[from] DbError),
}

/// A host and everything it runs.
pub struct Host {
    pub config: HostConfig,
    db: Db,
    pub logs: LogHub,
    artifacts: Artifacts,
    rt: Arc<Runtime>,
    apps: std::sync::Mutex<HashMap<String, Arc<AppRuntime>>>,
    /// Serialises deploy, rollback, scale and rm per app.
    op_locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Supervisors report crash loops here; `handle_events` acts on them.
    events: mpsc::UnboundedSender<Event>,
    /// What the agent forwards to the gateway.
    fleet: tokio::sync::broadcast::Sender<schema::tunnel::HostEvent>,
    /// Apps' key-value stores.
    pub kv: kv::KvStores,
    /// Seals config secrets at rest.
    secrets: db::secrets::SecretKey,
    /// Live canaries, by app.
    canaries: std::sync::Mutex<HashMap<String, canary::Live>>,
}

impl Host {
    /// Opens the host's state under `config.data_dir` and starts every app's
    /// active release from cached code. An app whose code cannot be loaded is
    /// reported in its logs and left stopped; it never keeps the others down.
    pub async fn open(config: HostConfig) -> anyhow::Result<Arc<Host>> {
        use anyhow::Context;
        let dir = &config.data_dir;
        // Never start empty over what this host ran: its apps' code is here.
        let state = [dir.join("artifacts"), dir.join("cache")];
        db::check_state(&dir.join("hostd.db"), &state)?;
        let db = Db::open(
            &dir.join("hostd.db"),
            schema::migrations::HOSTD,
            Durability::Full,
        )?;
        let logs = LogHub::open(dir, &config.name, config.log_cap_bytes)?;
        let engine = crate::engine::runtime_engine(config.max_instances)?;
        let artifacts = Artifacts::open(dir, engine.clone(), db.clone())?;
        let rt = Runtime::new(engine, logs.clone()).context("starting the runtime")?;
        let secrets = db::secrets::SecretKey::load_or_create(&config.secrets_key)?;
        let kv = kv::KvStores::new(dir.join("kv"));
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let host = Arc::new(Host {
            config,
            db,
            logs,
            artifacts,
            rt,
            apps: std::sync::Mutex::new(HashMap::new()),
            op_locks: std::sync::Mutex::new(HashMap::new()),
            events: events_tx,
            fleet: tokio::sync::broadcast::channel(256).0,
            kv,
            secrets,
            canaries: std::sync::Mutex::new(HashMap::new()),
        });
        host.recover().await?;
        tokio::spawn(handle_events(Arc::downgrade(&host), events_rx));
        Ok(host)
    }

    async fn recover(self: &Arc<Host>) -> Result<(), HostError> {
        let failed = self.db.call(|c| store::fail_interrupted_stages(c)).await?;
        if failed > 0 {
            tracing::warn!(failed, "releases interrupted mid-deploy were marked failed");
        }
        let apps = self.db.call(|c| store::list_apps(c)).await?;
        for app in apps {
            let sup = AppRuntime::new(&app.name, app.kind, self.rt.clone(), self.events.clone());
            self.apps_lock().insert(app.name.clone(), sup.clone());
            let Some(v) = app.active else { continue };
            let Some(rel) = self.release(&app.name, v).await? else {
                continue;
            };
            match self.prepare(&rel).await {
                Ok((run, compile_ms)) => {
                    let how = if compile_ms > 0 {
                        format!("compiled again in {compile_ms} ms (engine changed)")
                    } else {
                        "from cached code".to_string()
                    };
                    sup.activate(run, app.replicas);
                    if rel.state == ReleaseState::Crashloop {
                        sup.halt(v, rel.detail.clone().unwrap_or_else(|| "crash loop".into()));
                    }
                    self.logs.system(
                        &app.name,
                        Some(v),
                        "hostd",
                        format!("hostd started; {v} restored {how}"),
                    );
                }
                Err(e) => {
                    tracing::error!(app = %app.name, error = %e, "cannot restore the active release");
                    self.logs.system(
                        &app.name,
                        Some(v),
                        "hostd",
                        format!("cannot start {v} after restart: {e}"),
                    );
                }
            }
        }
        self.resume_canaries().await?;
        Ok(())
    }

    fn apps_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AppRuntime>>> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn supervisor(&self, app: &str) -> Option<Arc<AppRuntime>> {
        self.apps_lock().get(app).cloned()
    }

    /// Every app with a supervisor on this host, by name (`--metrics`).
    pub fn supervisors(&self) -> Vec<Arc<AppRuntime>> {
        let mut v: Vec<Arc<AppRuntime>> = self.apps_lock().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn supervisor_or_new(&self, app: &str, kind: AppKind) -> Arc<AppRuntime> {
        self.apps_lock()
            .entry(app.to_string())
            .or_insert_with(|| AppRuntime::new(app, kind, self.rt.clone(), self.events.clone()))
            .clone()
    }

    async fn op_lock(&self, app: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = self
            .op_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(app.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    async fn app(&self, name: &str) -> Result<AppRecord, HostError> {
        let n = name.to_string();
        self.db
            .call(move |c| store::get_app(c, &n))
            .await?
            .ok_or_else(|| HostError::UnknownApp(name.to_string()))
    }

    /// The gateway that manages `app`, if one does.
    pub async fn managed_by(&self, app: &str) -> Option<String> {
        self.app(app).await.ok().and_then(|r| r.managed)
    }

    /// Refuses an app this host does not know.
    pub async fn check_app(&self, name: &str) -> Result<(), HostError> {
        self.app(name).await.map(|_| ())
    }

    async fn release(&self, app: &str, v: Version) -> Result<Option<ReleaseRecord>, HostError> {
        let a = app.to_string();
        Ok(self.db.call(move |c| store::release(c, &a, v)).await?)
    }

    /// Loads (from cache, else compiling) and links a stored release.
    async fn prepare(&self, rel: &ReleaseRecord) -> Result<(Arc<ReleaseRun>, u64), HostError> {
        let compiled = self.artifacts.load(&rel.digest).await?;
        let code = self.rt.link(&compiled.loaded, rel.kind)?;
        // A stored release starts even when its stores are down (a restart,
        // a rollback): its calls fail until they are back.
        let caps = self.capabilities(rel.version, &rel.manifest, false).await?;
        Ok((
            ReleaseRun::new(rel.version, rel.manifest.clone(), code, caps),
            compiled.compile_ms,
        ))
    }

    /// What release `version` with `manifest` may reach: its grants, its
    /// key-value store and its config, secrets opened. With `check` (a new
    /// release), a Redis store and a message source are pinged now, so an
    /// unreachable one refuses the release before it serves.
    pub(crate) async fn capabilities(
        &self,
        version: Version,
        manifest: &Manifest,
        check: bool,
    ) -> Result<Arc<Capabilities>, HostError> {
        let app = &manifest.name;
        let grants = schema::grant::parse_all(&manifest.allow.outbound)
            .map_err(|e| HostError::Refused(e.to_string()))?;
        if check && manifest.kind == AppKind::Message {
            let src = manifest.trigger.source()?;
            crate::runtime::message::check_source(&src)
                .await
                .map_err(HostError::Refused)?;
        }
        let store = self
            .kv
            .open(app, &manifest.keyvalue, check)
            .await
            .map_err(|e| HostError::Refused(e.to_string()))?;
        let opened = db::secrets::open_manifest(&self.secrets, manifest)
            .map_err(|e| HostError::Refused(format!("the config of {app}: {e}")))?;
        let config: Vec<(String, String)> = opened
            .config
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect();
        Ok(Capabilities::new(
            app,
            version,
            grants,
            manifest.timeout_ms(),
            Some(store),
            manifest.keyvalue.clone(),
            config,
            self.logs.clone(),
        ))
    }

    /// Seals every secret of `manifest` not sealed yet (one that arrived
    /// from the gateway inside the tunnel, or from `config set --secret`).
    pub(crate) fn seal_secrets(&self, manifest: &mut Manifest) -> Result<(), HostError> {
        db::secrets::seal_manifest(&self.secrets, manifest)
            .map_err(|e| HostError::Refused(e.to_string()))
    }

    /// Records who did what. A local action on an app a gateway manages is
    /// kept unreported until the agent has told the gateway.
    pub async fn audit(
        &self,
        who: &Actor,
        action: Action,
        app: Option<&str>,
        detail: impl Into<String>,
    ) {
        self.record(who, action, app, Outcome::Done, detail.into())
            .await
    }

    /// Records an action refused, and why.
    pub async fn audit_refused(
        &self,
        who: &Actor,
        action: Action,
        app: Option<&str>,
        why: impl ToString,
    ) {
        self.record(who, action, app, Outcome::Refused, why.to_string())
            .await
    }

    async fn record(
        &self,
        who: &Actor,
        action: Action,
        app: Option<&str>,
        outcome: Outcome,
        detail: String,
    ) {
        let local = who.is_local();
        let (who, app, detail) = (
            who.to_string(),
            app.map(str::to_string),
            outcome.detail(detail),
        );
        let now = schema::time::now_millis();
        if let Err(e) = self
            .db
            .call(move |c| {
                let managed = match &app {
                    Some(a) => store::get_app(c, a)?.and_then(|r| r.managed).is_some(),
                    None => false,
                };
                let reported = !(managed && local);
                let entry = db::audit::Entry {
                    time: now,
                    key: &who,
                    action,
                    app: app.as_deref(),
                    detail: &detail,
                    refused: outcome == Outcome::Refused,
                };
                store::audit(c, &entry, reported)
            })
            .await
        {
            tracing::error!(error = %e, "could not write an audit entry");
        }
    }

    /// Stops every app at once (daemon shutdown); their state stays in
    /// hostd.db.
    pub async fn shutdown(&self) {
        let sups: Vec<Arc<AppRuntime>> = self.apps_lock().values().cloned().collect();
        let mut stops = tokio::task::JoinSet::new();
        for s in sups {
            stops.spawn(async move { s.stop().await });
        }
        while stops.join_next().await.is_some() {}
        self.logs.flush().await;
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    /// For tests: the engine's compatibility hash.
    pub fn compat(&self) -> &str {
        self.artifacts.compat()
    }
}

/// Local deploys, scales and removals of an app a gateway manages would be
/// undone by the gateway's next reconcile; only rollback is allowed locally
/// (break-glass), and it is reported to the gateway.
fn refuse_if_managed(rec: Option<&AppRecord>, who: &Actor, what: &str) -> Result<(), HostError> {
    match rec.and_then(|r| r.managed.as_ref()) {
        Some(gw) if who.is_local() => Err(HostError::Refused(format!(
            "{} is managed by the gateway {gw}: {what} it through the gateway (`hostd {what} … --gateway`); only `rollback --local` works here",
            rec.map(|r| r.name.as_str()).unwrap_or("this app")
        ))),
        _ => Ok(()),
    }
}

async fn handle_events(host: std::sync::Weak<Host>, mut rx: mpsc::UnboundedReceiver<Event>) {
    while let Some(ev) = rx.recv().await {
        let Some(host) = host.upgrade() else { return };
        match ev {
            Event::Crashloop {
                app,
                version,
                detail,
            } => {
                let (a, d) = (app.to_string(), detail.clone());
                let still_active = host
                    .db
                    .call(move |c| {
                        let active = store::get_app(c, &a)?.and_then(|r| r.active);
                        if active == Some(version) {
                            store::set_release_state(
                                c,
                                &a,
                                version,
                                ReleaseState::Crashloop,
                                Some(&d),
                            )?;
                        }
                        Ok::<_, rusqlite::Error>(active == Some(version))
                    })
                    .await
                    .unwrap_or(false);
                if still_active {
                    if let Some(sup) = host.supervisor(&app) {
                        sup.halt(version, detail.clone());
                    }
                    host.audit(
                        &Actor::Daemon("hostd"),
                        Action::Crashloop,
                        Some(&app),
                        format!("{version}: {detail}"),
                    )
                    .await;
                    host.publish(schema::tunnel::HostEvent::Crashloop {
                        app: app.to_string(),
                        version,
                        detail,
                    });
                }
            }
        }
    }
}
