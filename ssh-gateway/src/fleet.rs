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
use std::time::{Duration, Instant};

use schema::artifact::inspect;
use schema::command::DeployArgs;
use schema::names::validate_app_name;
use schema::tunnel::{DOWN_AFTER_SECS, GatewayMsg, Heartbeat, Hello, HostApp, HostEvent};
use schema::{
    AppKind, AuditEntry, DeployOutcome, HostRow, PsRow, ReleaseRow, ReleaseState, RollbackOutcome,
    ScaleOutcome, Version,
};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::db::{Db, DbError};
use crate::placement::{self, Candidate, PlacementError};
use crate::store::{self, AppRecord, HostRecord, ReleaseRecord};
use crate::tunnel::HostConn;

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
    #[error("{app} has no release {version}; `releases {app}` lists them")]
    NoSuchRelease { app: String, version: Version },
    #[error("{app} {version} is already the active release")]
    AlreadyActive { app: String, version: Version },
    #[error(
        "{app} has no earlier healthy release to roll back to; `releases {app}` lists them, and `rollback {app} --to vN` picks one"
    )]
    NothingToRollBackTo { app: String },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("{0}")]
    Io(String),
}

/// A line of progress of a fleet operation, from one host or the gateway.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress {
    pub host: String,
    pub line: String,
}

pub type ProgressTx = mpsc::UnboundedSender<Progress>;

/// What the gateway last heard from a host.
#[derive(Debug, Clone)]
struct Live {
    up: bool,
    seen: Instant,
    seen_ms: i64,
    apps: Vec<HostApp>,
    hb: Option<Heartbeat>,
}

pub struct Fleet {
    pub name: String,
    db: Db,
    dir: PathBuf,
    pub max_artifact_bytes: u64,
    conns: Mutex<HashMap<String, Arc<HostConn>>>,
    live: Mutex<HashMap<String, Live>>,
    op_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    host_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Host names as they (re)connect: log followers resume on them.
    connected: broadcast::Sender<String>,
    /// Bumped on every change of state a console shows.
    pub changed: watch::Sender<u64>,
    /// Local rollbacks reported by hosts, adopted at their next report.
    adopt: Mutex<HashSet<(String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

impl Fleet {
    pub async fn open(name: String, dir: PathBuf, db: Db) -> Result<Arc<Fleet>, FleetError> {
        std::fs::create_dir_all(dir.join("artifacts"))
            .map_err(|e| FleetError::Io(format!("cannot create {}: {e}", dir.display())))?;
        let failed = db.call(|c| store::fail_interrupted_stages(c)).await?;
        if failed > 0 {
            tracing::warn!(failed, "releases interrupted mid-deploy were marked failed");
        }
        // Hosts known from before a restart count as up until they have had
        // the usual time to report: their replicas stay where they are.
        let known = db.call(|c| store::hosts(c)).await?;
        let now = schema::time::now_millis();
        let live: HashMap<String, Live> = known
            .into_iter()
            .map(|h| {
                (
                    h.name,
                    Live {
                        up: true,
                        seen: Instant::now(),
                        seen_ms: now,
                        apps: Vec::new(),
                        hb: None,
                    },
                )
            })
            .collect();
        let fleet = Arc::new(Fleet {
            name,
            db,
            dir,
            max_artifact_bytes: 256 << 20,
            conns: Mutex::new(HashMap::new()),
            live: Mutex::new(live),
            op_locks: Mutex::new(HashMap::new()),
            host_locks: Mutex::new(HashMap::new()),
            connected: broadcast::channel(64).0,
            changed: watch::channel(0).0,
            adopt: Mutex::new(HashSet::new()),
        });
        tokio::spawn(monitor(Arc::downgrade(&fleet)));
        Ok(fleet)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn artifact_path(&self, digest: &str) -> PathBuf {
        self.dir.join("artifacts").join(format!("{digest}.wasm"))
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn conn(&self, host: &str) -> Option<Arc<HostConn>> {
        lock(&self.conns)
            .get(host)
            .cloned()
            .filter(|c| !c.is_closed())
    }

    fn is_up(&self, host: &str) -> bool {
        lock(&self.live).get(host).is_some_and(|l| l.up)
    }

    async fn op_lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = lock(&self.op_locks)
            .entry(key.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    async fn host_lock(&self, host: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = lock(&self.host_locks)
            .entry(host.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    pub async fn audit(
        &self,
        who: &str,
        action: &str,
        app: Option<&str>,
        detail: impl Into<String>,
    ) {
        let (w, a, ap, d, now) = (
            who.to_string(),
            action.to_string(),
            app.map(String::from),
            detail.into(),
            schema::time::now_millis(),
        );
        if let Err(e) = self
            .db
            .call(move |c| store::audit(c, now, &w, &a, ap.as_deref(), &d))
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
                let (ptx, mut prx) = mpsc::unbounded_channel::<String>();
                let fwd = {
                    let (progress, host) = (progress.clone(), host.clone());
                    tokio::spawn(async move {
                        while let Some(line) = prx.recv().await {
                            let _ = progress.send(Progress {
                                host: host.clone(),
                                line,
                            });
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
    ) -> Result<(), String> {
        let size = std::fs::metadata(self.artifact_path(&rel.digest))
            .map(|m| m.len())
            .unwrap_or(0);
        let (app, version, digest, manifest, by) = (
            rel.app.clone(),
            rel.version,
            rel.digest.clone(),
            rel.manifest.clone(),
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
                let _ = progress.send(Progress {
                    host: h.clone(),
                    line: format!("staged {}", rel.version),
                });
            }
        }
        if failures.is_empty() {
            Ok(())
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
            let line = match r {
                Ok(_) => format!("active {version}"),
                Err(e) => format!("failed: {e}"),
            };
            let _ = progress.send(Progress {
                host: h.clone(),
                line,
            });
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
            let line = match r {
                Ok(_) => format!("removed {app}"),
                Err(e) => format!("could not remove {app}: {e}"),
            };
            let _ = progress.send(Progress { host: h, line });
        }
    }

    /// A new release of an app, staged on every chosen host, then switched.
    pub async fn deploy(
        &self,
        who: &str,
        args: &DeployArgs,
        bytes: Vec<u8>,
        progress: &ProgressTx,
    ) -> Result<DeployOutcome, FleetError> {
        let r = self.deploy_inner(who, args, bytes, progress).await;
        if let Err(e) = &r {
            self.audit(who, "deploy", args.app.as_deref(), format!("refused: {e}"))
                .await;
        }
        self.bump();
        r
    }

    async fn deploy_inner(
        &self,
        who: &str,
        args: &DeployArgs,
        bytes: Vec<u8>,
        progress: &ProgressTx,
    ) -> Result<DeployOutcome, FleetError> {
        if args.manifest.is_some() {
            return Err(FleetError::Refused(
                "--manifest is read where the command is typed: use `hostd deploy --manifest FILE --gateway …`, which sends its fields as flags".into(),
            ));
        }
        let name = args
            .app
            .clone()
            .ok_or_else(|| FleetError::Refused("deploy needs an APP name".into()))?;
        validate_app_name(&name)?;
        if bytes.len() as u64 > self.max_artifact_bytes {
            return Err(FleetError::Refused(format!(
                "the artifact is {} MiB, more than the gateway's limit of {} MiB",
                bytes.len() >> 20,
                self.max_artifact_bytes >> 20
            )));
        }
        let exports = inspect(&bytes)?;
        let manifest = args.to_manifest(exports.inferred_kind().unwrap_or(AppKind::Worker))?;
        exports.check(manifest.kind)?;
        let _op = self.op_lock(&name).await;
        let n = name.clone();
        let existing = self.db.call(move |c| store::get_app(c, &n)).await?;
        let replicas = manifest
            .replicas
            .or(existing.as_ref().map(|a| a.replicas))
            .unwrap_or(1);
        if manifest.kind == AppKind::Job && replicas > 1 {
            return Err(FleetError::Refused(format!(
                "{name} is scaled to {replicas}, but a job runs one at a time: pass --replicas 1 (or 0 to pause)"
            )));
        }
        let candidates = self.candidates(&name, true).await?;
        let placement = placement::place(
            &name,
            manifest.kind,
            replicas,
            &manifest.labels,
            &candidates,
        )?;
        // Store the artifact, content-addressed.
        let digest = sha256_hex(&bytes);
        let path = self.artifact_path(&digest);
        if std::fs::read(&path)
            .map(|b| sha256_hex(&b) != digest)
            .unwrap_or(true)
        {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &bytes)
                .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| {
                    FleetError::Io(format!(
                        "cannot store the artifact in {}: {e}",
                        path.display()
                    ))
                })?;
        }
        let (d, size, now) = (
            digest.clone(),
            bytes.len() as u64,
            schema::time::now_millis(),
        );
        self.db
            .call(move |c| store::record_artifact(c, &d, size, now))
            .await?;
        let (m, d, w) = (manifest.clone(), digest.clone(), who.to_string());
        let version = self
            .db
            .call(move |c| store::insert_release(c, &m, &d, &w, replicas, now))
            .await?;
        let kind = manifest.kind;
        let rel = ReleaseRecord {
            app: name.clone(),
            version,
            digest: digest.clone(),
            kind,
            manifest,
            created: now,
            by: who.to_string(),
            state: ReleaseState::Staged,
            detail: None,
        };
        let chosen: Vec<String> = placement.keys().cloned().collect();
        let _ = progress.send(Progress {
            host: "gateway".into(),
            line: format!(
                "{name} {version} (sha256:{}): staging on {}",
                &digest[..12],
                if chosen.is_empty() {
                    "no host (0 replicas)".into()
                } else {
                    chosen.join(", ")
                }
            ),
        });
        if let Err(failures) = self.stage(&rel, chosen.clone(), who, progress).await {
            let (a, detail) = (name.clone(), format!("staging failed on {failures}"));
            self.db
                .call(move |c| {
                    store::set_release_state(c, &a, version, ReleaseState::Failed, Some(&detail))
                })
                .await?;
            return Err(FleetError::Staging {
                app: name,
                version,
                failures,
            });
        }
        // Every chosen host has staged: switch.
        let before = self.placement_of(&name).await?;
        let (a, p) = (name.clone(), placement.clone());
        let prev = self
            .db
            .call(move |c| {
                store::activate(
                    c,
                    &a,
                    version,
                    kind,
                    replicas,
                    &p,
                    schema::time::now_millis(),
                )
            })
            .await?;
        let results = self
            .activate(&name, version, &placement, who, progress)
            .await;
        let gone: Vec<String> = before
            .keys()
            .filter(|h| !placement.contains_key(*h))
            .cloned()
            .collect();
        if !gone.is_empty() {
            self.remove_from(&name, gone, who, progress).await;
        }
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{h} ({e})")))
            .collect();
        if !failed.is_empty() {
            let why = format!("activation failed on {}", failed.join(", "));
            let outcome = self.fail_release(&name, version, &why, who, progress).await;
            return Err(FleetError::Activation(format!(
                "{name} {version} failed: {why}; {outcome}"
            )));
        }
        let detail = format!(
            "{version} sha256:{} ({kind}, {replicas} replica{} on {}){}",
            &digest[..12],
            if replicas == 1 { "" } else { "s" },
            if chosen.is_empty() {
                "no host".to_string()
            } else {
                chosen.join(", ")
            },
            prev.map(|p| format!(", replacing {p}")).unwrap_or_default()
        );
        self.audit(who, "deploy", Some(&name), &detail).await;
        let compile_ms = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().copied().flatten())
            .max()
            .unwrap_or(0);
        Ok(DeployOutcome {
            app: name,
            version,
            digest: format!("sha256:{digest}"),
            kind,
            state: ReleaseState::Active,
            compile_ms,
            replicas,
        })
    }

    /// Marks `version` failed and puts the newest earlier healthy release
    /// back on every host. Returns what happened, for the operator.
    async fn fail_release(
        &self,
        app: &str,
        version: Version,
        why: &str,
        who: &str,
        progress: &ProgressTx,
    ) -> String {
        let target = self.rollback_target(app, None).await.ok();
        let outcome = match target {
            Some(t) => match self.switch(app, &t, who, progress).await {
                Ok(_) => format!("rolled back to {} on every host", t.version),
                Err(e) => format!("could not roll back to {}: {e}", t.version),
            },
            None => format!("no earlier healthy release to roll back to, so {version} stays"),
        };
        let (a, d) = (app.to_string(), why.to_string());
        let _ = self
            .db
            .call(move |c| store::set_release_state(c, &a, version, ReleaseState::Failed, Some(&d)))
            .await;
        self.audit(
            who,
            "auto-rollback",
            Some(app),
            format!("{version}: {why}; {outcome}"),
        )
        .await;
        outcome
    }

    async fn rollback_target(
        &self,
        app: &str,
        to: Option<Version>,
    ) -> Result<ReleaseRecord, FleetError> {
        let rec = self.app(app).await?;
        let a = app.to_string();
        let releases = self.db.call(move |c| store::releases(c, &a)).await?;
        match to {
            Some(v) => {
                let r = releases
                    .into_iter()
                    .find(|r| r.version == v)
                    .ok_or_else(|| FleetError::NoSuchRelease {
                        app: app.to_string(),
                        version: v,
                    })?;
                if rec.active == Some(v) && r.state == ReleaseState::Active {
                    return Err(FleetError::AlreadyActive {
                        app: app.to_string(),
                        version: v,
                    });
                }
                Ok(r)
            }
            None => {
                let below = rec.active.unwrap_or(Version(u32::MAX));
                releases
                    .into_iter()
                    .find(|r| r.version < below && r.state == ReleaseState::Superseded)
                    .ok_or_else(|| FleetError::NothingToRollBackTo {
                        app: app.to_string(),
                    })
            }
        }
    }

    /// Makes `target` active on every placed host (staging it first where a
    /// host does not keep it), then records the switch.
    async fn switch(
        &self,
        app: &str,
        target: &ReleaseRecord,
        who: &str,
        progress: &ProgressTx,
    ) -> Result<Option<Version>, FleetError> {
        let rec = self.app(app).await?;
        let mut placement = self.placement_of(app).await?;
        if placement.is_empty() && rec.replicas > 0 {
            let c = self.candidates(app, true).await?;
            placement =
                placement::place(app, target.kind, rec.replicas, &target.manifest.labels, &c)?;
        }
        // Hosts away now follow when they reconnect (see `reconcile`).
        let reachable: BTreeMap<String, u32> = placement
            .iter()
            .filter(|(h, _)| self.conn(h).is_some())
            .map(|(h, n)| (h.clone(), *n))
            .collect();
        let lacking: Vec<String> = reachable
            .keys()
            .filter(|h| !self.host_keeps(h, app, target.version))
            .cloned()
            .collect();
        if !lacking.is_empty() {
            self.stage(target, lacking, who, progress)
                .await
                .map_err(|f| {
                    FleetError::Activation(format!("staging {} failed on {f}", target.version))
                })?;
        }
        let results = self
            .activate(app, target.version, &reachable, who, progress)
            .await;
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{h} ({e})")))
            .collect();
        let (a, v, kind, replicas, p) = (
            app.to_string(),
            target.version,
            target.kind,
            rec.replicas,
            placement.clone(),
        );
        let prev = self
            .db
            .call(move |c| {
                store::activate(c, &a, v, kind, replicas, &p, schema::time::now_millis())
            })
            .await?;
        if !failed.is_empty() {
            return Err(FleetError::Activation(format!(
                "{} failed on {}",
                target.version,
                failed.join(", ")
            )));
        }
        Ok(prev)
    }

    fn host_keeps(&self, host: &str, app: &str, v: Version) -> bool {
        lock(&self.live)
            .get(host)
            .and_then(|l| {
                l.apps
                    .iter()
                    .find(|a| a.app == app)
                    .map(|a| a.kept.contains(&v) || a.active == Some(v))
            })
            .unwrap_or(false)
    }

    /// An earlier release active again on every host, from kept code.
    pub async fn rollback(
        &self,
        who: &str,
        app: &str,
        to: Option<Version>,
        progress: &ProgressTx,
    ) -> Result<RollbackOutcome, FleetError> {
        let started = Instant::now();
        let r = async {
            let _op = self.op_lock(app).await;
            let target = self.rollback_target(app, to).await?;
            let from = self.switch(app, &target, who, progress).await?;
            Ok::<_, FleetError>((from, target.version))
        }
        .await;
        self.bump();
        match r {
            Ok((from, to)) => {
                let detail = format!(
                    "{} -> {to}",
                    from.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
                );
                self.audit(who, "rollback", Some(app), &detail).await;
                Ok(RollbackOutcome {
                    app: app.to_string(),
                    from,
                    to,
                    switch_ms: started.elapsed().as_millis() as u64,
                })
            }
            Err(e) => {
                if !matches!(e, FleetError::UnknownApp(_)) {
                    self.audit(who, "rollback", Some(app), format!("refused: {e}"))
                        .await;
                }
                Err(e)
            }
        }
    }

    /// New replica count: a new placement, no new release.
    pub async fn scale(
        &self,
        who: &str,
        app: &str,
        replicas: u32,
        progress: &ProgressTx,
    ) -> Result<ScaleOutcome, FleetError> {
        let r = self.scale_inner(who, app, replicas, progress).await;
        if let Err(e) = &r
            && !matches!(e, FleetError::UnknownApp(_))
        {
            self.audit(who, "scale", Some(app), format!("refused: {e}"))
                .await;
        }
        self.bump();
        r
    }

    async fn scale_inner(
        &self,
        who: &str,
        app: &str,
        replicas: u32,
        progress: &ProgressTx,
    ) -> Result<ScaleOutcome, FleetError> {
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        if replicas > schema::manifest::MAX_REPLICAS {
            return Err(FleetError::Refused(format!(
                "{replicas} replicas is more than the limit of {}",
                schema::manifest::MAX_REPLICAS
            )));
        }
        if rec.kind == AppKind::Job && replicas > 1 {
            return Err(FleetError::Refused(format!(
                "{app} is a job and runs one at a time: scale it to 1, or 0 to pause its schedule"
            )));
        }
        let Some(active) = rec.active else {
            return Err(FleetError::Refused(format!(
                "{app} has no active release to scale"
            )));
        };
        let a = app.to_string();
        let rel = self
            .db
            .call(move |c| store::release(c, &a, active))
            .await?
            .ok_or_else(|| FleetError::UnknownApp(app.to_string()))?;
        let before = self.placement_of(app).await?;
        let c = self.candidates(app, true).await?;
        let after = if replicas == 0 {
            BTreeMap::new()
        } else {
            placement::place(app, rel.kind, replicas, &rel.manifest.labels, &c)?
        };
        self.apply_placement(&rel, &before, &after, who, progress)
            .await?;
        let (a, p) = (app.to_string(), after.clone());
        self.db
            .call(move |c| store::set_scale(c, &a, replicas, &p, schema::time::now_millis()))
            .await?;
        let detail = format!("{} -> {replicas}", rec.replicas);
        self.audit(who, "scale", Some(app), &detail).await;
        Ok(ScaleOutcome {
            app: app.to_string(),
            from: rec.replicas,
            replicas,
        })
    }

    /// Moves an app from one placement to another: new hosts stage and
    /// activate, changed ones rescale, dropped ones remove it.
    async fn apply_placement(
        &self,
        rel: &ReleaseRecord,
        before: &BTreeMap<String, u32>,
        after: &BTreeMap<String, u32>,
        who: &str,
        progress: &ProgressTx,
    ) -> Result<(), FleetError> {
        // Hosts away now follow when they reconnect (see `reconcile`).
        let before: BTreeMap<String, u32> = before
            .iter()
            .filter(|(h, _)| self.conn(h).is_some())
            .map(|(h, n)| (h.clone(), *n))
            .collect();
        let after: BTreeMap<String, u32> = after
            .iter()
            .filter(|(h, _)| self.conn(h).is_some())
            .map(|(h, n)| (h.clone(), *n))
            .collect();
        let (before, after) = (&before, &after);
        let added: Vec<String> = after
            .keys()
            .filter(|h| !self.host_keeps(h, &rel.app, rel.version))
            .cloned()
            .collect();
        if !added.is_empty() {
            self.stage(rel, added, who, progress).await.map_err(|f| {
                FleetError::Activation(format!("staging {} failed on {f}", rel.version))
            })?;
        }
        let results = self
            .activate(&rel.app, rel.version, after, who, progress)
            .await;
        let gone: Vec<String> = before
            .keys()
            .filter(|h| !after.contains_key(*h))
            .cloned()
            .collect();
        if !gone.is_empty() {
            self.remove_from(&rel.app, gone, who, progress).await;
        }
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{h} ({e})")))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(FleetError::Activation(format!(
                "failed on {}",
                failed.join(", ")
            )))
        }
    }

    /// Stops an app everywhere and forgets it; the audit log keeps its history.
    pub async fn rm(&self, who: &str, app: &str, progress: &ProgressTx) -> Result<(), FleetError> {
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        let mut hosts: Vec<String> = self.placement_of(app).await?.into_keys().collect();
        for (h, l) in lock(&self.live).iter() {
            if l.apps.iter().any(|a| a.app == app) && !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
        let connected: Vec<String> = hosts
            .into_iter()
            .filter(|h| self.conn(h).is_some())
            .collect();
        self.remove_from(app, connected, who, progress).await;
        let a = app.to_string();
        let n = self.db.call(move |c| store::delete_app(c, &a)).await?;
        self.audit(
            who,
            "rm",
            Some(app),
            format!(
                "removed ({n} release{}, active {})",
                if n == 1 { "" } else { "s" },
                rec.active
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "none".into())
            ),
        )
        .await;
        self.bump();
        Ok(())
    }

    pub async fn releases(&self, app: &str) -> Result<Vec<ReleaseRow>, FleetError> {
        self.app(app).await?;
        let a = app.to_string();
        let rs = self.db.call(move |c| store::releases(c, &a)).await?;
        Ok(rs.iter().map(ReleaseRecord::to_row).collect())
    }

    pub async fn audit_tail(&self, tail: u64) -> Result<Vec<AuditEntry>, FleetError> {
        Ok(self.db.call(move |c| store::audit_tail(c, tail)).await?)
    }

    pub async fn hosts(&self) -> Result<Vec<HostRow>, FleetError> {
        let hosts = self.db.call(|c| store::hosts(c)).await?;
        let live = lock(&self.live).clone();
        Ok(hosts
            .into_iter()
            .map(|h| {
                let l = live.get(&h.name);
                let hb = l.and_then(|l| l.hb.as_ref());
                HostRow {
                    state: if l.is_some_and(|l| l.up) {
                        "up"
                    } else {
                        "down"
                    }
                    .into(),
                    last_seen: schema::time::rfc3339(l.map(|l| l.seen_ms).unwrap_or(h.last_seen)),
                    apps: l
                        .map(|l| l.apps.iter().filter(|a| a.active.is_some()).count() as u32)
                        .unwrap_or(0),
                    instances: hb.map(|h| h.instances).unwrap_or(0),
                    memory_bytes: hb.map(|h| h.memory_bytes).unwrap_or(0),
                    name: h.name,
                    arch: h.arch,
                    labels: h.labels,
                }
            })
            .collect())
    }

    /// Apps across the fleet (one row each, `host` listing where it runs),
    /// or one app's instances on every host.
    pub async fn ps(&self, app: Option<&str>) -> Result<Vec<PsRow>, FleetError> {
        let (apps, placements) = self
            .db
            .call(|c| Ok((store::list_apps(c)?, store::placements(c)?)))
            .await?;
        let live = lock(&self.live).clone();
        let rows_of = |app: &str| -> Vec<PsRow> {
            live.iter()
                .filter(|(_, l)| l.up)
                .filter_map(|(_, l)| l.hb.as_ref())
                .flat_map(|hb| hb.ps.iter().filter(|r| r.app == app).cloned())
                .collect()
        };
        match app {
            Some(name) => {
                let rec = apps
                    .iter()
                    .find(|a| a.name == name)
                    .ok_or_else(|| FleetError::UnknownApp(name.to_string()))?;
                let _ = rec;
                let mut rows: Vec<PsRow> = live
                    .values()
                    .filter(|l| l.up)
                    .filter_map(|l| l.hb.as_ref())
                    .flat_map(|hb| hb.instances_of(name))
                    .collect();
                rows.sort_by(|a, b| (&a.host, &a.instance).cmp(&(&b.host, &b.instance)));
                Ok(rows)
            }
            None => Ok(apps
                .iter()
                .map(|a| {
                    let placed = placements.get(&a.name).cloned().unwrap_or_default();
                    let rows = rows_of(&a.name);
                    let running = rows.iter().map(|r| r.running).sum();
                    let restarts = rows.iter().map(|r| r.restarts).sum();
                    let down: Vec<&String> = placed
                        .keys()
                        .filter(|h| !live.get(*h).is_some_and(|l| l.up))
                        .collect();
                    let state = if rows.iter().any(|r| r.state == "crashloop") {
                        "crashloop".to_string()
                    } else if !down.is_empty() {
                        "degraded".to_string()
                    } else if let Some(r) = rows.iter().find(|r| {
                        r.state != "running" && r.state != "serving" && r.state != "scheduled"
                    }) {
                        r.state.clone()
                    } else {
                        rows.first().map(|r| r.state.clone()).unwrap_or_else(|| {
                            if a.replicas == 0 {
                                "stopped".into()
                            } else {
                                "pending".into()
                            }
                        })
                    };
                    PsRow {
                        app: a.name.clone(),
                        kind: a.kind,
                        release: a.active,
                        replicas: a.replicas,
                        running,
                        host: placed.keys().cloned().collect::<Vec<_>>().join(","),
                        state,
                        restarts,
                        instance: None,
                        started: None,
                        next_run: rows.iter().find_map(|r| r.next_run.clone()),
                        rps: rows.iter().filter_map(|r| r.rps).reduce(|a, b| a + b),
                        detail: if down.is_empty() {
                            rows.iter().find_map(|r| r.detail.clone())
                        } else {
                            Some(format!(
                                "down: {}",
                                down.iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            ))
                        },
                    }
                })
                .collect()),
        }
    }

    /// Hosts that run (or should run) `app` now, connected.
    pub fn hosts_with(&self, app: &str, placement: &BTreeMap<String, u32>) -> Vec<String> {
        let mut hosts: Vec<String> = placement.keys().cloned().collect();
        for (h, l) in lock(&self.live).iter() {
            if l.apps.iter().any(|a| a.app == app) && !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
        hosts.sort();
        hosts
    }

    pub async fn check_app(&self, app: &str) -> Result<BTreeMap<String, u32>, FleetError> {
        self.app(app).await?;
        self.placement_of(app).await
    }

    pub fn conn_of(&self, host: &str) -> Option<Arc<HostConn>> {
        self.conn(host)
    }

    pub fn subscribe_connects(&self) -> broadcast::Receiver<String> {
        self.connected.subscribe()
    }

    // ----- hosts coming and going -----

    /// A host said hello: record it. Refuses a second live connection of
    /// the same host name from another key.
    pub async fn host_connected(&self, conn: Arc<HostConn>, hello: &Hello) -> Result<(), String> {
        if let Some(old) = self.conn(&hello.name)
            && old.key != conn.key
        {
            return Err(format!(
                "a host named {} is already connected with the key {}; give this host another --name",
                hello.name, old.key
            ));
        }
        let rec = HostRecord {
            name: hello.name.clone(),
            key: conn.key.clone(),
            arch: hello.arch.clone(),
            engine: hello.engine.clone(),
            labels: {
                let mut l = hello.labels.clone();
                l.insert("arch".into(), hello.arch.clone());
                l
            },
            cpus: hello.cpus,
            memory: hello.memory_bytes,
            last_seen: schema::time::now_millis(),
        };
        let now = rec.last_seen;
        self.db
            .call(move |c| store::upsert_host(c, &rec, now))
            .await
            .map_err(|e| e.to_string())?;
        lock(&self.conns).insert(hello.name.clone(), conn);
        lock(&self.live).insert(
            hello.name.clone(),
            Live {
                up: true,
                seen: Instant::now(),
                seen_ms: now,
                apps: hello.apps.clone(),
                hb: None,
            },
        );
        tracing::info!(host = %hello.name, arch = %hello.arch, apps = hello.apps.len(), "host connected");
        Ok(())
    }

    /// After the welcome: adopt break-glass actions, then converge.
    pub fn after_hello(self: Arc<Self>, conn: Arc<HostConn>, hello: Hello) {
        tokio::spawn(async move {
            for a in &hello.local_actions {
                self.record_local_action(&hello.name, a).await;
            }
            self.adopt_local_rollbacks(&hello.name).await;
            let _ = self.connected.send(hello.name.clone());
            self.rebalance("gateway").await;
            self.reconcile(&conn.name).await;
            self.bump();
        });
    }

    pub async fn host_disconnected(&self, conn: &Arc<HostConn>) {
        let mut conns = lock(&self.conns);
        if conns.get(&conn.name).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            conns.remove(&conn.name);
        }
        drop(conns);
        self.bump();
    }

    pub async fn heartbeat(self: &Arc<Self>, host: &str, hb: Heartbeat) {
        let now = schema::time::now_millis();
        let was_down = {
            let mut live = lock(&self.live);
            let l = live.entry(host.to_string()).or_insert_with(|| Live {
                up: false,
                seen: Instant::now(),
                seen_ms: now,
                apps: Vec::new(),
                hb: None,
            });
            let was_down = !l.up;
            l.up = true;
            l.seen = Instant::now();
            l.seen_ms = now;
            l.apps = hb.apps.clone();
            l.hb = Some(hb);
            was_down
        };
        let h = host.to_string();
        let _ = self.db.call(move |c| store::touch_host(c, &h, now)).await;
        self.adopt_local_rollbacks(host).await;
        if was_down {
            tracing::info!(host, "host is up again");
            let this = self.clone();
            tokio::spawn(async move { this.rebalance("gateway").await });
        }
        self.bump();
    }

    async fn record_local_action(&self, host: &str, a: &AuditEntry) {
        self.audit(
            &format!("{}@{host}", a.key),
            &a.action,
            a.app.as_deref(),
            format!(
                "{} (on {host} at {}, while the gateway was away)",
                a.detail, a.time
            ),
        )
        .await;
        if a.action == "rollback"
            && let Some(app) = &a.app
            && !a.detail.starts_with("refused")
        {
            lock(&self.adopt).insert((host.to_string(), app.clone()));
        }
    }

    /// A host rolled an app back locally: that release becomes the fleet's
    /// active one, and every other host follows.
    async fn adopt_local_rollbacks(&self, host: &str) {
        let pending: Vec<String> = {
            let mut adopt = lock(&self.adopt);
            let mine: Vec<(String, String)> =
                adopt.iter().filter(|(h, _)| h == host).cloned().collect();
            for k in &mine {
                adopt.remove(k);
            }
            mine.into_iter().map(|(_, a)| a).collect()
        };
        for app in pending {
            let reported = lock(&self.live)
                .get(host)
                .and_then(|l| l.apps.iter().find(|a| a.app == app).and_then(|a| a.active));
            let Some(v) = reported else { continue };
            let Ok(rec) = self.app(&app).await else {
                continue;
            };
            if rec.active == Some(v) {
                continue;
            }
            let a = app.clone();
            let Ok(Some(target)) = self.db.call(move |c| store::release(c, &a, v)).await else {
                continue;
            };
            let (tx, _rx) = mpsc::unbounded_channel();
            let _op = self.op_lock(&app).await;
            match self
                .switch(&app, &target, &format!("local@{host}"), &tx)
                .await
            {
                Ok(from) => {
                    let d = format!(
                        "{} -> {v} fleet-wide, following a local rollback on {host}",
                        from.map(|f| f.to_string()).unwrap_or_else(|| "none".into())
                    );
                    self.audit("gateway", "rollback", Some(&app), d).await;
                }
                Err(e) => tracing::warn!(app, host, error = %e, "could not adopt a local rollback"),
            }
        }
    }

    pub async fn host_event(self: Arc<Self>, host: &str, e: HostEvent) {
        match e {
            HostEvent::LocalAction(a) => {
                self.record_local_action(host, &a).await;
            }
            HostEvent::Crashloop {
                app,
                version,
                detail,
            } => {
                let (a, d) = (app.clone(), detail.clone());
                let _ = self
                    .db
                    .call(move |c| {
                        store::set_release_state(c, &a, version, ReleaseState::Crashloop, Some(&d))
                    })
                    .await;
                self.audit(
                    &format!("hostd@{host}"),
                    "crashloop",
                    Some(&app),
                    format!("{version} on {host}: {detail}"),
                )
                .await;
            }
            HostEvent::HealthFailed {
                app,
                version,
                detail,
                ..
            } => {
                let this = self.clone();
                let host = host.to_string();
                tokio::spawn(async move {
                    let _op = this.op_lock(&app).await;
                    let Ok(rec) = this.app(&app).await else {
                        return;
                    };
                    if rec.active != Some(version) {
                        return;
                    }
                    let (tx, _rx) = mpsc::unbounded_channel();
                    let why = format!("health check failed on {host}: {detail}");
                    this.fail_release(&app, version, &why, "gateway", &tx).await;
                });
            }
        }
        self.bump();
    }

    /// Recomputes every app's placement over the hosts that are up, and
    /// applies what changed. Quiet when nothing did.
    pub async fn rebalance(&self, who: &str) {
        let Ok(apps) = self.db.call(|c| store::list_apps(c)).await else {
            return;
        };
        for app in apps {
            let Some(active) = app.active else { continue };
            let _op = self.op_lock(&app.name).await;
            let a = app.name.clone();
            let Ok(Some(rel)) = self.db.call(move |c| store::release(c, &a, active)).await else {
                continue;
            };
            let Ok(before) = self.placement_of(&app.name).await else {
                continue;
            };
            let Ok(c) = self.candidates(&app.name, false).await else {
                continue;
            };
            let after =
                match placement::place(&app.name, app.kind, app.replicas, &rel.manifest.labels, &c)
                {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(app = %app.name, error = %e, "cannot place");
                        continue;
                    }
                };
            if after == before {
                continue;
            }
            tracing::info!(app = %app.name, ?before, ?after, "placement changes");
            let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
            let log = tokio::spawn(async move {
                while let Some(p) = rx.recv().await {
                    tracing::info!(host = %p.host, "{}", p.line);
                }
            });
            let r = self.apply_placement(&rel, &before, &after, who, &tx).await;
            drop(tx);
            let _ = log.await;
            let (a, p) = (app.name.clone(), after.clone());
            let _ = self.db.call(move |c| store::set_placement(c, &a, &p)).await;
            let detail = format!("{} -> {}", fmt_placement(&before), fmt_placement(&after));
            match r {
                Ok(()) => self.audit(who, "replace", Some(&app.name), detail).await,
                Err(e) => {
                    self.audit(who, "replace", Some(&app.name), format!("{detail}: {e}"))
                        .await
                }
            }
        }
        self.bump();
    }

    /// Brings one host to the desired state: what it should run, at the
    /// version and scale it should, and nothing the gateway removed.
    pub async fn reconcile(&self, host: &str) {
        let _h = self.host_lock(host).await;
        let Some(conn) = self.conn(host) else { return };
        let Ok((apps, placements)) = self
            .db
            .call(|c| Ok((store::list_apps(c)?, store::placements(c)?)))
            .await
        else {
            return;
        };
        let reported: HashMap<String, HostApp> = lock(&self.live)
            .get(host)
            .map(|l| l.apps.iter().map(|a| (a.app.clone(), a.clone())).collect())
            .unwrap_or_default();
        let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
        let log = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                tracing::info!(host = %p.host, "{}", p.line);
            }
        });
        for app in &apps {
            let want = placements.get(&app.name).and_then(|p| p.get(host)).copied();
            let have = reported.get(&app.name);
            match (want, app.active) {
                (Some(n), Some(v)) => {
                    if have.is_some_and(|h| h.active == Some(v) && h.replicas == n) {
                        continue;
                    }
                    let _op = self.op_lock(&app.name).await;
                    let a = app.name.clone();
                    let Ok(Some(rel)) = self.db.call(move |c| store::release(c, &a, v)).await
                    else {
                        continue;
                    };
                    if !have.is_some_and(|h| h.kept.contains(&v) || h.active == Some(v))
                        && let Err(e) = self
                            .stage(&rel, vec![host.to_string()], "gateway", &tx)
                            .await
                    {
                        tracing::warn!(host, app = %app.name, error = %e, "reconcile: staging failed");
                        continue;
                    }
                    let p = BTreeMap::from([(host.to_string(), n)]);
                    self.activate(&app.name, v, &p, "gateway", &tx).await;
                }
                _ => {
                    if have.is_some() {
                        let _op = self.op_lock(&app.name).await;
                        self.remove_from(&app.name, vec![host.to_string()], "gateway", &tx)
                            .await;
                    }
                }
            }
        }
        drop(tx);
        let _ = log.await;
        let _ = conn;
    }
}

fn fmt_placement(p: &BTreeMap<String, u32>) -> String {
    if p.is_empty() {
        return "nowhere".into();
    }
    p.iter()
        .map(|(h, n)| format!("{h}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Marks silent hosts down and re-places their replicas.
async fn monitor(fleet: std::sync::Weak<Fleet>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(fleet) = fleet.upgrade() else { return };
        let newly_down: Vec<String> = {
            let mut live = lock(&fleet.live);
            live.iter_mut()
                .filter(|(_, l)| l.up && l.seen.elapsed() > Duration::from_secs(DOWN_AFTER_SECS))
                .map(|(h, l)| {
                    l.up = false;
                    h.clone()
                })
                .collect()
        };
        if !newly_down.is_empty() {
            for h in &newly_down {
                tracing::warn!(host = %h, "no heartbeat for {DOWN_AFTER_SECS} s: host is down");
                fleet
                    .audit(
                        "gateway",
                        "host-down",
                        None,
                        format!("{h}: no heartbeat for {DOWN_AFTER_SECS} s"),
                    )
                    .await;
            }
            fleet.rebalance("gateway").await;
        }
    }
}

/// A heartbeat's instance rows for one app.
trait InstancesOf {
    fn instances_of(&self, app: &str) -> Vec<PsRow>;
}

impl InstancesOf for Heartbeat {
    fn instances_of(&self, app: &str) -> Vec<PsRow> {
        self.instance_rows
            .iter()
            .filter(|r| r.app == app)
            .cloned()
            .collect()
    }
}
