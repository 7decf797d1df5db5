//! What operators read: releases, audit, hosts, ps.

use std::collections::BTreeMap;
use std::sync::Arc;

use schema::{
    AuditEntry, HostRow, HostState, MessageStats, PsRow, ReleaseRow, RequestStats, RunState,
};
use tokio::sync::broadcast;

use super::{Fleet, FleetError};
use crate::store::{self, ReleaseRecord};
use crate::tunnel::HostConn;
use schema::tunnel::Heartbeat;

impl Fleet {
    pub async fn releases(&self, app: &str) -> Result<Vec<ReleaseRow>, FleetError> {
        self.app(app).await?;
        let a = app.to_string();
        let rs = self.db.call(move |c| store::releases(c, &a)).await?;
        Ok(rs.iter().map(ReleaseRecord::to_row).collect())
    }

    /// The last `n` events of the audit log (see `AuditEntry::is_event`),
    /// oldest first: the console's feed.
    pub async fn events(&self, n: usize) -> Result<Vec<AuditEntry>, FleetError> {
        let mut all: Vec<AuditEntry> = self
            .audit_tail(2000)
            .await?
            .into_iter()
            .filter(AuditEntry::is_event)
            .collect();
        let from = all.len().saturating_sub(n);
        Ok(all.split_off(from))
    }

    pub async fn audit_tail(&self, tail: u64) -> Result<Vec<AuditEntry>, FleetError> {
        Ok(self.db.call(move |c| store::audit_tail(c, tail)).await?)
    }

    pub async fn hosts(&self) -> Result<Vec<HostRow>, FleetError> {
        let hosts = self.db.call(|c| store::hosts(c)).await?;
        let live = self.registry.snapshot();
        Ok(hosts
            .into_iter()
            .map(|h| {
                let l = live.get(&h.name);
                let hb = l.and_then(|l| l.hb.as_ref());
                HostRow {
                    state: l.map_or(HostState::Down, |l| l.state),
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

    /// Every host the gateway knows of, as it last heard (`--metrics`),
    /// by name.
    pub fn host_states(&self) -> Vec<super::tallies::HostFigures> {
        let mut v: Vec<_> = self
            .registry
            .snapshot()
            .into_iter()
            .map(|(name, l)| super::tallies::HostFigures {
                name,
                state: l.state,
                instances: l.hb.as_ref().map_or(0, |h| h.instances),
                memory_bytes: l.hb.as_ref().map_or(0, |h| h.memory_bytes),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Apps across the fleet (one row each, `host` listing where it runs),
    /// or one app's instances on every host.
    pub async fn ps(&self, app: Option<&str>) -> Result<Vec<PsRow>, FleetError> {
        let (apps, placements) = self
            .db
            .call(|c| Ok((store::list_apps(c)?, store::placements(c)?)))
            .await?;
        let live = self.registry.snapshot();
        let rows_of = |app: &str| -> Vec<PsRow> {
            live.iter()
                .filter(|(_, l)| l.up())
                .filter_map(|(_, l)| l.hb.as_ref())
                .flat_map(|hb| hb.ps.iter().filter(|r| r.app == app).cloned())
                .collect()
        };
        match app {
            Some(name) => {
                if !apps.iter().any(|a| a.name == name) {
                    return Err(FleetError::UnknownApp(name.to_string()));
                }
                let mut rows: Vec<PsRow> = live
                    .values()
                    .filter(|l| l.up())
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
                    let messages = merged(
                        rows.iter().filter_map(|r| r.messages.as_ref()),
                        MessageStats::merge,
                    );
                    // A host holding the app stopped (0 replicas) being down
                    // costs the app nothing.
                    let down: Vec<&String> = placed
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(|(h, _)| h)
                        .filter(|h| !live.get(*h).is_some_and(|l| l.up()))
                        .collect();
                    let state = if rows.iter().any(|r| r.state == RunState::Crashloop) {
                        RunState::Crashloop
                    } else if !down.is_empty() {
                        RunState::Degraded
                    } else if let Some(r) = rows.iter().find(|r| !r.state.is_healthy()) {
                        r.state
                    } else {
                        rows.first().map(|r| r.state).unwrap_or(if a.replicas == 0 {
                            RunState::Stopped
                        } else {
                            RunState::Pending
                        })
                    };
                    let canary = self.canary_status(&a.name, &rows);
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
                        detail: if let Some(c) = &canary {
                            Some(c.summary())
                        } else if down.is_empty() {
                            // A host's trouble first; else the fleet's
                            // message figures; else any host's word.
                            rows.iter()
                                .filter(|r| !r.state.is_healthy())
                                .find_map(|r| r.detail.clone())
                                .or_else(|| messages.as_ref().map(MessageStats::summary))
                                .or_else(|| rows.iter().find_map(|r| r.detail.clone()))
                        } else {
                            Some(format!(
                                "down: {}",
                                down.iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            ))
                        },
                        messages,
                        requests: merged(
                            rows.iter().filter_map(|r| r.requests.as_ref()),
                            RequestStats::merge,
                        ),
                        hosts: placed.keys().cloned().collect(),
                        canary,
                    }
                })
                .collect()),
        }
    }

    /// Hosts that run (or should run) `app` now, connected.
    pub fn hosts_with(&self, app: &str, placement: &BTreeMap<String, u32>) -> Vec<String> {
        let mut hosts: Vec<String> = placement.keys().cloned().collect();
        for h in self.registry.running(app) {
            if !hosts.contains(&h) {
                hosts.push(h);
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
        self.registry.subscribe()
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

/// The hosts' figures of an app as the fleet's (`None`: no host has any).
fn merged<'a, T: Default + 'a>(
    each: impl Iterator<Item = &'a T>,
    merge: fn(&mut T, &T),
) -> Option<T> {
    each.fold(None, |acc, x| {
        let mut acc = acc.unwrap_or_default();
        merge(&mut acc, x);
        Some(acc)
    })
}
