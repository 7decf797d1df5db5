//! Health after a switch: a manifest's `health.path` (http: a request that
//! must answer 2xx) and `health.rule` (an expression over the app's metrics
//! that must stay false), checked every second for the health window. The
//! first failure marks the release failed and rolls the app back; through a
//! gateway, the host reports it and the whole fleet rolls back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use schema::expr::{Metrics, Rule};
use schema::{AppKind, Version};

use super::Host;
use crate::filter::CompiledRule;
use crate::runtime::ReleaseRun;

/// How often health is checked during the window.
const EVERY: Duration = Duration::from_secs(1);

impl Host {
    /// One health probe of `run`: Ok for a 2xx, else why not.
    pub(super) async fn check_health(
        &self,
        run: &Arc<ReleaseRun>,
        path: &str,
    ) -> Result<(), String> {
        let limit = Duration::from_secs(10);
        match tokio::time::timeout(
            limit,
            crate::runtime::http::probe(&self.rt, run.clone(), path),
        )
        .await
        {
            Ok(Ok(s)) if (200..300).contains(&s) => Ok(()),
            Ok(Ok(s)) => Err(format!("GET {path} returned {s}")),
            Ok(Err(e)) => Err(format!("GET {path} failed: {e}")),
            Err(_) => Err(format!(
                "GET {path} did not answer within {} s",
                limit.as_secs()
            )),
        }
    }

    fn is_active(&self, run: &Arc<ReleaseRun>) -> bool {
        self.supervisor(&run.app)
            .and_then(|s| s.active())
            .is_some_and(|a| Arc::ptr_eq(&a, run))
    }

    /// Watches a release just switched to, for its manifest's health window:
    /// the health path (probed) and the health rule (evaluated over the
    /// app's metrics since the switch). Stops when another release takes over.
    pub(super) fn watch_health(self: &Arc<Self>, run: Arc<ReleaseRun>) {
        let m = &run.manifest;
        let path = m.health.path.clone().filter(|_| m.kind == AppKind::Http);
        let rule = match m.health.rule.as_deref().map(schema::expr::parse_rule) {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                // Manifests are checked at deploy; this is an old database.
                tracing::warn!(app = %run.app, error = %e, "ignoring an invalid health rule");
                None
            }
            None => None,
        };
        if path.is_none() && rule.is_none() {
            return;
        }
        let window = Duration::from_secs(m.health_window_s());
        let host = Arc::downgrade(self);
        tokio::spawn(async move {
            let compiled = rule.as_ref().map(|r| (r, CompiledRule::compile(r).ok()));
            let started = Instant::now();
            let restarts_before = host.upgrade().map(|h| h.restarts_of(&run)).unwrap_or(0);
            while started.elapsed() < window {
                tokio::time::sleep(EVERY).await;
                let Some(host) = host.upgrade() else { return };
                if !host.is_active(&run) {
                    return;
                }
                let mut failure = None;
                if let Some(path) = &path
                    && let Err(reason) = host.check_health(&run, path).await
                {
                    failure = Some(reason);
                }
                if failure.is_none()
                    && let Some((rule, jit)) = &compiled
                {
                    let m = host.metrics_of(&run, started.elapsed(), restarts_before);
                    if eval(rule, jit.as_ref(), &m) {
                        failure = Some(format!(
                            "health rule `{}` tripped: {}",
                            rule.source(),
                            explain(rule, jit.as_ref(), &m)
                        ));
                    }
                }
                if let Some(reason) = failure {
                    let _op = host.op_lock(&run.app).await;
                    if host.is_active(&run) {
                        host.fail_release(&run.app, run.version, &reason).await;
                    }
                    return;
                }
            }
        });
    }

    /// Restarts of `run`'s instances so far.
    fn restarts_of(&self, run: &Arc<ReleaseRun>) -> u64 {
        self.restarts_of_versions(&run.app, &[run.version])[0]
    }

    /// Restarts so far of the instances of each of `versions` of `app`.
    pub(super) fn restarts_of_versions(&self, app: &str, versions: &[Version]) -> Vec<u64> {
        let st = self.supervisor(app).map(|s| s.status());
        versions
            .iter()
            .map(|v| {
                st.iter()
                    .flat_map(|st| &st.instances)
                    .filter(|i| i.release == *v)
                    .map(|i| u64::from(i.restarts))
                    .sum()
            })
            .collect()
    }

    /// The metrics a health rule reads, for `run` since it became active.
    fn metrics_of(&self, run: &Arc<ReleaseRun>, since: Duration, restarts_before: u64) -> Metrics {
        // Whole seconds since the switch, and the partial second it happened in.
        let over = since + EVERY;
        let snapshot = match self.rt.routes.get(&run.app) {
            Some(route) => Some(route.metrics.snapshot(over)),
            None => self
                .rt
                .message_metrics_of(&run.app)
                .map(|m| m.window.snapshot(over)),
        };
        Metrics {
            restarts: self.restarts_of(run).saturating_sub(restarts_before),
            ..snapshot.map(|s| s.rule_metrics()).unwrap_or_default()
        }
    }
}

fn eval(rule: &Rule, jit: Option<&CompiledRule>, m: &Metrics) -> bool {
    match jit {
        Some(c) => c.eval(m),
        None => rule.eval(m),
    }
}

fn explain(rule: &Rule, jit: Option<&CompiledRule>, m: &Metrics) -> String {
    match jit {
        Some(c) => c.explain(m).to_string(),
        None => rule.explain(m).to_string(),
    }
}
