//! Hosts coming and going: hellos, heartbeats, events, re-placement,
//! reconciliation, and the monitor that declares silent hosts down.
//!
//! What a host reports is applied by the fleet's report task
//! (`events.rs`), never by its tunnel: these methods must not wait for a
//! host's reply (what does is spawned).

use schema::Actor;
use schema::audit::Action;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use schema::tunnel::{Heartbeat, Hello, HostApp, HostEvent};
use schema::{AuditEntry, ReleaseState, Version};
use tokio::sync::mpsc;

use super::{Fleet, Progress, lock};
use crate::placement;
use crate::store::{self, HostRecord};
use crate::tunnel::HostConn;

impl Fleet {
    /// A host said hello: record it. Refuses a second live connection of
    /// the same host name from another key.
    pub(super) async fn host_connected(
        &self,
        conn: Arc<HostConn>,
        hello: &Hello,
    ) -> Result<(), String> {
        // A host's name belongs to the key it was enrolled with.
        if hello.name != conn.key {
            let why = format!(
                "the key {} is enrolled for the host {}, not {}: each host has its own key (`keys add --role host FILE --name NAME`)",
                conn.key, conn.key, hello.name
            );
            self.audit_refused(&conn.key, Action::Hello, None, &why)
                .await;
            return Err(why);
        }
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
        // A host that reconnects within the grace period stays settled: a
        // flap costs it nothing, and nothing moves because of it.
        let back = self
            .registry
            .connect(&hello.name, conn, hello.apps.clone(), now);
        tracing::info!(host = %hello.name, arch = %hello.arch, apps = hello.apps.len(), "host connected");
        if back {
            let h = &hello.name;
            self.audit("gateway", Action::HostUp, None, format!("{h}: back"))
                .await;
        }
        Ok(())
    }

    /// Once the host is accepted (what this sends it leaves after the
    /// welcome): adopt break-glass actions, then converge.
    pub(super) fn after_hello(self: Arc<Self>, conn: Arc<HostConn>, hello: Hello) {
        tokio::spawn(async move {
            for a in &hello.local_actions {
                self.record_local_action(&hello.name, a, true).await;
            }
            self.adopt_local_rollbacks(&hello.name).await;
            self.registry.announce(&hello.name);
            self.rebalance("gateway").await;
            self.reconcile(&conn.name).await;
            self.bump();
        });
    }

    pub(super) async fn host_disconnected(&self, conn: &Arc<HostConn>) {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if self.registry.disconnect(conn) {
            let h = &conn.name;
            tracing::warn!(host = %h, "tunnel closed: host is down");
            let s = self.down_after.as_secs_f64();
            self.audit(
                "gateway",
                Action::HostDown,
                None,
                format!("{h}: tunnel closed (its replicas move if it is not back in {s} s)"),
            )
            .await;
        }
        self.bump();
    }

    pub(super) async fn heartbeat(self: &Arc<Self>, host: &str, hb: Heartbeat) {
        let now = schema::time::now_millis();
        let was_down = self.registry.heartbeat(host, hb, now);
        let h = host.to_string();
        let _ = self.db.call(move |c| store::touch_host(c, &h, now)).await;
        // Not awaited here: this runs in the fleet's report task, and
        // adopting a rollback waits for hosts' replies; every host's
        // reports would wait behind it.
        let (this, h) = (self.clone(), host.to_string());
        tokio::spawn(async move { this.adopt_local_rollbacks(&h).await });
        if was_down {
            // It receives replicas once it has stayed up for the grace
            // period (`monitor`), not on its first word.
            tracing::info!(host, "host is up again");
            self.audit(
                "gateway",
                Action::HostUp,
                None,
                format!("{host}: heartbeats again"),
            )
            .await;
        }
        self.bump();
    }

    /// Records what a host reports a local user doing (`--local`), while
    /// the gateway was away (`away`: reported when it reconnected) or
    /// while connected, as that host's report: the actor is a local user
    /// *on that host* (`local:USER@HOST`), never a name it could pass off as
    /// an operator. A rollback is adopted fleet-wide only for an app placed
    /// on the host.
    pub(super) async fn record_local_action(&self, host: &str, a: &AuditEntry, away: bool) {
        let actor = Actor::Local {
            user: Actor::parse_local(&a.key).unwrap_or_else(|| "?".into()),
            host: Some(host.to_string()),
        };
        let action = a
            .action
            .parse::<Action>()
            .ok()
            .filter(|a| a.is_operator_change())
            .unwrap_or(Action::Local);
        let detail = format!(
            "{} (on {host} at {}, {})",
            schema::render::cell(&a.detail),
            schema::render::cell(&a.time),
            if away {
                "while the gateway was away"
            } else {
                "with --local"
            }
        );
        self.record(
            &actor.to_string(),
            action,
            a.app.as_deref(),
            a.refused,
            detail,
        )
        .await;
        if action == Action::Rollback
            && let Some(app) = &a.app
            && !a.refused
            && self.placed_on(app, host).await
        {
            lock(&self.adopt).insert((host.to_string(), app.clone()));
        }
    }

    /// Whether the fleet places `app` on `host`: a host reports only on
    /// what it runs for the fleet.
    async fn placed_on(&self, app: &str, host: &str) -> bool {
        self.placement_of(app)
            .await
            .is_ok_and(|p| p.get(host).is_some_and(|n| *n > 0))
    }

    /// A host rolled an app back locally: that release becomes the fleet's
    /// active one, and every other host follows.
    pub(super) async fn adopt_local_rollbacks(&self, host: &str) {
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
            let reported = self.registry.reported_active(host, &app);
            let Some(v) = reported else { continue };
            let _op = self.op_lock(&app).await;
            // The same checks as an operator's `rollback APP --to vN`: the
            // release exists, is not the active one, and the app is placed
            // on the host that asks.
            if !self.placed_on(&app, host).await {
                continue;
            }
            let target = match self.rollback_target(&app, Some(v)).await {
                Ok(t) => t,
                Err(e) => {
                    self.audit_refused(
                        &Actor::Host(host.to_string()).to_string(),
                        Action::Rollback,
                        Some(&app),
                        format!("a local rollback on {host} to {v}: {e}"),
                    )
                    .await;
                    continue;
                }
            };
            let (tx, _rx) = mpsc::unbounded_channel();
            match self
                .switch(&app, &target, &format!("local@{host}"), &tx)
                .await
            {
                Ok(from) => {
                    self.tallies.rollback(super::tallies::RollbackKind::Manual);
                    let d = format!(
                        "{} -> {v} fleet-wide, following a local rollback on {host}",
                        from.map(|f| f.to_string()).unwrap_or_else(|| "none".into())
                    );
                    self.audit("gateway", Action::Rollback, Some(&app), d).await;
                }
                Err(e) => tracing::warn!(app, host, error = %e, "could not adopt a local rollback"),
            }
        }
    }

    /// Whether `host` may report on `app` at `version`: the app is placed
    /// on it and the release exists. Anything else is refused and audited.
    async fn reports_on(&self, host: &str, app: &str, version: Version) -> bool {
        let (a, placed) = (app.to_string(), self.placed_on(app, host).await);
        let exists = self
            .db
            .call(move |c| store::release(c, &a, version))
            .await
            .is_ok_and(|r| r.is_some());
        if placed && exists {
            return true;
        }
        tracing::warn!(host, app, %version, "refused a report on an app or release not placed on it");
        self.audit_refused(
            &Actor::Host(host.to_string()).to_string(),
            Action::Report,
            None,
            format!(
                "{host} reported on {} {version}, which is not placed on it",
                schema::render::cell(app)
            ),
        )
        .await;
        false
    }

    pub(super) async fn host_event(self: Arc<Self>, host: &str, e: HostEvent) {
        match e {
            HostEvent::CanaryTripped {
                app,
                version,
                detail,
            } => {
                // A host speaks for the canaries placed on it, and only
                // while they are live.
                let placed = self
                    .placement_of(&app)
                    .await
                    .is_ok_and(|p| p.get(host).is_some_and(|n| *n > 0));
                let live = self
                    .live_canary(&app)
                    .is_some_and(|l| l.progress.version == version);
                if placed && live {
                    // What a host says is kept short: a gate's explanation
                    // is a line, not a document.
                    let detail: String = detail.chars().take(512).collect();
                    self.canary_tripped(host, app, version, detail);
                }
            }
            HostEvent::LocalAction(a) => {
                self.record_local_action(host, &a, false).await;
            }
            HostEvent::Crashloop {
                app,
                version,
                detail,
            } => {
                if !self.reports_on(host, &app, version).await {
                    return;
                }
                let (a, d) = (app.clone(), schema::render::cell(&detail));
                let _ = self
                    .db
                    .call(move |c| {
                        store::set_release_state(c, &a, version, ReleaseState::Crashloop, Some(&d))
                    })
                    .await;
                self.audit(
                    &format!("hostd@{host}"),
                    Action::Crashloop,
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
                if !self.reports_on(host, &app, version).await {
                    return;
                }
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
            // Scaled to 0: nothing to move, and the hosts holding it stopped
            // keep it.
            if app.replicas == 0 {
                continue;
            }
            let _op = self.op_lock(&app.name).await;
            let a = app.name.clone();
            let Ok(Some(rel)) = self.db.call(move |c| store::release(c, &a, active)).await else {
                continue;
            };
            let Ok(before) = self.placement_of(&app.name).await else {
                continue;
            };
            let Ok(mut c) = self.candidates(&app.name, false).await else {
                continue;
            };
            // Replicas move only to hosts up for the grace period; a host
            // keeps what it runs while it is up.
            for h in &mut c {
                h.up = h.up && (self.is_settled(&h.name) || before.contains_key(&h.name));
            }
            let labels = &rel.manifest.labels;
            let mut after = match placement::place(&app.name, app.kind, app.replicas, labels, &c) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(app = %app.name, error = %e, "cannot place");
                    continue;
                }
            };
            // A host losing its replicas keeps the app stopped (its logs
            // stay readable); only `rm` removes it.
            for h in before.keys().filter(|h| c.iter().any(|x| &x.name == *h)) {
                after.entry(h.clone()).or_insert(0);
            }
            if after == before {
                continue;
            }
            tracing::info!(app = %app.name, ?before, ?after, "placement changes");
            let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
            let log = tokio::spawn(async move {
                while let Some(p) = rx.recv().await {
                    tracing::info!(host = %p.host, "{}", p.step);
                }
            });
            let r = self.apply_placement(&rel, &before, &after, who, &tx).await;
            drop(tx);
            let _ = log.await;
            let (a, p) = (app.name.clone(), after.clone());
            let _ = self.db.call(move |c| store::set_placement(c, &a, &p)).await;
            let detail = format!("{} -> {}", fmt_placement(&before), fmt_placement(&after));
            match r {
                Ok(()) => {
                    self.audit(who, Action::Replace, Some(&app.name), detail)
                        .await
                }
                Err(e) => {
                    self.audit(
                        who,
                        Action::Replace,
                        Some(&app.name),
                        format!("{detail}: {e}"),
                    )
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
        let reported: HashMap<String, HostApp> = self.registry.reported(host);
        let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
        let log = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                tracing::info!(host = %p.host, "{}", p.step);
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
        for app in &apps {
            let placed = placements
                .get(&app.name)
                .and_then(|p| p.get(host))
                .is_some_and(|n| *n > 0);
            if placed && self.live_canary(&app.name).is_some() {
                let _op = self.op_lock(&app.name).await;
                self.reconcile_canary(host, &app.name, &tx).await;
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
pub(super) async fn monitor(fleet: std::sync::Weak<Fleet>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(fleet) = fleet.upgrade() else { return };
        let (newly_down, newly_settled) = fleet.registry.sweep(fleet.down_after);
        if !newly_settled.is_empty() && newly_down.is_empty() {
            let s = fleet.down_after.as_secs_f64();
            tracing::info!(hosts = ?newly_settled, "up for {s} s: may receive replicas");
            fleet.rebalance("gateway").await;
        }
        if !newly_down.is_empty() {
            let s = fleet.down_after.as_secs_f64();
            for g in newly_down.iter().filter(|g| !g.closed) {
                let h = &g.host;
                tracing::warn!(host = %h, "no heartbeat for {s} s: host is down");
                fleet
                    .audit(
                        "gateway",
                        Action::HostDown,
                        None,
                        format!("{h}: no heartbeat for {s} s"),
                    )
                    .await;
            }
            for g in newly_down.iter().filter(|g| g.closed) {
                tracing::warn!(host = %g.host, "gone for {s} s: its replicas move");
            }
            fleet.rebalance("gateway").await;
        }
    }
}
