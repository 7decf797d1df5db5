//! What operators change on this host: deploy, rollback, scale, rm. Each
//! holds the app's op lock for its whole run, checks what a host and the
//! fleet share through `ops::cmd`, and audits what it did (or why not).

use schema::audit::Action;
use std::sync::Arc;
use std::time::Instant;

use ops::Scope;
use ops::cmd::rollback::choose_target;
use schema::command::DeployArgs;
use schema::{
    Actor, AppKind, DeployOutcome, ReleaseState, RestartOutcome, RollbackOutcome, ScaleOutcome,
    Version,
};

use super::{Host, HostError, refuse_if_managed};
use crate::config::KEEP_RELEASES;
use crate::runtime::ReleaseRun;
use crate::store::{self, AppRecord, ReleaseRecord};

impl Host {
    /// A new release of an app from `bytes`, made active on this host.
    ///
    /// An http release with a `health.path` is probed right after the
    /// switch; a failure rolls back before this returns, and probes go on
    /// in the background for the health window.
    pub async fn deploy(
        self: &Arc<Self>,
        who: &Actor,
        args: &DeployArgs,
        bytes: Vec<u8>,
    ) -> Result<DeployOutcome, HostError> {
        let result = self.deploy_inner(who, args, bytes).await;
        if let Err(e) = &result {
            self.audit_refused(who, Action::Deploy, args.app.as_deref(), e)
                .await;
        }
        result
    }

    async fn deploy_inner(
        self: &Arc<Self>,
        who: &Actor,
        args: &DeployArgs,
        bytes: Vec<u8>,
    ) -> Result<DeployOutcome, HostError> {
        let started = Instant::now();
        // Everything that can be checked without compiling is checked first,
        // and nothing is written until the code has compiled and linked.
        let limit = self.config.max_artifact_bytes;
        let (name, manifest) = ops::cmd::deploy::check(args, &bytes, limit, Scope::Host)?;
        let _op = self.op_lock(&name).await;
        let existing = {
            let n = name.clone();
            self.db.call(move |c| store::get_app(c, &n)).await?
        };
        refuse_if_managed(existing.as_ref(), who, "deploy")?;
        let current = existing.as_ref().map(|a| a.kind);
        ops::cmd::deploy::check_kind_change(&name, current, args, manifest.kind)?;
        let replicas = manifest
            .replicas
            .or(existing.as_ref().map(|a| a.replicas))
            .unwrap_or(1);
        ops::cmd::deploy::check_job_replicas(&name, manifest.kind, replicas)?;
        let mut manifest = manifest;
        let mut env_changes = None;
        if let Some(active) = existing.as_ref().and_then(|a| a.active) {
            // Config lives across deploys (as on Heroku); --config adds to it.
            // The env is the deploy's (or, --keep-env, the running one's
            // with the deploy's over it), and what changed is said.
            if let Some(prev) = self.release(&name, active).await? {
                env_changes = Some(ops::cmd::deploy::carry_env(
                    &prev.manifest,
                    &mut manifest,
                    args.keep_env,
                ));
                manifest.config = ops::cmd::deploy::carry_config(&prev.manifest, &manifest)?;
            }
        }
        // A canary needs a release to compare with and no other canary;
        // a plain deploy waits for a live canary to end.
        let canary = match manifest.canary_plan()? {
            Some(plan) => {
                let active = existing.as_ref().and_then(|a| a.active);
                Some((self.check_canary(&name, &plan, active)?, plan))
            }
            None => {
                if let Some(l) = self.live_canary(&name) {
                    return Err(HostError::Op(ops::OpError::failed(format!(
                        "{name} has a live canary ({}); `promote {name}` or `abort {name}` first, then deploy again",
                        l.progress.version
                    ))));
                }
                None
            }
        };
        let compiled = self.artifacts.put(bytes).await?;
        let code = self.rt.link(&compiled.loaded, manifest.kind)?;

        let caps = self.capabilities(Version(0), &manifest, true).await?;
        let kind = manifest.kind;
        if let Some((stable, plan)) = canary {
            let mut out = self
                .deploy_canary(who, manifest, plan, stable, &compiled, code, caps, replicas)
                .await?;
            out.env_changes = env_changes;
            return Ok(out);
        }
        let health_path = manifest.health.path.clone();
        let (run, prev) = self
            .release_now(who, manifest, &compiled.digest, code, caps, replicas)
            .await?;
        let version = run.version;
        let short = &compiled.digest[..12];
        let detail = format!(
            "{version} sha256:{short} ({kind}, {replicas} replica{}){}",
            if replicas == 1 { "" } else { "s" },
            prev.map(|p| format!(", replacing {p}")).unwrap_or_default()
        );
        self.audit(who, Action::Deploy, Some(&name), &detail).await;
        self.logs.system(
            &name,
            Some(version),
            "hostd",
            format!("deployed {detail} by {who}"),
        );
        self.prune(&name).await;
        if let Some(path) = health_path.filter(|_| kind == AppKind::Http)
            && let Err(reason) = self.check_health(&run, &path).await
        {
            let outcome = self.fail_release(&name, version, &reason).await;
            return Err(HostError::HealthCheckFailed {
                app: name,
                version,
                reason,
                outcome,
            });
        }
        self.watch_health(run);
        tracing::info!(app = %name, %version, ms = started.elapsed().as_millis() as u64, "deployed");
        Ok(DeployOutcome {
            app: name,
            version,
            digest: format!("sha256:{}", compiled.digest),
            kind,
            state: ReleaseState::Active,
            compile_ms: compiled.compile_ms,
            replicas,
            env_changes,
            canary: None,
        })
    }

    /// A deploy as a canary: the release is recorded (state `canary`) and
    /// takes its first share next to `stable`; the rest happens by itself.
    #[allow(clippy::too_many_arguments)]
    async fn deploy_canary(
        self: &Arc<Self>,
        who: &Actor,
        manifest: schema::Manifest,
        plan: schema::canary::Plan,
        stable: Version,
        compiled: &crate::artifacts::Compiled,
        code: crate::runtime::Code,
        caps: Arc<crate::runtime::caps::Capabilities>,
        replicas: u32,
    ) -> Result<DeployOutcome, HostError> {
        let (m, d, w, now) = (
            manifest.clone(),
            compiled.digest.clone(),
            who.to_string(),
            schema::time::now_millis(),
        );
        let name = manifest.name.clone();
        let kind = manifest.kind;
        let version = self
            .db
            .call(move |c| {
                let v = store::insert_release(c, &m, &d, &w, replicas, now)?;
                store::set_release_state(c, &m.name, v, ReleaseState::Canary, None)?;
                Ok::<_, rusqlite::Error>(v)
            })
            .await?;
        let run = ReleaseRun::new(version, manifest, code, caps);
        let progress = schema::canary::Progress {
            app: name.clone(),
            version,
            stable,
            plan,
            step: 0,
            step_started_ms: now,
            by: who.to_string(),
            hosts: Vec::new(),
        };
        let status = match self.start_canary(run, progress).await {
            Ok(s) => s,
            Err(e) => {
                let (a, why) = (name.clone(), format!("canary did not start: {e}"));
                let _ = self
                    .db
                    .call(move |c| {
                        store::set_release_state(c, &a, version, ReleaseState::Failed, Some(&why))
                    })
                    .await;
                return Err(e);
            }
        };
        let detail = format!(
            "{version} sha256:{} ({kind}) as a canary at {}% next to {stable}",
            &compiled.digest[..12],
            status.share
        );
        self.audit(who, Action::Deploy, Some(&name), &detail).await;
        self.logs.system(
            &name,
            Some(version),
            "hostd",
            format!("deployed {detail} by {who}"),
        );
        self.prune(&name).await;
        Ok(DeployOutcome {
            app: name,
            version,
            digest: format!("sha256:{}", compiled.digest),
            kind,
            state: ReleaseState::Canary,
            compile_ms: compiled.compile_ms,
            replicas,
            canary: Some(Box::new(status)),
            env_changes: None,
        })
    }

    /// Records a new release of `manifest` (code `digest`, linked as `code`)
    /// and switches the app to it with `replicas`: what a deploy and a
    /// config change end with. Returns the running release and the one it
    /// replaced.
    pub(super) async fn release_now(
        &self,
        who: &Actor,
        manifest: schema::Manifest,
        digest: &str,
        code: crate::runtime::Code,
        caps: Arc<crate::runtime::caps::Capabilities>,
        replicas: u32,
    ) -> Result<(Arc<ReleaseRun>, Option<Version>), HostError> {
        let (m, d, w, now) = (
            manifest.clone(),
            digest.to_string(),
            who.to_string(),
            schema::time::now_millis(),
        );
        let version = self
            .db
            .call(move |c| store::insert_release(c, &m, &d, &w, replicas, now))
            .await?;
        let (name, kind) = (manifest.name.clone(), manifest.kind);
        let run = ReleaseRun::new(version, manifest, code, caps);
        self.supervisor_or_new(&name, kind)
            .activate(run.clone(), replicas);
        let prev = self
            .db
            .call(move |c| store::activate(c, &name, version, kind, replicas, now))
            .await?;
        Ok((run, prev))
    }

    /// Marks `version` failed and makes the newest earlier healthy release
    /// active again. The caller holds the app's op lock. Returns what happened.
    pub(super) async fn fail_release(&self, app: &str, version: Version, reason: &str) -> String {
        let target = match self.rollback_target(app, None).await {
            Ok((_, target)) => Some(target),
            Err(_) => None,
        };
        let to = target.as_ref().map(|t| t.version);
        let outcome = match target {
            Some(t) => match self.switch_to(app, &t).await {
                Ok((from, _)) => format!(
                    "rolled back {} -> {}",
                    from.map(|v| v.to_string()).unwrap_or_default(),
                    t.version
                ),
                Err(e) => format!("could not roll back to {}: {e}", t.version),
            },
            None => {
                format!("no earlier healthy release to roll back to, so {version} stays active")
            }
        };
        let (a, d) = (app.to_string(), format!("health check: {reason}"));
        let _ = self
            .db
            .call(move |c| store::set_release_state(c, &a, version, ReleaseState::Failed, Some(&d)))
            .await;
        let line = format!("{version} failed its health check ({reason}); {outcome}");
        self.logs.system(app, Some(version), "hostd", &line);
        self.publish(schema::tunnel::HostEvent::HealthFailed {
            app: app.to_string(),
            version,
            detail: reason.to_string(),
            to,
        });
        self.audit(
            &Actor::Daemon("hostd"),
            Action::HealthRollback,
            Some(app),
            line,
        )
        .await;
        outcome
    }

    /// Keeps the newest releases' code; deletes what no kept release uses.
    pub(super) async fn prune(&self, app: &str) {
        let a = app.to_string();
        let result = async {
            let keep = self
                .db
                .call(move |c| store::prune(c, &a, KEEP_RELEASES))
                .await?;
            self.artifacts.retain(keep).await?;
            Ok::<_, HostError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(app, error = %e, "could not prune old releases");
        }
    }

    /// Makes an earlier release active again, from its kept compiled code.
    pub async fn rollback(
        &self,
        who: &Actor,
        app: &str,
        to: Option<Version>,
    ) -> Result<RollbackOutcome, HostError> {
        let result = self.rollback_inner(who, app, to).await;
        if let Err(e) = &result
            && !matches!(e, HostError::UnknownApp(_))
        {
            self.audit_refused(who, Action::Rollback, Some(app), e)
                .await;
        }
        result
    }

    async fn rollback_inner(
        &self,
        who: &Actor,
        app: &str,
        to: Option<Version>,
    ) -> Result<RollbackOutcome, HostError> {
        let started = Instant::now();
        if self.live_canary(app).is_some() {
            // A rollback is for emergencies: the canary goes first.
            self.abort(who, app, Some(&format!("rolled back by {who}")))
                .await?;
        }
        let _op = self.op_lock(app).await;
        let (_, target) = self.rollback_target(app, to).await?;
        let (from, compile_ms) = self.switch_to(app, &target).await?;
        let switch_ms = started.elapsed().as_millis() as u64;
        let v = target.version;
        let detail = format!(
            "{} -> {v}{}",
            from.map(|f| f.to_string()).unwrap_or_else(|| "none".into()),
            if compile_ms > 0 {
                format!(" (recompiled in {compile_ms} ms: engine changed)")
            } else {
                String::new()
            }
        );
        self.audit(who, Action::Rollback, Some(app), &detail).await;
        self.logs.system(
            app,
            Some(v),
            "hostd",
            format!("rolled back {detail} by {who}"),
        );
        Ok(RollbackOutcome {
            app: app.to_string(),
            from,
            to: v,
            switch_ms,
        })
    }

    /// The release a rollback goes to: `to`, or the newest kept, healthy
    /// (superseded) release older than the active one.
    pub(super) async fn rollback_target(
        &self,
        app: &str,
        to: Option<Version>,
    ) -> Result<(AppRecord, ReleaseRecord), HostError> {
        let rec = self.app(app).await?;
        let a = app.to_string();
        let releases = self.db.call(move |c| store::releases(c, &a)).await?;
        let candidates: Vec<_> = releases.iter().map(ReleaseRecord::candidate).collect();
        let v = choose_target(
            app,
            rec.active,
            &candidates,
            to,
            Some(KEEP_RELEASES),
            Scope::Host,
        )?;
        let target = releases
            .into_iter()
            .find(|r| r.version == v)
            .ok_or_else(|| HostError::UnknownApp(app.to_string()))?;
        Ok((rec, target))
    }

    /// Makes a stored release active from its kept code. The caller holds
    /// the app's op lock. Returns the previous active version and the
    /// compile time (0 unless the engine changed since it was compiled).
    pub(super) async fn switch_to(
        &self,
        app: &str,
        target: &ReleaseRecord,
    ) -> Result<(Option<Version>, u64), HostError> {
        let rec = self.app(app).await?;
        let (run, compile_ms) = self.prepare(target).await?;
        let sup = self.supervisor_or_new(app, target.kind);
        sup.activate(run, rec.replicas);
        self.end_canary_on_switch(app).await;
        let (a, v, kind, replicas, now) = (
            app.to_string(),
            target.version,
            target.kind,
            rec.replicas,
            schema::time::now_millis(),
        );
        let from = self
            .db
            .call(move |c| store::activate(c, &a, v, kind, replicas, now))
            .await?;
        Ok((from, compile_ms))
    }

    /// Sets the wanted replicas; no release is created.
    pub async fn scale(
        &self,
        who: &Actor,
        app: &str,
        replicas: u32,
    ) -> Result<ScaleOutcome, HostError> {
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        refuse_if_managed(Some(&rec), who, "scale")?;
        if let Err(e) = ops::cmd::scale::check(app, rec.kind, replicas) {
            self.audit_refused(who, Action::Scale, Some(app), &e).await;
            return Err(e.into());
        }
        let (a, now) = (app.to_string(), schema::time::now_millis());
        self.db
            .call(move |c| store::set_replicas(c, &a, replicas, now))
            .await?;
        if let Some(sup) = self.supervisor(app) {
            sup.scale(replicas);
        }
        let detail = format!("{} -> {replicas}", rec.replicas);
        self.audit(who, Action::Scale, Some(app), &detail).await;
        self.logs.system(
            app,
            rec.active,
            "hostd",
            format!("scaled {detail} by {who}"),
        );
        Ok(ScaleOutcome {
            app: app.to_string(),
            from: rec.replicas,
            replicas,
        })
    }

    /// Restarts every instance of the active release (fresh instances;
    /// a crash loop cleared without a deploy). No release is created.
    pub async fn restart(&self, who: &Actor, app: &str) -> Result<RestartOutcome, HostError> {
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        refuse_if_managed(Some(&rec), who, "restart")?;
        if let Err(e) = ops::cmd::restart::check(app, rec.active.is_some(), rec.replicas) {
            self.audit_refused(who, Action::Restart, Some(app), &e)
                .await;
            return Err(e.into());
        }
        let Some(version) = rec.active else {
            return Err(HostError::Refused(format!("{app} has no active release")));
        };
        let sup = self
            .supervisor(app)
            .ok_or_else(|| HostError::Refused(format!("{app} is not running on this host")))?;
        let cleared = sup.restart();
        // A release marked crash-looping is active again.
        let a = app.to_string();
        let was_crashloop = self
            .db
            .call(move |c| {
                let r = store::release(c, &a, version)?;
                let crashloop = r.is_some_and(|r| r.state == ReleaseState::Crashloop);
                if crashloop {
                    store::set_release_state(c, &a, version, ReleaseState::Active, None)?;
                }
                Ok::<_, rusqlite::Error>(crashloop)
            })
            .await?;
        let cleared = cleared || was_crashloop;
        let detail = format!(
            "{version}{}",
            if cleared { " (crash loop cleared)" } else { "" }
        );
        self.audit(who, Action::Restart, Some(app), &detail).await;
        self.logs.system(
            app,
            Some(version),
            "hostd",
            format!("restarted {detail} by {who}"),
        );
        Ok(RestartOutcome {
            app: app.to_string(),
            release: version,
            hosts: vec![self.config.name.clone()],
            cleared_crashloop: cleared,
        })
    }

    /// Stops an app and forgets it; the audit log keeps its history.
    pub async fn rm(&self, who: &Actor, app: &str) -> Result<(), HostError> {
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        refuse_if_managed(Some(&rec), who, "rm")?;
        let sup = self.apps_lock().remove(app);
        if let Some(sup) = sup {
            sup.stop().await;
        }
        let a = app.to_string();
        let n = self
            .db
            .call(move |c| {
                let n = store::releases(c, &a)?.len();
                store::delete_app(c, &a)?;
                Ok::<_, rusqlite::Error>(n)
            })
            .await?;
        self.logs.remove_app(app).await;
        self.kv.remove(app);
        self.prune(app).await;
        self.audit(
            who,
            Action::Rm,
            Some(app),
            format!(
                "removed ({} release{}, active {})",
                n,
                if n == 1 { "" } else { "s" },
                rec.active
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "none".into())
            ),
        )
        .await;
        Ok(())
    }
}
