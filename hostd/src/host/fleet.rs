//! What a gateway asks of a host through the agent's tunnel: stage a
//! release (fetch, check, compile, no switch), activate it, report state.
//!
//! Versions come from the gateway, so a release is `v7` on every host of the
//! fleet. Apps staged this way are marked as managed by the gateway, and
//! local commands then refuse to deploy, scale or remove them (only the
//! break-glass `rollback --local` works, and is reported back).

use schema::audit::Action;
use std::path::PathBuf;
use std::sync::Arc;

use schema::artifact::{Digest, inspect};
use schema::tunnel::{Heartbeat, HostApp, HostEvent};
use schema::{Actor, AuditEntry, Manifest, ReleaseState, Version};
use tokio::sync::broadcast;

use super::{Host, HostError};
use crate::artifacts::StoreError;
use crate::runtime::ReleaseRun;
use crate::store;

impl Host {
    /// Events for the gateway: crash loops, failed health checks.
    pub fn subscribe_fleet_events(&self) -> broadcast::Receiver<HostEvent> {
        self.fleet.subscribe()
    }

    /// Every app on this host, as the tunnel's hello and heartbeats carry them.
    pub async fn host_apps(&self) -> Result<Vec<HostApp>, HostError> {
        Ok(self
            .db
            .call(|c| {
                let apps = store::list_apps(c)?;
                let mut out = Vec::with_capacity(apps.len());
                for a in apps {
                    let kept = store::releases(c, &a.name)?
                        .into_iter()
                        .filter(|r| r.kept && r.state != ReleaseState::Failed)
                        .map(|r| r.version)
                        .collect();
                    out.push(HostApp {
                        app: a.name,
                        active: a.active,
                        replicas: a.replicas,
                        kept,
                    });
                }
                Ok::<_, rusqlite::Error>(out)
            })
            .await?)
    }

    /// The periodic report to the gateway.
    pub async fn heartbeat(&self) -> Result<Heartbeat, HostError> {
        let apps = self.host_apps().await?;
        let ps = self.ps(None).await?;
        let mut instance_rows = Vec::new();
        for a in &apps {
            instance_rows.extend(self.ps(Some(&a.app)).await.unwrap_or_default());
        }
        let host = self.hosts().await?.pop();
        Ok(Heartbeat {
            apps,
            ps,
            instance_rows,
            instances: host.as_ref().map(|h| h.instances).unwrap_or(0),
            memory_bytes: host.map(|h| h.memory_bytes).unwrap_or(0),
        })
    }

    /// Whether the artifact `digest` is stored here, intact (never, for a
    /// string that is not a digest).
    pub fn has_artifact(&self, digest: &str) -> bool {
        let Ok(d) = Digest::parse(digest) else {
            return false;
        };
        std::fs::read(self.artifact_path(&d)).is_ok_and(|b| Digest::of(&b) == d)
    }

    fn artifact_path(&self, digest: &Digest) -> PathBuf {
        self.config
            .data_dir
            .join("artifacts")
            .join(format!("{digest}.wasm"))
    }

    /// Where a fetch of `digest` collects its bytes; a fetch cut short
    /// resumes from this file's length. Refuses a string that is not a
    /// digest: the gateway names the file, and no path is built from
    /// anything else.
    pub fn partial_artifact_path(&self, digest: &str) -> Result<PathBuf, HostError> {
        let d = Digest::parse(digest).map_err(|e| HostError::Refused(e.to_string()))?;
        Ok(self
            .config
            .data_dir
            .join("artifacts")
            .join(format!("{d}.part")))
    }

    /// Checks a completed fetch against its digest and stores it.
    pub async fn adopt_fetched(&self, digest: &str) -> Result<(), HostError> {
        let d = Digest::parse(digest).map_err(|e| HostError::Refused(e.to_string()))?;
        let part = self.partial_artifact_path(digest)?;
        let bytes = tokio::fs::read(&part)
            .await
            .map_err(|_| StoreError::Corrupt(digest.to_string()))?;
        let got = crate::engine::digest(&bytes);
        if got != digest {
            let _ = std::fs::remove_file(&part);
            return Err(HostError::Refused(format!(
                "the fetched artifact does not match its digest (expected sha256:{digest}, got sha256:{got}); it was discarded"
            )));
        }
        crate::artifacts::write_atomically(&self.artifact_path(&d), &bytes)?;
        let _ = std::fs::remove_file(&part);
        let (d, n, now) = (
            digest.to_string(),
            bytes.len() as u64,
            schema::time::now_millis(),
        );
        let form = schema::artifact::classify(&bytes)
            .map(|f| f.as_str())
            .unwrap_or("module");
        self.db
            .call(move |c| store::record_artifact(c, &d, n, form, now))
            .await?;
        Ok(())
    }

    /// Stages release `version` of an app from a stored artifact: checks it
    /// against its kind, compiles it (unless cached) and links it, but does
    /// not run it. Returns the compile time (0 if the cache had it).
    #[allow(clippy::too_many_arguments)]
    pub async fn stage(
        &self,
        gateway: &str,
        by: &str,
        version: Version,
        manifest: Manifest,
        digest: &str,
    ) -> Result<u64, HostError> {
        manifest.validate()?;
        let app = manifest.name.clone();
        let _op = self.op_lock(&app).await;
        let d = Digest::parse(digest).map_err(|e| HostError::Refused(e.to_string()))?;
        let bytes = tokio::fs::read(self.artifact_path(&d))
            .await
            .map_err(|_| StoreError::Corrupt(digest.to_string()))?;
        let exports = inspect(&bytes).map_err(StoreError::from)?;
        exports.check(manifest.kind)?;
        let compiled = self.artifacts.load(digest).await?;
        self.rt.link(&compiled.loaded, manifest.kind)?;
        // Secrets arrive in the clear inside the tunnel; sealed with this
        // host's key before they are written. A store that cannot be
        // reached (or a secret that cannot be opened) refuses the stage.
        let mut manifest = manifest;
        self.seal_secrets(&mut manifest)?;
        self.capabilities(version, &manifest, true).await?;
        let existing = {
            let a = app.clone();
            self.db.call(move |c| store::get_app(c, &a)).await?
        };
        let replicas = existing.map(|a| a.replicas).unwrap_or(0);
        let (d, b, g, now) = (
            digest.to_string(),
            by.to_string(),
            gateway.to_string(),
            schema::time::now_millis(),
        );
        self.db
            .call(move |c| {
                store::insert_release_at(c, &manifest, version, &d, &b, &g, replicas, now)
            })
            .await?;
        self.logs.system(
            &app,
            Some(version),
            "hostd",
            format!(
                "staged {version} sha256:{} for {by} via {gateway}{}",
                &digest[..12],
                if compiled.compile_ms > 0 {
                    format!(" (compiled in {} ms)", compiled.compile_ms)
                } else {
                    String::new()
                }
            ),
        );
        Ok(compiled.compile_ms)
    }

    /// Runs a staged or kept release with `replicas`; a no-op switch when it
    /// already runs (then only the scale changes).
    pub async fn activate_version(
        self: &Arc<Self>,
        by: &str,
        app: &str,
        version: Version,
        replicas: u32,
    ) -> Result<(), HostError> {
        let op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        let target = self
            .release(app, version)
            .await?
            .ok_or_else(|| HostError::NoSuchRelease {
                app: app.to_string(),
                version,
            })?;
        if rec.active == Some(version) && target.state == ReleaseState::Active {
            drop(op);
            if rec.replicas != replicas {
                self.scale(&Actor::Key(by.to_string()), app, replicas)
                    .await?;
            }
            return Ok(());
        }
        if !target.kept {
            return Err(HostError::NotKept {
                app: app.to_string(),
                version,
            });
        }
        let (a, now) = (app.to_string(), schema::time::now_millis());
        self.db
            .call(move |c| store::set_replicas(c, &a, replicas, now))
            .await?;
        let (from, compile_ms) = self.switch_to(app, &target).await?;
        let detail = format!(
            "{} -> {version} ({replicas} replica{}){}",
            from.map(|f| f.to_string()).unwrap_or_else(|| "none".into()),
            if replicas == 1 { "" } else { "s" },
            if compile_ms > 0 {
                format!(", recompiled in {compile_ms} ms")
            } else {
                String::new()
            }
        );
        self.audit(
            &Actor::Key(by.to_string()),
            Action::Activate,
            Some(app),
            &detail,
        )
        .await;
        self.logs.system(
            app,
            Some(version),
            "hostd",
            format!("activated {detail} for {by}"),
        );
        // Releases the gateway sends are pruned like local ones: the host
        // keeps the newest few compiled, not every release ever staged.
        self.prune(app).await;
        if let Some(run) = self.supervisor(app).and_then(|s| s.active()) {
            if let Some(path) = target.manifest.health.path.clone()
                && let Err(reason) = self.check_health(&run, &path).await
            {
                // Put back here at once; the gateway decides for the fleet
                // and tells the operator (with this reason, once).
                self.fail_release(app, version, &reason).await;
                return Err(HostError::Unhealthy { reason });
            }
            self.watch_health(run);
        }
        Ok(())
    }

    /// Local actions the gateway has not heard of, with their ids.
    pub async fn unreported_actions(&self) -> Result<Vec<(i64, AuditEntry)>, HostError> {
        Ok(self.db.call(|c| store::unreported(c)).await?)
    }

    pub async fn mark_reported(&self, up_to: i64) -> Result<(), HostError> {
        Ok(self
            .db
            .call(move |c| store::mark_reported(c, up_to))
            .await?)
    }

    pub(super) fn publish(&self, e: HostEvent) {
        // No receiver only means no agent is connected right now.
        let _ = self.fleet.send(e);
    }

    /// The active release of `app`, if it runs here.
    pub fn active_run(&self, app: &str) -> Option<Arc<ReleaseRun>> {
        self.supervisor(app).and_then(|s| s.active())
    }
}
