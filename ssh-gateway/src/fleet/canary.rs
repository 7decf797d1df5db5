//! Canaries across the fleet. The gateway drives them: it stages the new
//! release on every host of the app, sets each host's share
//! (`GatewayMsg::Canary`), holds each step for its window, promotes with
//! the usual two-phase switch after the last, and aborts everywhere the
//! moment any host reports that the gate tripped there (that host has cut
//! its own share already). Where a canary stands is kept in `gateway.db`,
//! so a restarted gateway resumes it at its step, its window started again:
//! a restart never promotes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schema::audit::Action;
use schema::canary::{Gauge, Outcome, Plan, Progress, Status};
use schema::tunnel::GatewayMsg;
use schema::{DeployOutcome, ReleaseState, Version};
use tokio::sync::mpsc;

use super::{Fleet, FleetError, ProgressTx, lock};
use crate::store::{self, ReleaseRecord};

/// How often a driver looks at its canary.
const TICK: Duration = Duration::from_millis(250);

/// A canary the gateway drives.
#[derive(Clone)]
pub(super) struct Live {
    pub progress: Progress,
    pub step_started: Instant,
}

impl Live {
    /// Percent of requests on the canary at `host` now.
    fn share_on(&self, host: &str) -> u8 {
        let p = &self.progress;
        if p.plan.hosts.is_some() {
            if p.hosts.iter().any(|h| h == host) {
                100
            } else {
                0
            }
        } else {
            p.share()
        }
    }
}

impl Fleet {
    pub(super) fn live_canary(&self, app: &str) -> Option<Live> {
        lock(&self.canaries).get(app).cloned()
    }

    /// What `ps` shows of `app`'s canary: the step from here, the gate's
    /// inputs summed over the hosts' reports.
    pub(super) fn canary_status(&self, app: &str, rows: &[schema::PsRow]) -> Option<Status> {
        let live = self.live_canary(app)?;
        let p = &live.progress;
        let (mut c, mut s) = (Gauge::default(), Gauge::default());
        for r in rows.iter().filter_map(|r| r.canary.as_ref()) {
            if r.version == p.version {
                c.merge(&r.canary_stats);
                s.merge(&r.stable_stats);
            }
        }
        let window = Duration::from_secs(p.plan.window_s);
        Some(Status {
            version: p.version,
            stable: p.stable,
            step: p.step + 1,
            steps: p.plan.steps.len(),
            share: if p.plan.hosts.is_some() {
                100
            } else {
                p.share()
            },
            left_s: window.saturating_sub(live.step_started.elapsed()).as_secs(),
            gate: p.plan.gate.clone(),
            canary_stats: c,
            stable_stats: s,
            sticky: p.plan.sticky.clone(),
            hosts: p.hosts.clone(),
        })
    }

    /// Sends each of `hosts` its share of the canary; the hosts that failed.
    async fn send_shares(
        &self,
        live: &Live,
        hosts: Vec<String>,
        failed: Option<String>,
        progress: &ProgressTx,
    ) -> Vec<String> {
        let p = &live.progress;
        let shares: BTreeMap<String, u8> = hosts
            .iter()
            .map(|h| {
                let s = if failed.is_some() {
                    0
                } else {
                    live.share_on(h)
                };
                (h.clone(), s)
            })
            .collect();
        let (app, version, sticky, gate, by) = (
            p.app.clone(),
            p.version,
            p.plan.sticky.clone(),
            p.plan.gate.clone(),
            p.by.clone(),
        );
        let results = self
            .on_hosts(hosts, progress, move |id, host| GatewayMsg::Canary {
                id,
                app: app.clone(),
                version,
                share: shares.get(host).copied().unwrap_or(0),
                sticky: sticky.clone(),
                gate: gate.clone(),
                failed: failed.clone(),
                by: by.clone(),
            })
            .await;
        results
            .into_iter()
            .filter_map(|(h, r)| r.err().map(|e| format!("{h} ({e})")))
            .collect()
    }

    /// The hosts that run `app` now (placed with replicas, connected).
    async fn canary_hosts(&self, app: &str) -> Result<Vec<String>, FleetError> {
        Ok(self
            .placement_of(app)
            .await?
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(h, _)| h)
            .collect())
    }

    /// `deploy … --canary`: stages the release on the app's hosts and
    /// starts the canary there. The caller holds the app's op lock.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn deploy_canary(
        self: &Arc<Self>,
        who: &str,
        manifest: schema::Manifest,
        plan: Plan,
        bytes: Vec<u8>,
        active: Option<Version>,
        replicas: u32,
        progress: &ProgressTx,
    ) -> Result<DeployOutcome, FleetError> {
        let name = manifest.name.clone();
        let live = self.live_canary(&name).map(|l| l.progress.version);
        let stable = ::ops::cmd::canary::check_start(&name, active, live)?;
        let hosts = self.canary_hosts(&name).await?;
        if hosts.is_empty() {
            return Err(FleetError::Refused(format!(
                "{name} runs on no host now; scale it up before a canary"
            )));
        }
        let chosen: Vec<String> = match plan.hosts {
            Some(n) if n as usize >= hosts.len() => {
                return Err(FleetError::Refused(format!(
                    "--canary-hosts {n} would be every host of {name} ({}): that is a deploy; give fewer",
                    hosts.len()
                )));
            }
            Some(n) => hosts.iter().take(n as usize).cloned().collect(),
            None => Vec::new(),
        };
        let rel = self.store_release(manifest, bytes, who, replicas).await?;
        let placement: BTreeMap<String, u32> = hosts.iter().map(|h| (h.clone(), 1)).collect();
        let compile_ms = self.stage_release(&rel, &placement, who, progress).await?;
        let version = rel.version;
        let a = name.clone();
        self.db
            .call(move |c| store::set_release_state(c, &a, version, ReleaseState::Canary, None))
            .await?;
        let progress_rec = Progress {
            app: name.clone(),
            version,
            stable,
            plan,
            step: 0,
            step_started_ms: schema::time::now_millis(),
            by: who.to_string(),
            hosts: chosen,
        };
        let live = Live {
            progress: progress_rec.clone(),
            step_started: Instant::now(),
        };
        lock(&self.canaries).insert(name.clone(), live.clone());
        let failed = self.send_shares(&live, hosts.clone(), None, progress).await;
        if !failed.is_empty() {
            let why = format!("the canary did not start on {}", failed.join(", "));
            self.end_canary(&name, &why, who, progress).await;
            return Err(FleetError::Activation(format!(
                "{name} {version}: {why}; it is failed and {stable} serves alone"
            )));
        }
        let p = progress_rec.clone();
        self.db.call(move |c| db::canaries::save(c, &p)).await?;
        tokio::spawn(drive(Arc::downgrade(self), name.clone(), version));
        let status = self.canary_status(&name, &[]);
        let detail = format!(
            "{version} sha256:{} ({}) as a canary {} next to {stable} on {}",
            &rel.digest[..12],
            rel.kind,
            match &status {
                Some(s) if !s.hosts.is_empty() => format!("on {}", s.hosts.join(", ")),
                Some(s) => format!("at {}%", s.share),
                None => String::new(),
            },
            hosts.join(", ")
        );
        self.audit(who, Action::Deploy, Some(&name), &detail).await;
        Ok(DeployOutcome {
            app: name,
            version,
            digest: format!("sha256:{}", rel.digest),
            kind: rel.kind,
            state: ReleaseState::Canary,
            compile_ms,
            replicas,
            canary: status.map(Box::new),
            env_changes: None,
        })
    }

    /// Drops a canary everywhere (share 0 on every host, the release
    /// failed with `why`), and forgets it. The caller holds the op lock.
    async fn end_canary(
        &self,
        app: &str,
        why: &str,
        who: &str,
        progress: &ProgressTx,
    ) -> Option<Live> {
        let live = lock(&self.canaries).remove(app)?;
        let mut hosts = self.canary_hosts(app).await.unwrap_or_default();
        for h in self.registry.running(app) {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        let failed = self
            .send_shares(&live, hosts, Some(why.to_string()), progress)
            .await;
        if !failed.is_empty() {
            tracing::warn!(app, hosts = %failed.join(", "), "could not end a canary on some hosts; they end it when they reconnect");
        }
        let (a, v, d) = (
            app.to_string(),
            live.progress.version,
            format!("canary: {why}"),
        );
        let _ = self
            .db
            .call(move |c| {
                store::set_release_state(c, &a, v, ReleaseState::Failed, Some(&d))?;
                db::canaries::delete(c, &a)
            })
            .await;
        let _ = who;
        Some(live)
    }

    /// `abort APP` by an operator, or the gate tripped (`reason`).
    pub async fn abort(
        &self,
        who: &str,
        app: &str,
        reason: Option<&str>,
        progress: &ProgressTx,
    ) -> Result<Outcome, FleetError> {
        let _op = self.op_lock(app).await;
        self.app(app).await?;
        let why = match reason {
            Some(r) => r.to_string(),
            None => format!("aborted by {who}"),
        };
        let live = self
            .end_canary(app, &why, who, progress)
            .await
            .ok_or_else(|| FleetError::Op(::ops::cmd::canary::no_canary(app, "abort")))?;
        let p = &live.progress;
        let line = ::ops::cmd::canary::aborted_line(p, &why);
        self.audit(who, Action::Abort, Some(app), &line).await;
        self.bump();
        Ok(Outcome {
            app: app.to_string(),
            version: p.version,
            stable: p.stable,
            action: "aborted".into(),
            hosts: self.canary_hosts(app).await.unwrap_or_default(),
        })
    }

    /// `promote APP` (or the last step passed): the canary becomes active
    /// on every host through the two-phase switch.
    pub async fn promote(
        &self,
        who: &str,
        app: &str,
        progress: &ProgressTx,
    ) -> Result<Outcome, FleetError> {
        let _op = self.op_lock(app).await;
        self.app(app).await?;
        let live = self
            .live_canary(app)
            .ok_or_else(|| FleetError::Op(::ops::cmd::canary::no_canary(app, "promote")))?;
        let p = live.progress.clone();
        let a = app.to_string();
        let rel: ReleaseRecord = self
            .db
            .call(move |c| store::release(c, &a, p.version))
            .await?
            .ok_or_else(|| FleetError::UnknownApp(app.to_string()))?;
        self.switch(app, &rel, who, progress).await?;
        lock(&self.canaries).remove(app);
        let a = app.to_string();
        self.db.call(move |c| db::canaries::delete(c, &a)).await?;
        let detail = ::ops::cmd::canary::promoted_detail(&p);
        self.audit(who, Action::Promote, Some(app), &detail).await;
        self.bump();
        Ok(Outcome {
            app: app.to_string(),
            version: p.version,
            stable: p.stable,
            action: "promoted".into(),
            hosts: self.canary_hosts(app).await.unwrap_or_default(),
        })
    }

    /// Moves a canary to its next step (or promotes it after the last).
    /// Returns false when it is over.
    async fn next_step(&self, app: &str, version: Version) -> bool {
        let (tx, _rx) = mpsc::unbounded_channel();
        let next = {
            let _op = self.op_lock(app).await;
            let Some(mut live) = self
                .live_canary(app)
                .filter(|l| l.progress.version == version)
            else {
                return false;
            };
            live.progress.step += 1;
            if live.progress.step >= live.progress.plan.steps.len()
                || live.progress.plan.hosts.is_some()
            {
                None
            } else {
                live.progress.step_started_ms = schema::time::now_millis();
                live.step_started = Instant::now();
                lock(&self.canaries).insert(app.to_string(), live.clone());
                let hosts = self.canary_hosts(app).await.unwrap_or_default();
                let failed = self.send_shares(&live, hosts, None, &tx).await;
                let p = live.progress.clone();
                let line = format!(
                    "{}{}",
                    ::ops::cmd::canary::step_line(&p),
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!("; not reached: {}", failed.join(", "))
                    }
                );
                let _ = self.db.call(move |c| db::canaries::save(c, &p)).await;
                self.audit("gateway", Action::CanaryStep, Some(app), &line)
                    .await;
                Some(())
            }
        };
        self.bump();
        match next {
            Some(()) => true,
            None => {
                if let Err(e) = self.promote("gateway", app, &tx).await {
                    tracing::warn!(app, error = %e, "could not promote a canary that passed its steps");
                }
                false
            }
        }
    }

    /// A host says the gate tripped there: the canary is aborted everywhere.
    pub(super) fn canary_tripped(
        self: &Arc<Self>,
        host: &str,
        app: String,
        version: Version,
        detail: String,
    ) {
        if self
            .live_canary(&app)
            .is_none_or(|l| l.progress.version != version)
        {
            return;
        }
        let this = self.clone();
        let reason = format!("gate tripped on {host}: {detail}");
        tokio::spawn(async move {
            let (tx, _rx) = mpsc::unbounded_channel();
            if let Err(e) = this.abort("gateway", &app, Some(&reason), &tx).await {
                tracing::warn!(app, error = %e, "could not abort a canary");
            }
        });
    }

    /// Resumes the canaries recorded before a restart, each at its step,
    /// its window started again.
    pub(super) async fn resume_canaries(self: &Arc<Self>) -> Result<(), FleetError> {
        for p in self.db.call(|c| db::canaries::all(c)).await? {
            let (app, version) = (p.app.clone(), p.version);
            tracing::info!(app, %version, step = p.step + 1, "resuming a canary");
            lock(&self.canaries).insert(
                app.clone(),
                Live {
                    progress: p,
                    step_started: Instant::now(),
                },
            );
            tokio::spawn(drive(Arc::downgrade(self), app, version));
        }
        Ok(())
    }

    /// Brings `host` into a live canary of `app` (it reconnected, or the
    /// gateway restarted): stages the canary there if needed and sends
    /// its share.
    pub(super) async fn reconcile_canary(&self, host: &str, app: &str, progress: &ProgressTx) {
        let Some(live) = self.live_canary(app) else {
            return;
        };
        let (a, v) = (app.to_string(), live.progress.version);
        let Ok(Some(rel)) = self.db.call(move |c| store::release(c, &a, v)).await else {
            return;
        };
        let kept = self
            .registry
            .reported(host)
            .get(app)
            .is_some_and(|h| h.kept.contains(&v));
        if !kept
            && let Err(e) = self
                .stage(&rel, vec![host.to_string()], "gateway", progress)
                .await
        {
            tracing::warn!(host, app, error = %e, "reconcile: could not stage a canary");
            return;
        }
        let failed = self
            .send_shares(&live, vec![host.to_string()], None, progress)
            .await;
        if !failed.is_empty() {
            tracing::warn!(host, app, "reconcile: could not set a canary's share");
        }
    }
}

/// Holds each step of a canary for its window, then moves on; ends when
/// the canary does (promoted, aborted) or the fleet is gone.
async fn drive(fleet: std::sync::Weak<Fleet>, app: String, version: Version) {
    loop {
        tokio::time::sleep(TICK).await;
        let Some(f) = fleet.upgrade() else { return };
        let Some(live) = f
            .live_canary(&app)
            .filter(|l| l.progress.version == version)
        else {
            return;
        };
        let window = Duration::from_secs(live.progress.plan.window_s);
        if live.step_started.elapsed() >= window && !f.next_step(&app, version).await {
            return;
        }
    }
}
