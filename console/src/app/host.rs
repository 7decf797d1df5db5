//! The host view's side of [`App`]: Enter on the hosts table opens a host,
//! its apps from the snapshot and its instances from each app's `ps APP`.

use std::collections::BTreeMap;

use schema::{HostRow, PsRow};

use super::{App, View};
use crate::event::Action;

/// The host opened with Enter. Instances are per app, only those on this
/// host; an app missing from `instances` is still loading.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    pub name: String,
    /// The apps placed on the host, in the snapshot's order.
    pub apps: Vec<String>,
    pub instances: BTreeMap<String, Vec<PsRow>>,
    /// The selected row of the table (instances grouped by app).
    pub sel: usize,
}

/// Whether `row` (an app of the snapshot) is placed on `host`.
pub fn placed_on(row: &PsRow, host: &str) -> bool {
    if row.hosts.is_empty() {
        row.host.split(',').any(|h| h.trim() == host)
    } else {
        row.hosts.iter().any(|h| h == host)
    }
}

impl HostView {
    /// The rows the host view's table shows: every instance on the host,
    /// grouped by app; an app without one here (loading, or an http app
    /// between requests) shows one row without an instance.
    pub fn rows<'a>(&'a self, apps: &'a [PsRow]) -> Vec<(&'a PsRow, Option<&'a PsRow>)> {
        let mut out = Vec::new();
        for name in &self.apps {
            let Some(app) = apps.iter().find(|r| &r.app == name) else {
                continue;
            };
            match self.instances.get(name).filter(|i| !i.is_empty()) {
                Some(list) => out.extend(list.iter().map(|i| (app, Some(i)))),
                None => out.push((app, None)),
            }
        }
        out
    }

    /// The app of the selected row: what `l`, `r` and `+` act on.
    pub fn selected_app(&self) -> Option<&str> {
        // Rows follow `apps` in order; `instances` says how many each has.
        let mut row = 0;
        for name in &self.apps {
            let n = self.instances.get(name).map_or(0, Vec::len).max(1);
            if self.sel < row + n {
                return Some(name);
            }
            row += n;
        }
        self.apps.last().map(String::as_str)
    }

    /// The instances of `app` a `ps APP` answered: those on this host.
    pub(super) fn instances_of(&mut self, app: &str, rows: &[PsRow]) {
        if !self.apps.iter().any(|a| a == app) {
            return;
        }
        let mut here: Vec<PsRow> = rows
            .iter()
            .filter(|r| r.host == self.name)
            .cloned()
            .collect();
        here.sort_by(|a, b| a.instance.cmp(&b.instance));
        self.instances.insert(app.to_string(), here);
    }

    /// Rows in the table (for moving the selection).
    pub(super) fn len(&self) -> usize {
        self.apps
            .iter()
            .map(|a| self.instances.get(a).map_or(0, Vec::len).max(1))
            .sum()
    }
}

impl App {
    /// Opens `host`: its apps now, their instances as each `ps APP` answers.
    pub(super) fn open_host(&mut self, host: String) -> Vec<Action> {
        let apps: Vec<String> = self
            .apps
            .iter()
            .filter(|r| placed_on(r, &host))
            .map(|r| r.app.clone())
            .collect();
        let load: Vec<Action> = apps.iter().cloned().map(Action::LoadInstances).collect();
        self.host_view = Some(HostView {
            name: host,
            apps,
            instances: BTreeMap::new(),
            sel: 0,
        });
        let mut actions = self.go(View::Host);
        actions.extend(load);
        actions
    }

    /// A new snapshot while a host is open: its apps again, and their
    /// instances reloaded when what the snapshot says of them changed.
    pub(super) fn host_snapshot(&mut self, hosts: &[HostRow], apps: &[PsRow]) -> Vec<Action> {
        if self.view() != View::Host {
            return Vec::new();
        }
        let Some(h) = self.host_view.as_mut() else {
            return Vec::new();
        };
        let name = h.name.clone();
        let figures = |hosts: &[HostRow], apps: &[PsRow]| {
            let host = hosts
                .iter()
                .find(|r| r.name == name)
                .map(|r| (r.state, r.apps, r.instances));
            let apps: Vec<_> = apps
                .iter()
                .filter(|r| placed_on(r, &name))
                .map(|r| (r.app.clone(), r.release, r.running, r.state, r.restarts))
                .collect();
            (host, apps)
        };
        if figures(&self.hosts, &self.apps) == figures(hosts, apps) {
            return Vec::new();
        }
        h.apps = apps
            .iter()
            .filter(|r| placed_on(r, &name))
            .map(|r| r.app.clone())
            .collect();
        let placed = h.apps.clone();
        h.instances.retain(|a, _| placed.contains(a));
        h.sel = h.sel.min(h.len().saturating_sub(1));
        placed.into_iter().map(Action::LoadInstances).collect()
    }
}
