//! What a host shows: ps, releases, hosts, audit.

use schema::{AuditEntry, HostRow, HostState, PsRow, ReleaseRow, RunState};

use super::{Host, HostError};
use crate::runtime::status::AppStatus;
use crate::store::{self, AppRecord, ReleaseRecord};

impl Host {
    pub(super) fn ps_row(&self, rec: &AppRecord, st: &AppStatus) -> PsRow {
        let canary = self.canary_status(&rec.name);
        PsRow {
            app: rec.name.clone(),
            kind: st.kind,
            release: st.release.or(rec.active),
            replicas: rec.replicas,
            running: st.running,
            host: self.config.name.clone(),
            state: st.state,
            restarts: st.restarts,
            instance: None,
            started: st.started.map(schema::time::rfc3339),
            next_run: st.next_run.map(schema::time::rfc3339),
            detail: canary
                .as_ref()
                .map(schema::canary::Status::summary)
                .or_else(|| st.detail.clone())
                .or_else(|| st.messages.as_ref().map(schema::MessageStats::summary)),
            rps: st.rps,
            messages: st.messages.clone(),
            requests: st.requests.clone(),
            hosts: vec![self.config.name.clone()],
            canary,
        }
    }

    pub(super) fn status_of(&self, rec: &AppRecord) -> AppStatus {
        match self.supervisor(&rec.name) {
            Some(s) => s.status(),
            None => AppStatus {
                kind: rec.kind,
                release: rec.active,
                replicas: rec.replicas,
                running: 0,
                restarts: 0,
                state: RunState::Stopped,
                detail: None,
                next_run: None,
                started: None,
                memory: 0,
                rps: None,
                messages: None,
                requests: None,
                instances: Vec::new(),
            },
        }
    }

    /// Apps, or one app's instances.
    pub async fn ps(&self, app: Option<&str>) -> Result<Vec<PsRow>, HostError> {
        match app {
            None => {
                let apps = self.db.call(|c| store::list_apps(c)).await?;
                Ok(apps
                    .iter()
                    .map(|a| self.ps_row(a, &self.status_of(a)))
                    .collect())
            }
            Some(name) => {
                let rec = self.app(name).await?;
                let st = self.status_of(&rec);
                let base = self.ps_row(&rec, &st);
                let mut rows: Vec<PsRow> = st
                    .instances
                    .iter()
                    .map(|i| PsRow {
                        release: Some(i.release),
                        running: u32::from(i.state == RunState::Running),
                        state: i.state,
                        restarts: i.restarts,
                        instance: Some(i.instance.to_string()),
                        started: i.started.map(schema::time::rfc3339),
                        detail: i.detail.clone(),
                        next_run: None,
                        messages: None,
                        requests: None,
                        ..base.clone()
                    })
                    .collect();
                // A message app's instances live for one message each: its
                // row is the host's consumer (named after the host in the
                // group), with what it handles.
                if st.messages.is_some() {
                    rows.push(PsRow {
                        instance: Some(format!("{name}.consumer")),
                        ..base
                    });
                }
                Ok(rows)
            }
        }
    }

    pub async fn releases(&self, app: &str) -> Result<Vec<ReleaseRow>, HostError> {
        self.app(app).await?;
        let a = app.to_string();
        let rs = self.db.call(move |c| store::releases(c, &a)).await?;
        Ok(rs.iter().map(ReleaseRecord::to_row).collect())
    }

    pub async fn audit_tail(&self, tail: u64) -> Result<Vec<AuditEntry>, HostError> {
        Ok(self.db.call(move |c| store::audit_tail(c, tail)).await?)
    }

    /// This host, as `hosts` shows it.
    pub async fn hosts(&self) -> Result<Vec<HostRow>, HostError> {
        let apps = self.db.call(|c| store::list_apps(c)).await?;
        let (mut n_apps, mut instances, mut memory) = (0, 0, 0);
        for a in &apps {
            let st = self.status_of(a);
            if a.active.is_some() {
                n_apps += 1;
            }
            instances += st.running;
            memory += st.memory;
        }
        Ok(vec![HostRow {
            name: self.config.name.clone(),
            arch: std::env::consts::ARCH.to_string(),
            state: HostState::Up,
            last_seen: schema::time::rfc3339(schema::time::now_millis()),
            labels: self.config.labels.clone(),
            apps: n_apps,
            instances,
            memory_bytes: memory,
        }])
    }
}
