//! What operators do: deploy, roll back, scale, remove.

use ::ops::Scope;
use ::ops::cmd::rollback::choose_target;
use schema::Manifest;
use schema::audit::Action;

use std::collections::BTreeMap;

use schema::artifact::Digest;
use schema::command::DeployArgs;
use schema::tunnel::GatewayMsg;
use schema::{DeployOutcome, ReleaseState, RestartOutcome, RollbackOutcome, ScaleOutcome, Version};

use std::sync::Arc;
use std::time::Instant;

use super::tallies::{DeployTally, RollbackKind};
use super::{Fleet, FleetError, Progress, ProgressTx, Step};
use crate::placement;
use crate::store::{self, ReleaseRecord};

impl Fleet {
    /// A new release of an app, staged on every chosen host, then switched.
    pub async fn deploy(
        self: &Arc<Self>,
        who: &str,
        args: &DeployArgs,
        bytes: Vec<u8>,
        progress: &ProgressTx,
    ) -> Result<DeployOutcome, FleetError> {
        let r = self.deploy_inner(who, args, bytes, progress).await;
        self.tallies.deploy(DeployTally::of(&r));
        if let Err(e) = &r {
            self.audit_refused(who, Action::Deploy, args.app.as_deref(), e)
                .await;
        }
        self.prune_artifacts().await;
        self.bump();
        r
    }

    pub(super) async fn deploy_inner(
        self: &Arc<Self>,
        who: &str,
        args: &DeployArgs,
        bytes: Vec<u8>,
        progress: &ProgressTx,
    ) -> Result<DeployOutcome, FleetError> {
        let limit = self.max_artifact_bytes;
        let (name, mut manifest) = ::ops::cmd::deploy::check(args, &bytes, limit, Scope::Fleet)?;
        let _op = self.op_lock(&name).await;
        let env_changes = self.complete_manifest(&mut manifest, args.keep_env).await?;
        let n = name.clone();
        let existing = self.db.call(move |c| store::get_app(c, &n)).await?;
        let current = existing.as_ref().map(|a| a.kind);
        ::ops::cmd::deploy::check_kind_change(&name, current, args, manifest.kind)?;
        let replicas = manifest
            .replicas
            .or(existing.as_ref().map(|a| a.replicas))
            .unwrap_or(1);
        ::ops::cmd::deploy::check_job_replicas(&name, manifest.kind, replicas)?;
        if let Some(plan) = manifest.canary_plan()? {
            let active = existing.as_ref().and_then(|a| a.active);
            let mut out = self
                .deploy_canary(who, manifest, plan, bytes, active, replicas, progress)
                .await?;
            out.env_changes = env_changes;
            return Ok(out);
        }
        if let Some(l) = self.live_canary(&name) {
            return Err(FleetError::Op(::ops::OpError::failed(format!(
                "{name} has a live canary ({}); `promote {name}` or `abort {name}` first, then deploy again",
                l.progress.version
            ))));
        }
        let candidates = self.candidates(&name, true).await?;
        let placement = placement::place(
            &name,
            manifest.kind,
            replicas,
            &manifest.labels,
            &candidates,
        )?;
        let rel = self.store_release(manifest, bytes, who, replicas).await?;
        // Hosts compile when they stage; the deploy reports the longest.
        let staged_ms = self.stage_release(&rel, &placement, who, progress).await?;
        let (prev, activated_ms) = self
            .switch_release(&rel, &placement, replicas, who, progress)
            .await?;
        let compile_ms = staged_ms.max(activated_ms);
        let chosen: Vec<&str> = placement.keys().map(String::as_str).collect();
        let (version, kind) = (rel.version, rel.kind);
        let detail = format!(
            "{version} sha256:{} ({kind}, {replicas} replica{} on {}){}",
            &rel.digest[..12],
            if replicas == 1 { "" } else { "s" },
            if chosen.is_empty() {
                "no host".to_string()
            } else {
                chosen.join(", ")
            },
            prev.map(|p| format!(", replacing {p}")).unwrap_or_default()
        );
        self.audit(who, Action::Deploy, Some(&name), &detail).await;
        Ok(DeployOutcome {
            app: name,
            version,
            digest: format!("sha256:{}", rel.digest),
            kind,
            state: ReleaseState::Active,
            compile_ms,
            replicas,
            env_changes,
            canary: None,
        })
    }

    /// Stores the artifact, content-addressed, and records its release (as
    /// staged) before a prune can see the file.
    pub(super) async fn store_release(
        &self,
        manifest: Manifest,
        bytes: Vec<u8>,
        who: &str,
        replicas: u32,
    ) -> Result<ReleaseRecord, FleetError> {
        let _stored = self.artifacts.hold().await;
        let digest = Digest::of(&bytes);
        let size = bytes.len() as u64;
        self.artifacts.write(&digest, bytes).await?;
        let (d, now) = (digest.to_string(), schema::time::now_millis());
        self.db
            .call(move |c| store::record_artifact(c, &d, size, now))
            .await?;
        self.record_release(manifest, &digest.to_string(), who, replicas)
            .await
    }

    /// Records a new (staged) release of `manifest` with the code `digest`.
    pub(super) async fn record_release(
        &self,
        manifest: Manifest,
        digest: &str,
        who: &str,
        replicas: u32,
    ) -> Result<ReleaseRecord, FleetError> {
        let now = schema::time::now_millis();
        let (m, d, w) = (manifest.clone(), digest.to_string(), who.to_string());
        let version = self
            .db
            .call(move |c| store::insert_release(c, &m, &d, &w, replicas, now))
            .await?;
        Ok(ReleaseRecord {
            app: manifest.name.clone(),
            version,
            digest: digest.to_string(),
            kind: manifest.kind,
            manifest,
            created: now,
            by: who.to_string(),
            state: ReleaseState::Staged,
            detail: None,
            kept: true,
        })
    }

    /// Stages `rel` on every placed host; if any fails, the release is
    /// marked failed and nothing switches.
    pub(super) async fn stage_release(
        &self,
        rel: &ReleaseRecord,
        placement: &BTreeMap<String, u32>,
        who: &str,
        progress: &ProgressTx,
    ) -> Result<u64, FleetError> {
        let chosen: Vec<String> = placement.keys().cloned().collect();
        let staging = Step::Staging {
            app: rel.app.clone(),
            version: rel.version,
            digest: rel.digest[..12].to_string(),
            hosts: chosen.clone(),
        };
        let _ = progress.send(Progress::new("gateway", staging));
        let failures = match self.stage(rel, chosen, who, progress).await {
            Ok(compile_ms) => return Ok(compile_ms),
            Err(failures) => failures,
        };
        let (a, version) = (rel.app.clone(), rel.version);
        let detail = format!("staging failed on {failures}");
        self.db
            .call(move |c| {
                store::set_release_state(c, &a, version, ReleaseState::Failed, Some(&detail))
            })
            .await?;
        Err(FleetError::Staging {
            app: rel.app.clone(),
            version,
            failures,
        })
    }

    /// Every chosen host has staged `rel`: records the switch, activates it
    /// on each, removes the app from hosts no longer placed. A host that
    /// fails to activate fails the release, which rolls back everywhere.
    /// Returns the previous active version and the longest compile.
    pub(super) async fn switch_release(
        &self,
        rel: &ReleaseRecord,
        placement: &BTreeMap<String, u32>,
        replicas: u32,
        who: &str,
        progress: &ProgressTx,
    ) -> Result<(Option<Version>, u64), FleetError> {
        let (name, version, kind) = (&rel.app, rel.version, rel.kind);
        let before = self.placement_of(name).await?;
        let (a, p) = (name.clone(), placement.clone());
        let now = schema::time::now_millis();
        let prev = self
            .db
            .call(move |c| store::activate(c, &a, version, kind, replicas, &p, now))
            .await?;
        let results = self.activate(name, version, placement, who, progress).await;
        let gone: Vec<String> = before
            .keys()
            .filter(|h| !placement.contains_key(*h))
            .cloned()
            .collect();
        if !gone.is_empty() {
            self.remove_from(name, gone, who, progress).await;
        }
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{h} ({e})")))
            .collect();
        if !failed.is_empty() {
            let on = failed.join(", ");
            let why = format!("activation failed on {on}");
            let outcome = self.fail_release(name, version, &why, who, progress).await;
            // Each host's reason once, after the host it is about.
            return Err(FleetError::Activation(format!(
                "{name} {version} failed on {on}; {outcome}"
            )));
        }
        let compile_ms = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().copied().flatten())
            .max()
            .unwrap_or(0);
        Ok((prev, compile_ms))
    }

    /// Marks `version` failed and puts the newest earlier healthy release
    /// back on every host. Returns what happened, for the operator.
    pub(super) async fn fail_release(
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
                Ok(_) => {
                    self.tallies.rollback(RollbackKind::Auto);
                    format!("rolled back to {} on every host", t.version)
                }
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
            Action::AutoRollback,
            Some(app),
            format!("{version}: {why}; {outcome}"),
        )
        .await;
        outcome
    }

    pub(super) async fn rollback_target(
        &self,
        app: &str,
        to: Option<Version>,
    ) -> Result<ReleaseRecord, FleetError> {
        let rec = self.app(app).await?;
        let a = app.to_string();
        let releases = self.db.call(move |c| store::releases(c, &a)).await?;
        let candidates: Vec<_> = releases.iter().map(ReleaseRecord::candidate).collect();
        // Hosts keep compiled code the gateway may have let go: `kept` here
        // does not decide, staging does.
        let v = choose_target(app, rec.active, &candidates, to, None, Scope::Fleet)?;
        releases
            .into_iter()
            .find(|r| r.version == v)
            .ok_or_else(|| FleetError::UnknownApp(app.to_string()))
    }

    /// Makes `target` active on every placed host (staging it first where a
    /// host does not keep it), then records the switch.
    pub(super) async fn switch(
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
        if !lacking.is_empty() && !self.has_artifact(&target.digest).await {
            return Err(FleetError::Refused(format!(
                "{app} {} is not kept on {} and the gateway no longer has its artifact (it keeps the last {} releases of an app): deploy it again",
                target.version,
                lacking.join(", "),
                self.keep_releases
            )));
        }
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
                "{app} {} failed on {}",
                target.version,
                failed.join(", ")
            )));
        }
        Ok(prev)
    }

    pub(super) fn host_keeps(&self, host: &str, app: &str, v: Version) -> bool {
        self.registry.keeps(host, app, v)
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
        if self.live_canary(app).is_some() {
            // A rollback is for emergencies: the canary goes first.
            self.abort(who, app, Some(&format!("rolled back by {who}")), progress)
                .await?;
        }
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
                self.tallies.rollback(RollbackKind::Manual);
                let detail = format!(
                    "{} -> {to}",
                    from.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
                );
                self.audit(who, Action::Rollback, Some(app), &detail).await;
                Ok(RollbackOutcome {
                    app: app.to_string(),
                    from,
                    to,
                    switch_ms: started.elapsed().as_millis() as u64,
                })
            }
            Err(e) => {
                if !matches!(e, FleetError::UnknownApp(_)) {
                    self.audit_refused(who, Action::Rollback, Some(app), &e)
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
            self.audit_refused(who, Action::Scale, Some(app), e).await;
        }
        self.bump();
        r
    }

    pub(super) async fn scale_inner(
        &self,
        who: &str,
        app: &str,
        replicas: u32,
        progress: &ProgressTx,
    ) -> Result<ScaleOutcome, FleetError> {
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        ::ops::cmd::scale::check(app, rec.kind, replicas)?;
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
        let mut after = if replicas == 0 {
            BTreeMap::new()
        } else {
            // Running replicas stay where they are; only the difference moves
            // (to the hosts that ran the app before, first).
            placement::keep(app, rel.kind, replicas, &rel.manifest.labels, &c, &before)?
        };
        // A scale never removes an app from a host: one left with no
        // replicas keeps the app stopped there, with its releases, compiled
        // code and logs (`logs` after `scale APP 0` is the on-call's first
        // move); only `rm` removes it.
        for h in before.keys() {
            after.entry(h.clone()).or_insert(0);
        }
        self.apply_placement(&rel, &before, &after, who, progress)
            .await?;
        let (a, p) = (app.to_string(), after.clone());
        self.db
            .call(move |c| store::set_scale(c, &a, replicas, &p, schema::time::now_millis()))
            .await?;
        let detail = format!("{} -> {replicas}", rec.replicas);
        self.audit(who, Action::Scale, Some(app), &detail).await;
        Ok(ScaleOutcome {
            app: app.to_string(),
            from: rec.replicas,
            replicas,
        })
    }

    /// Moves an app from one placement to another: new hosts stage and
    /// activate, changed ones rescale, dropped ones remove it.
    pub(super) async fn apply_placement(
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

    /// Restarts the active release's instances on every host that runs it
    /// (and clears a crash loop, on the hosts and in the fleet's record).
    pub async fn restart(
        &self,
        who: &str,
        app: &str,
        progress: &ProgressTx,
    ) -> Result<RestartOutcome, FleetError> {
        let r = self.restart_inner(who, app, progress).await;
        if let Err(e) = &r
            && !matches!(e, FleetError::UnknownApp(_))
        {
            self.audit_refused(who, Action::Restart, Some(app), e).await;
        }
        self.bump();
        r
    }

    async fn restart_inner(
        &self,
        who: &str,
        app: &str,
        progress: &ProgressTx,
    ) -> Result<RestartOutcome, FleetError> {
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        ::ops::cmd::restart::check(app, rec.active.is_some(), rec.replicas)?;
        let Some(version) = rec.active else {
            return Err(FleetError::Refused(format!("{app} has no active release")));
        };
        let hosts: Vec<String> = self
            .placement_of(app)
            .await?
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(h, _)| h)
            .collect();
        let (a, by) = (app.to_string(), who.to_string());
        let results = self
            .on_hosts(hosts, progress, move |id, _| GatewayMsg::Restart {
                id,
                app: a.clone(),
                by: by.clone(),
            })
            .await;
        let done: Vec<String> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(h, _)| h.clone())
            .collect();
        for h in &done {
            let _ = progress.send(Progress::new(h.clone(), Step::Active { version }));
        }
        let a = app.to_string();
        let cleared = self
            .db
            .call(move |c| {
                let crashloop = store::release(c, &a, version)?
                    .is_some_and(|r| r.state == ReleaseState::Crashloop);
                if crashloop {
                    store::set_release_state(c, &a, version, ReleaseState::Active, None)?;
                }
                Ok(crashloop)
            })
            .await?;
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{h} ({e})")))
            .collect();
        let detail = format!(
            "{version} on {}{}",
            if done.is_empty() {
                "no host".to_string()
            } else {
                done.join(", ")
            },
            if cleared { " (crash loop cleared)" } else { "" }
        );
        if !failed.is_empty() {
            return Err(FleetError::Activation(format!(
                "restart of {app} {version} failed on {}; {detail}",
                failed.join(", ")
            )));
        }
        self.audit(who, Action::Restart, Some(app), &detail).await;
        Ok(RestartOutcome {
            app: app.to_string(),
            release: version,
            hosts: done,
            cleared_crashloop: cleared,
        })
    }

    /// Stops an app everywhere and forgets it; the audit log keeps its history.
    pub async fn rm(&self, who: &str, app: &str, progress: &ProgressTx) -> Result<(), FleetError> {
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        let mut hosts: Vec<String> = self.placement_of(app).await?.into_keys().collect();
        for h in self.registry.running(app) {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        let connected: Vec<String> = hosts
            .into_iter()
            .filter(|h| self.conn(h).is_some())
            .collect();
        self.remove_from(app, connected, who, progress).await;
        let a = app.to_string();
        let n = self.db.call(move |c| store::delete_app(c, &a)).await?;
        self.prune_artifacts().await;
        self.audit(
            who,
            Action::Rm,
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
}
