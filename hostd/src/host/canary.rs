//! Canaries on a host: a new release takes a share of an http app's
//! requests next to the active one, and a gate rule compares the two on
//! this host every second.
//!
//! A host on its own drives its canaries itself (steps, promotion, abort).
//! Through a gateway, the gateway drives them: it sets each host's share
//! (`GatewayMsg::Canary`) and promotes with the usual switch; a host that
//! sees the gate trip cuts its own share to 0 at once and tells the
//! gateway, which aborts everywhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use schema::audit::Action;
use schema::canary::{Gauge, Outcome, Plan, Progress, Status};
use schema::expr::{Metrics, Rule};
use schema::{Actor, ReleaseState, Version};

use super::{Host, HostError};
use crate::filter::CompiledRule;
use crate::runtime::ReleaseRun;
use crate::runtime::http::CanarySplit;
use crate::store;

/// How often the gate is evaluated.
pub const GATE_EVERY: Duration = Duration::from_secs(1);

/// A canary live on this host.
#[derive(Clone)]
pub(super) struct Live {
    pub progress: Progress,
    pub split: Arc<CanarySplit>,
    /// When the step now held began here.
    pub step_started: Instant,
    /// This host drives it (on its own); else the gateway does.
    pub driven_here: bool,
    /// workers: each release's restarts when the step began.
    pub restarts_base: (u64, u64),
}

/// The gate, checked and compiled once per canary.
struct Gate {
    rule: Rule,
    jit: Option<CompiledRule>,
}

impl Gate {
    fn new(src: &str) -> Result<Gate, HostError> {
        let rule = Rule::parse(src).map_err(|err| HostError::Expr { what: "gate", err })?;
        let jit = CompiledRule::compile(&rule).ok();
        Ok(Gate { rule, jit })
    }

    /// Whether the canary fails, and the values that say so.
    fn trips(&self, canary: &Metrics, stable: &Metrics) -> Option<String> {
        let tripped = match &self.jit {
            Some(c) => c.eval_gate(canary, stable),
            None => self.rule.eval_gate(canary, stable),
        };
        tripped.then(|| {
            format!(
                "gate `{}` tripped: {}",
                self.rule.source(),
                self.rule.explain_gate(canary, stable)
            )
        })
    }
}

fn gauge(m: &Metrics) -> Gauge {
    Gauge {
        requests: m.requests,
        errors: m.errors,
        error_rate: m.error_rate,
        p99_ms: m.p99_ms,
    }
}

impl Live {
    pub fn status(&self, (c, s): (Metrics, Metrics)) -> Status {
        let p = &self.progress;
        let window = Duration::from_secs(p.plan.window_s);
        Status {
            version: p.version,
            stable: p.stable,
            step: p.step + 1,
            steps: p.plan.steps.len(),
            share: self.split.share(),
            left_s: window.saturating_sub(self.step_started.elapsed()).as_secs(),
            gate: p.plan.gate.clone(),
            canary_stats: gauge(&c),
            stable_stats: gauge(&s),
            sticky: p.plan.sticky.clone(),
            hosts: p.hosts.clone(),
        }
    }
}

impl Host {
    fn canaries_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Live>> {
        self.canaries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live canary of `app` here, if any.
    pub(super) fn live_canary(&self, app: &str) -> Option<Live> {
        self.canaries_lock().get(app).cloned()
    }

    /// What `ps` shows of `app`'s canary.
    pub fn canary_status(&self, app: &str) -> Option<Status> {
        self.live_canary(app).map(|l| l.status(self.figures(&l)))
    }

    /// Restarts of each release's instances (canary, stable) now.
    fn restarts_by_release(&self, l: &Live) -> (u64, u64) {
        let p = &l.progress;
        match self.restarts_of_versions(&p.app, &[p.version, p.stable])[..] {
            [c, s] => (c, s),
            _ => (0, 0),
        }
    }

    /// Both releases' figures since this step began: requests, errors and
    /// latency (http, message), restarts (workers).
    fn figures(&self, l: &Live) -> (Metrics, Metrics) {
        if l.split.rel.manifest.kind == schema::AppKind::Worker {
            let (c, s) = self.restarts_by_release(l);
            let m = |restarts| Metrics {
                restarts,
                ..Metrics::default()
            };
            return (
                m(c.saturating_sub(l.restarts_base.0)),
                m(s.saturating_sub(l.restarts_base.1)),
            );
        }
        let over = l.step_started.elapsed() + GATE_EVERY;
        (
            l.split.canary.snapshot(over).rule_metrics(),
            l.split.stable.snapshot(over).rule_metrics(),
        )
    }

    /// Sets the canary's share where this kind of app takes it: the http
    /// route, the message consumer, the worker's replicas.
    fn apply_share(&self, l: &Live, share: u8) {
        l.split.set_share(share);
        if l.split.rel.manifest.kind == schema::AppKind::Worker
            && let Some(sup) = self.supervisor(&l.progress.app)
        {
            sup.set_canary(Some((l.split.rel.clone(), share)));
        }
    }

    /// Starts a canary of this host's own (not managed by a gateway): the
    /// release `run` (recorded, state `canary`) beside the active one.
    pub(super) async fn start_canary(
        self: &Arc<Self>,
        run: Arc<ReleaseRun>,
        progress: Progress,
    ) -> Result<Status, HostError> {
        let gate = Gate::new(&progress.plan.gate)?;
        let live = self.put_split(run, &progress, true)?;
        let status = live.status(self.figures(&live));
        let p = progress.clone();
        self.db.call(move |c| db::canaries::save(c, &p)).await?;
        tokio::spawn(drive(Arc::downgrade(self), progress.app.clone(), gate));
        Ok(status)
    }

    /// Sets the split for `run` at the progress's share where the app's
    /// kind takes it, and remembers it as live.
    fn put_split(
        &self,
        run: Arc<ReleaseRun>,
        progress: &Progress,
        driven_here: bool,
    ) -> Result<Live, HostError> {
        let app = &progress.app;
        let split = CanarySplit::new(
            run.clone(),
            progress.share(),
            progress.plan.sticky.as_deref(),
        );
        match run.manifest.kind {
            schema::AppKind::Http => {
                let route = self.rt.routes.get(app).ok_or_else(|| {
                    HostError::Refused(format!("{app} is not serving on this host"))
                })?;
                route.set_canary(Some(split.clone()));
            }
            schema::AppKind::Message => self.rt.set_message_canary(app, Some(split.clone())),
            schema::AppKind::Worker => {
                let sup = self.supervisor(app).ok_or_else(|| {
                    HostError::Refused(format!("{app} is not running on this host"))
                })?;
                sup.set_canary(Some((run.clone(), progress.share())));
            }
            schema::AppKind::Job => {
                return Err(HostError::Refused(format!(
                    "{app} is a job: a job runs one at a time, there is nothing to share with a canary"
                )));
            }
        }
        let mut live = Live {
            progress: progress.clone(),
            split,
            step_started: Instant::now(),
            driven_here,
            restarts_base: (0, 0),
        };
        live.restarts_base = self.restarts_by_release(&live);
        self.canaries_lock().insert(app.clone(), live.clone());
        Ok(live)
    }

    /// Takes the split away wherever it is.
    fn clear_split(&self, app: &str, split: &Arc<CanarySplit>) {
        if let Some(route) = self.rt.routes.get(app)
            && route.canary().is_some_and(|s| Arc::ptr_eq(&s, split))
        {
            route.set_canary(None);
        }
        if self
            .rt
            .message_canary(app)
            .is_some_and(|s| Arc::ptr_eq(&s, split))
        {
            self.rt.set_message_canary(app, None);
        }
        if split.rel.manifest.kind == schema::AppKind::Worker
            && let Some(sup) = self.supervisor(app)
        {
            sup.set_canary(None);
        }
    }

    /// Cuts the canary's share to 0 here at once (its requests go to the
    /// stable release from the next one on); it stays listed until ended.
    fn cut(&self, app: &str) {
        if let Some(l) = self.live_canary(app) {
            self.apply_share(&l, 0);
        }
    }

    /// Removes the split and forgets the canary (in memory and on disk).
    async fn forget_canary(&self, app: &str) -> Result<(), HostError> {
        let live = self.canaries_lock().remove(app);
        if let (Some(l), Some(route)) = (&live, self.rt.routes.get(app)) {
            let still = route.canary().is_some_and(|s| Arc::ptr_eq(&s, &l.split));
            if still {
                route.set_canary(None);
            }
        }
        let a = app.to_string();
        self.db.call(move |c| db::canaries::delete(c, &a)).await?;
        Ok(())
    }

    /// `promote APP` (or the last step passed): the canary becomes the
    /// active release through the usual switch.
    pub async fn promote(self: &Arc<Self>, who: &Actor, app: &str) -> Result<Outcome, HostError> {
        let _op = self.op_lock(app).await;
        self.promote_locked(who, app).await
    }

    async fn promote_locked(
        self: &Arc<Self>,
        who: &Actor,
        app: &str,
    ) -> Result<Outcome, HostError> {
        let rec = self.app(app).await?;
        super::refuse_if_managed(Some(&rec), who, "promote")?;
        let live = self
            .live_canary(app)
            .ok_or_else(|| HostError::Op(ops::cmd::canary::no_canary(app, "promote")))?;
        let p = &live.progress;
        let target =
            self.release(app, p.version)
                .await?
                .ok_or_else(|| HostError::NoSuchRelease {
                    app: app.to_string(),
                    version: p.version,
                })?;
        self.switch_to(app, &target).await?;
        self.forget_canary(app).await?;
        let detail = ops::cmd::canary::promoted_detail(p);
        self.audit(who, Action::Promote, Some(app), &detail).await;
        self.logs.system(
            app,
            Some(p.version),
            "hostd",
            format!("promoted {detail} by {who}"),
        );
        if let Some(run) = self.active_run(app) {
            self.watch_health(run);
        }
        Ok(Outcome {
            app: app.to_string(),
            version: p.version,
            stable: p.stable,
            action: "promoted".into(),
            hosts: vec![self.config.name.clone()],
        })
    }

    /// `abort APP` (or the gate tripped, `reason` saying how): the canary's
    /// share goes to 0, the release is marked failed.
    pub async fn abort(
        &self,
        who: &Actor,
        app: &str,
        reason: Option<&str>,
    ) -> Result<Outcome, HostError> {
        // A tripped gate cuts the share before waiting for the lock; an
        // operator's abort is checked first (a refusal changes nothing).
        if reason.is_some() {
            self.cut(app);
        }
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        if reason.is_none() {
            super::refuse_if_managed(Some(&rec), who, "abort")?;
        }
        self.cut(app);
        let live = self
            .live_canary(app)
            .ok_or_else(|| HostError::Op(ops::cmd::canary::no_canary(app, "abort")))?;
        self.forget_canary(app).await?;
        let p = &live.progress;
        let why = match reason {
            Some(r) => r.to_string(),
            None => format!("aborted by {who}"),
        };
        let (a, v, d) = (app.to_string(), p.version, format!("canary: {why}"));
        self.db
            .call(move |c| store::set_release_state(c, &a, v, ReleaseState::Failed, Some(&d)))
            .await?;
        let line = ops::cmd::canary::aborted_line(p, &why);
        self.logs.system(app, Some(p.version), "hostd", &line);
        self.audit(who, Action::Abort, Some(app), &line).await;
        Ok(Outcome {
            app: app.to_string(),
            version: p.version,
            stable: p.stable,
            action: "aborted".into(),
            hosts: vec![self.config.name.clone()],
        })
    }

    /// Moves a canary driven here to its next step, or promotes it after
    /// the last. Returns false when the canary is over.
    async fn next_step(self: &Arc<Self>, app: &str) -> bool {
        let _op = self.op_lock(app).await;
        let Some(mut live) = self.live_canary(app) else {
            return false;
        };
        let who = Actor::Daemon("hostd");
        live.progress.step += 1;
        if live.progress.step >= live.progress.plan.steps.len() {
            if let Err(e) = self.promote_locked(&who, app).await {
                tracing::warn!(app, error = %e, "could not promote a canary that passed its steps");
                return false;
            }
            return false;
        }
        let share = live.progress.share();
        live.progress.step_started_ms = schema::time::now_millis();
        self.apply_share(&live, share);
        live.step_started = Instant::now();
        live.restarts_base = self.restarts_by_release(&live);
        let p = live.progress.clone();
        self.canaries_lock().insert(app.to_string(), live);
        let line = ops::cmd::canary::step_line(&p);
        if let Err(e) = self.db.call(move |c| db::canaries::save(c, &p)).await {
            tracing::warn!(app, error = %e, "could not record a canary's step");
        }
        self.logs.system(app, None, "hostd", &line);
        self.audit(&who, Action::CanaryStep, Some(app), &line).await;
        true
    }

    /// Restarts the canaries this host drove when it stopped, each at the
    /// step it had reached, its window started again (a restart never
    /// promotes by itself).
    pub(super) async fn resume_canaries(self: &Arc<Self>) -> Result<(), HostError> {
        let all = self.db.call(|c| db::canaries::all(c)).await?;
        for mut p in all {
            let app = p.app.clone();
            let resumed = async {
                let rec = self.release(&app, p.version).await?.ok_or_else(|| {
                    HostError::NoSuchRelease {
                        app: app.clone(),
                        version: p.version,
                    }
                })?;
                let (run, _) = self.prepare(&rec).await?;
                p.step_started_ms = schema::time::now_millis();
                self.start_canary(run, p.clone()).await
            }
            .await;
            match resumed {
                Ok(s) => {
                    tracing::info!(app, version = %s.version, share = s.share, "resumed a canary")
                }
                Err(e) => {
                    tracing::warn!(app, error = %e, "could not resume a canary; it is dropped");
                    let a = app.clone();
                    let _ = self.db.call(move |c| db::canaries::delete(c, &a)).await;
                }
            }
        }
        Ok(())
    }

    /// The gateway sets this host's share of `app`'s canary `version`
    /// (staged here before): the first time, the split is made and the gate
    /// watched here; 0 ends it here (aborted, or the host no longer takes
    /// part).
    #[allow(clippy::too_many_arguments)]
    pub async fn canary_share(
        self: &Arc<Self>,
        by: &str,
        app: &str,
        version: Version,
        share: u8,
        sticky: Option<String>,
        gate: &str,
        failed: Option<&str>,
    ) -> Result<(), HostError> {
        let _op = self.op_lock(app).await;
        let rec = self.app(app).await?;
        let live = self
            .live_canary(app)
            .filter(|l| l.progress.version == version);
        if share == 0 {
            if live.is_some() {
                self.cut(app);
                self.forget_canary(app).await?;
            }
            if let Some(why) = failed {
                let (a, d) = (app.to_string(), format!("canary: {why}"));
                self.db
                    .call(move |c| {
                        store::set_release_state(c, &a, version, ReleaseState::Failed, Some(&d))
                    })
                    .await?;
                self.logs.system(
                    app,
                    Some(version),
                    "hostd",
                    format!("canary {version} ended by {by}: {why}"),
                );
            }
            return Ok(());
        }
        if let Some(mut l) = live {
            self.apply_share(&l, share);
            l.step_started = Instant::now();
            l.restarts_base = self.restarts_by_release(&l);
            l.progress.plan.steps = vec![share];
            self.canaries_lock().insert(app.to_string(), l);
            return Ok(());
        }
        let stable = rec.active.ok_or_else(|| {
            HostError::Refused(format!(
                "{app} has no active release here to run a canary beside"
            ))
        })?;
        let target = self
            .release(app, version)
            .await?
            .ok_or_else(|| HostError::NoSuchRelease {
                app: app.to_string(),
                version,
            })?;
        let (run, _) = self.prepare(&target).await?;
        let g = Gate::new(gate)?;
        let progress = Progress {
            app: app.to_string(),
            version,
            stable,
            plan: Plan {
                steps: vec![share],
                window_s: schema::canary::MAX_WINDOW_S,
                sticky,
                gate: gate.to_string(),
                hosts: None,
            },
            step: 0,
            step_started_ms: schema::time::now_millis(),
            by: by.to_string(),
            hosts: Vec::new(),
        };
        self.put_split(run, &progress, false)?;
        let a = app.to_string();
        self.db
            .call(move |c| store::set_release_state(c, &a, version, ReleaseState::Canary, None))
            .await?;
        self.logs.system(
            app,
            Some(version),
            "hostd",
            format!("canary {version} at {share}% next to {stable}, for {by}"),
        );
        tokio::spawn(drive(Arc::downgrade(self), app.to_string(), g));
        Ok(())
    }

    /// A switch ends any canary of `app` here (promoted: it is the
    /// release now; a rollback aborted it first).
    pub(super) async fn end_canary_on_switch(&self, app: &str) {
        let gone = self.canaries_lock().remove(app);
        if let Some(l) = gone {
            // The route's and the supervisor's went with the switch.
            self.clear_split(app, &l.split);
            let a = app.to_string();
            let _ = self.db.call(move |c| db::canaries::delete(c, &a)).await;
        }
    }

    /// The plan of a canary deploy, checked against this host's state:
    /// an active release to compare with, no other canary live, a share
    /// (not `--canary-hosts`, which needs a fleet).
    pub(super) fn check_canary(
        &self,
        app: &str,
        plan: &Plan,
        active: Option<Version>,
    ) -> Result<Version, HostError> {
        if plan.hosts.is_some() {
            return Err(HostError::Refused(format!(
                "--canary-hosts moves whole hosts of a fleet; on one host give a share: `deploy {app} FILE --canary 10%`"
            )));
        }
        let live = self.live_canary(app).map(|l| l.progress.version);
        Ok(ops::cmd::canary::check_start(app, active, live)?)
    }
}

/// Watches a canary: evaluates the gate every [`GATE_EVERY`]; the moment
/// it trips, the canary's share here goes to 0. A canary of this host's own
/// is then aborted, and moves through its steps (promoted after the last);
/// a canary the gateway drives is reported to it, which aborts everywhere.
async fn drive(host: std::sync::Weak<Host>, app: String, gate: Gate) {
    let mut reported = None;
    loop {
        tokio::time::sleep(GATE_EVERY).await;
        let Some(h) = host.upgrade() else { return };
        let Some(live) = h.live_canary(&app) else {
            return;
        };
        let version = live.progress.version;
        if live.split.share() > 0 || reported != Some(version) {
            let (c, s) = h.figures(&live);
            if let Some(reason) = gate.trips(&c, &s) {
                h.cut(&app);
                if live.driven_here {
                    if let Err(e) = h.abort(&Actor::Daemon("hostd"), &app, Some(&reason)).await {
                        tracing::warn!(app, error = %e, "could not abort a canary");
                    }
                    return;
                }
                if reported != Some(version) {
                    h.logs.system(
                        &app,
                        Some(version),
                        "hostd",
                        format!(
                            "canary {version}: {reason}; its share here is 0, the gateway aborts it"
                        ),
                    );
                    h.publish(schema::tunnel::HostEvent::CanaryTripped {
                        app: app.clone(),
                        version,
                        detail: reason,
                    });
                    reported = Some(version);
                }
                continue;
            }
        }
        let window = Duration::from_secs(live.progress.plan.window_s);
        if live.driven_here && live.step_started.elapsed() >= window && !h.next_step(&app).await {
            return;
        }
    }
}
