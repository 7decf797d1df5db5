//! The fleet: desired state in `gateway.db`, the hosts connected now, and
//! the operations of CLI.md applied across them.
//!
//! A deploy is two-phase: every chosen host stages the release (fetches the
//! artifact through its tunnel, checks its digest, compiles it for its own
//! CPU) and only when all have staged does the gateway switch them. A host
//! that fails to stage fails the deploy, and nothing switches. Rollback
//! activates a release the hosts keep compiled: no fetch, no compile.
//!
//! Hosts that reconnect report what they run; the gateway then brings them
//! to the desired state (and adopts a break-glass `rollback --local` made
//! while it was away). A host silent for 10 s is `down`: its replicas are
//! placed on the others, and placement converges again when it returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schema::Version;
use schema::audit::{Action, Outcome};
use schema::tunnel::{DOWN_AFTER_SECS, GatewayMsg};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::placement::{Candidate, PlacementError};
use crate::store::{self, AppRecord, ReleaseRecord};
use crate::tunnel::HostConn;
use db::{DbError, SqlDb as Db};

use artifacts::ArtifactStore;
use hosts::monitor;
use registry::Registry;
use schema::artifact::Digest;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("unknown app {0:?}: `ps` lists the fleet's apps")]
    UnknownApp(String),
    #[error("{0}")]
    Name(#[from] schema::names::NameError),
    #[error("{0}")]
    Manifest(#[from] schema::manifest::ManifestError),
    #[error("{0}")]
    Kind(#[from] schema::artifact::KindError),
    #[error("{0}")]
    Artifact(#[from] schema::artifact::ArtifactError),
    #[error("{0}")]
    Placement(#[from] PlacementError),
    #[error("{app} {version} was not deployed: staging failed on {failures}; nothing was switched")]
    Staging {
        app: String,
        version: Version,
        failures: String,
    },
    #[error("{0}")]
    Activation(String),
    #[error("{0}")]
    Refused(String),
    /// Refused by a check a host and the fleet share (`ops::cmd`).
    #[error("{0}")]
    Op(#[from] ::ops::OpError),
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("{0}")]
    Io(String),
}

pub use ::ops::{Progress, ProgressTx, Step};

pub struct Fleet {
    pub name: String,
    db: Db,
    pub max_artifact_bytes: u64,
    /// Releases of an app whose artifacts are kept (see [`store::prune`]).
    keep_releases: usize,
    /// See [`FleetConfig::down_after`].
    down_after: Duration,
    artifacts: ArtifactStore,
    /// The hosts connected now, and what each last reported.
    registry: Registry,
    op_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped on every change of state a console shows.
    pub changed: watch::Sender<u64>,
    /// Local rollbacks reported by hosts, adopted at their next report.
    adopt: Mutex<HashSet<(String, String)>>,
    /// What hosts report, from their tunnels ([`events::drain`]).
    reports: mpsc::UnboundedSender<crate::tunnel::Report>,
    /// Seals config secrets at rest.
    secrets: db::secrets::SecretKey,
    /// The fleet-wide default wasi:keyvalue store.
    keyvalue_url: Option<String>,
    /// Connections to shared key-value stores, per URL (the `kv` command).
    kv: tokio::sync::Mutex<HashMap<String, kv::RedisKv>>,
    /// The gateway is shutting down: tunnels closing now say nothing of
    /// their hosts.
    closing: std::sync::atomic::AtomicBool,
    /// Deploys and rollbacks since the gateway started (`--metrics`).
    pub tallies: tallies::Tallies,
    /// Live canaries the gateway drives, by app.
    canaries: Mutex<HashMap<String, canary::Live>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Releases of an app whose artifacts the gateway keeps unless told otherwise.
pub const DEFAULT_KEEP_RELEASES: usize = 10;

/// Everything a fleet is opened with, built once (from `serve`'s flags, or
/// by a test that wants a host down after 1 s rather than 10).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// This gateway's name, as hosts and audit entries show it.
    pub name: String,
    /// The data directory (`gateway.db`, `artifacts/`).
    pub dir: PathBuf,
    /// Releases of each app whose artifacts are kept.
    pub keep_releases: usize,
    /// Largest artifact a deploy accepts.
    pub max_artifact_bytes: u64,
    /// A host silent this long is down and loses its replicas; a host up
    /// this long may receive replicas moved by a rebalance.
    pub down_after: Duration,
    /// The key that seals config secrets (`--secrets-key`).
    pub secrets_key: PathBuf,
    /// Where apps keep wasi:keyvalue when their manifest names no store.
    pub keyvalue_url: Option<String>,
}

impl FleetConfig {
    pub fn new(name: String, dir: PathBuf) -> FleetConfig {
        FleetConfig {
            secrets_key: dir.join("secrets.key"),
            keyvalue_url: None,
            name,
            dir,
            keep_releases: DEFAULT_KEEP_RELEASES,
            max_artifact_bytes: 256 << 20,
            down_after: Duration::from_secs(DOWN_AFTER_SECS),
        }
    }
}

impl Fleet {
    pub async fn open(cfg: FleetConfig, db: Db) -> Result<Arc<Fleet>, FleetError> {
        let FleetConfig {
            name,
            dir,
            keep_releases,
            max_artifact_bytes,
            down_after,
            secrets_key,
            keyvalue_url,
        } = cfg;
        let shared = db.target().is_postgres().then(|| db.clone());
        let artifacts = ArtifactStore::open(&dir, shared)?;
        let secrets = db::secrets::SecretKey::load_or_create(&secrets_key)
            .map_err(|e| FleetError::Refused(e.to_string()))?;
        let failed = db.call(|c| store::fail_interrupted_stages(c)).await?;
        if failed > 0 {
            tracing::warn!(failed, "releases interrupted mid-deploy were marked failed");
        }
        // Hosts known from before a restart count as up until they have had
        // the usual time to report: their replicas stay where they are.
        let known = db.call(|c| store::hosts(c)).await?;
        let now = schema::time::now_millis();
        let registry = Registry::new(known.into_iter().map(|h| h.name), now);
        let (reports, queue) = events::queue();
        let fleet = Arc::new(Fleet {
            name,
            db,
            max_artifact_bytes,
            keep_releases: keep_releases.max(1),
            down_after,
            artifacts,
            registry,
            op_locks: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
            adopt: Mutex::new(HashSet::new()),
            reports,
            secrets,
            keyvalue_url,
            kv: tokio::sync::Mutex::new(HashMap::new()),
            closing: std::sync::atomic::AtomicBool::new(false),
            tallies: tallies::Tallies::default(),
            canaries: Mutex::new(HashMap::new()),
        });
        fleet.prune_artifacts().await;
        let known = fleet.db.call(|c| store::artifact_digests(c)).await?;
        let fetched = fleet.artifacts.fetch_missing(known).await?;
        if fetched > 0 {
            tracing::info!(
                fetched,
                "copied the artifacts this gateway lacked from the database"
            );
        }
        fleet.resume_canaries().await?;
        fleet.remove_stray_artifacts().await;
        tokio::spawn(monitor(Arc::downgrade(&fleet)));
        tokio::spawn(events::drain(Arc::downgrade(&fleet), queue));
        Ok(fleet)
    }

    /// Called before the gateway closes its connections: the hosts are not
    /// down, the gateway is.
    pub fn closing(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Deletes the artifacts no kept release uses (every app keeps its
    /// newest `keep_releases` and its active release). Failing to is logged:
    /// it costs disk, not correctness.
    async fn prune_artifacts(&self) {
        let _g = self.artifacts.hold().await;
        let keep = self.keep_releases;
        match self.db.call(move |c| store::prune(c, keep)).await {
            Ok(gone) => self.artifacts.remove(gone).await,
            Err(e) => tracing::warn!(error = %e, "could not prune old releases' artifacts"),
        }
    }

    /// At start: files in the artifact directory that no release records
    /// (left by a crash between writing a file and recording it).
    async fn remove_stray_artifacts(&self) {
        let _g = self.artifacts.hold().await;
        let Ok(known) = self.db.call(|c| store::artifact_digests(c)).await else {
            return;
        };
        self.artifacts
            .remove_strays(known.into_iter().collect())
            .await;
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Where the artifact `digest` is kept; `None` for a string that is not
    /// a digest (a peer's), from which no path is built.
    pub fn artifact_path(&self, digest: &str) -> Option<PathBuf> {
        Digest::parse(digest).ok().map(|d| self.artifacts.path(&d))
    }

    /// Whether the artifact `digest` is stored here.
    async fn has_artifact(&self, digest: &str) -> bool {
        match Digest::parse(digest) {
            Ok(d) => self.artifacts.exists(&d).await,
            Err(_) => false,
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn conn(&self, host: &str) -> Option<Arc<HostConn>> {
        self.registry.conn(host)
    }

    /// Up without a break for the grace period.
    fn is_settled(&self, host: &str) -> bool {
        self.registry.is_settled(host)
    }

    fn is_up(&self, host: &str) -> bool {
        self.registry.is_up(host)
    }

    async fn op_lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = lock(&self.op_locks)
            .entry(key.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    async fn host_lock(&self, host: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.registry.lock_host(host).await
    }

    /// Records who did what.
    pub async fn audit(
        &self,
        who: &str,
        action: Action,
        app: Option<&str>,
        detail: impl Into<String>,
    ) {
        self.record(who, action, app, false, detail.into()).await
    }

    /// Records an action refused, and why.
    pub async fn audit_refused(
        &self,
        who: &str,
        action: Action,
        app: Option<&str>,
        why: impl ToString,
    ) {
        let detail = Outcome::Refused.detail(why.to_string());
        self.record(who, action, app, true, detail).await
    }

    /// Records an entry whose detail is written as shown.
    pub(crate) async fn record(
        &self,
        who: &str,
        action: Action,
        app: Option<&str>,
        refused: bool,
        detail: String,
    ) {
        let (w, ap, d, now) = (
            who.to_string(),
            app.map(String::from),
            detail,
            schema::time::now_millis(),
        );
        if let Err(e) = self
            .db
            .call(move |c| {
                let entry = db::audit::Entry {
                    time: now,
                    key: &w,
                    action,
                    app: ap.as_deref(),
                    detail: &d,
                    refused,
                };
                store::audit(c, &entry)
            })
            .await
        {
            tracing::error!(error = %e, "could not write an audit entry");
        }
    }

    async fn app(&self, name: &str) -> Result<AppRecord, FleetError> {
        let n = name.to_string();
        self.db
            .call(move |c| store::get_app(c, &n))
            .await?
            .ok_or_else(|| FleetError::UnknownApp(name.to_string()))
    }

    /// Placement candidates: every known host with the load of every app
    /// but `except`. A deploy needs hosts connected now (`connected`); a
    /// re-placement also counts hosts not yet declared down.
    async fn candidates(
        &self,
        except: &str,
        connected: bool,
    ) -> Result<Vec<Candidate>, FleetError> {
        let (hosts, placements) = self
            .db
            .call(|c| Ok((store::hosts(c)?, store::placements(c)?)))
            .await?;
        Ok(hosts
            .into_iter()
            .map(|h| {
                let load = placements
                    .iter()
                    .filter(|(a, _)| a.as_str() != except)
                    .filter_map(|(_, p)| p.get(&h.name))
                    .sum();
                Candidate {
                    up: self.is_up(&h.name) && (!connected || self.conn(&h.name).is_some()),
                    name: h.name,
                    labels: h.labels,
                    load,
                }
            })
            .collect())
    }

    async fn placement_of(&self, app: &str) -> Result<BTreeMap<String, u32>, FleetError> {
        let a = app.to_string();
        Ok(self
            .db
            .call(move |c| Ok(store::placements(c)?.remove(&a).unwrap_or_default()))
            .await?)
    }

    /// Runs a request on several hosts at once; progress lines are prefixed
    /// with the host. Returns each host's result.
    async fn on_hosts<F>(
        &self,
        hosts: Vec<String>,
        progress: &ProgressTx,
        build: F,
    ) -> Vec<(String, Result<Option<u64>, String>)>
    where
        F: Fn(u64, &str) -> GatewayMsg + Clone + Send + 'static,
    {
        let mut set = JoinSet::new();
        for host in hosts {
            let conn = self.conn(&host);
            let (progress, build) = (progress.clone(), build.clone());
            set.spawn(async move {
                let Some(conn) = conn else {
                    return (host.clone(), Err(format!("host {host} is not connected")));
                };
                let (ptx, mut prx) = mpsc::unbounded_channel::<Step>();
                let fwd = {
                    let (progress, host) = (progress.clone(), host.clone());
                    tokio::spawn(async move {
                        while let Some(step) = prx.recv().await {
                            let _ = progress.send(Progress::new(host.clone(), step));
                        }
                    })
                };
                let h = host.clone();
                let r = conn.request(move |id| build(id, &h), Some(ptx)).await;
                let _ = fwd.await;
                (host, r)
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Stages `rel` on `hosts`; Err lists the hosts that failed and why.
    async fn stage(
        &self,
        rel: &ReleaseRecord,
        hosts: Vec<String>,
        by: &str,
        progress: &ProgressTx,
    ) -> Result<u64, String> {
        let size = match Digest::parse(&rel.digest) {
            Ok(d) => self.artifacts.size(&d).await,
            Err(_) => 0,
        };
        // Secrets go to hosts in the clear, inside the tunnel only.
        let manifest = self.for_host(&rel.manifest)?;
        let (app, version, digest, by) = (
            rel.app.clone(),
            rel.version,
            rel.digest.clone(),
            by.to_string(),
        );
        let results = self
            .on_hosts(hosts, progress, move |id, _| GatewayMsg::Stage {
                id,
                app: app.clone(),
                version,
                digest: digest.clone(),
                size,
                manifest: manifest.clone(),
                by: by.clone(),
            })
            .await;
        let failures: Vec<String> = results
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{h} ({e})")))
            .collect();
        for (h, r) in &results {
            if r.is_ok() {
                let version = rel.version;
                let _ = progress.send(Progress::new(h.clone(), Step::Staged { version }));
            }
        }
        if failures.is_empty() {
            // The longest compile of any host (0: every host had it cached).
            Ok(results
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok().copied().flatten())
                .max()
                .unwrap_or(0))
        } else {
            Err(failures.join(", "))
        }
    }

    /// Activates `version` on each placed host with its share of replicas.
    async fn activate(
        &self,
        app: &str,
        version: Version,
        placement: &BTreeMap<String, u32>,
        by: &str,
        progress: &ProgressTx,
    ) -> Vec<(String, Result<Option<u64>, String>)> {
        let (a, by, p) = (app.to_string(), by.to_string(), placement.clone());
        let results = self
            .on_hosts(
                placement.keys().cloned().collect(),
                progress,
                move |id, host| GatewayMsg::Activate {
                    id,
                    app: a.clone(),
                    version,
                    replicas: p.get(host).copied().unwrap_or(0),
                    by: by.clone(),
                },
            )
            .await;
        for (h, r) in &results {
            let step = match r {
                Ok(_) => Step::Active { version },
                Err(e) => Step::Failed { reason: e.clone() },
            };
            let _ = progress.send(Progress::new(h.clone(), step));
        }
        results
    }

    /// Removes `app` from hosts that no longer run it.
    async fn remove_from(&self, app: &str, hosts: Vec<String>, by: &str, progress: &ProgressTx) {
        let (a, by) = (app.to_string(), by.to_string());
        let results = self
            .on_hosts(hosts, progress, move |id, _| GatewayMsg::Remove {
                id,
                app: a.clone(),
                by: by.clone(),
            })
            .await;
        for (h, r) in results {
            let app = app.to_string();
            let step = match r {
                Ok(_) => Step::Removed { app },
                Err(reason) => Step::RemoveFailed { app, reason },
            };
            let _ = progress.send(Progress::new(h, step));
        }
    }
}

mod artifacts;
mod canary;
mod capability;
mod hosts;
mod ops;
mod registry;
pub mod tallies;
mod view;

// What hosts report, applied by one task.
mod events;
