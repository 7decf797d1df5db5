//! What `ssh-gateway serve --metrics ADDR` serves: the fleet as the gateway
//! sees it (hosts by state, per host), what operators and the gateway did
//! (deploys, rollbacks) and who is connected (SSH connections by role), in
//! the Prometheus text format.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prom::{Exposition, Kind};
use schema::{HostState, Role};

use crate::fleet::{Fleet, FleetError};
use crate::sessions::Sessions;

/// How a deploy ended, as `cranefleet_deploys_total{outcome}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployTally {
    /// Staged and switched on every chosen host.
    Succeeded,
    /// Staging or activation failed on a host (nothing switched, or the
    /// release was rolled back).
    Failed,
    /// Refused before any host was asked: a bad manifest or artifact, no
    /// host to place it on, a check of the operations layer.
    Refused,
}

impl DeployTally {
    const ALL: [DeployTally; 3] = [
        DeployTally::Succeeded,
        DeployTally::Failed,
        DeployTally::Refused,
    ];

    fn as_str(self) -> &'static str {
        match self {
            DeployTally::Succeeded => "succeeded",
            DeployTally::Failed => "failed",
            DeployTally::Refused => "refused",
        }
    }

    pub fn of(r: &Result<schema::DeployOutcome, FleetError>) -> DeployTally {
        match r {
            Ok(_) => DeployTally::Succeeded,
            Err(FleetError::Staging { .. } | FleetError::Activation(_)) => DeployTally::Failed,
            Err(_) => DeployTally::Refused,
        }
    }
}

/// Who rolled an app back, as `cranefleet_rollbacks_total{kind}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackKind {
    /// An operator's `rollback` (at the gateway, or on a host while the
    /// gateway was away, then adopted fleet-wide).
    Manual,
    /// The gateway's, after a release failed to activate or its health
    /// check failed on a host.
    Auto,
}

/// Counts of what happened since the gateway started.
#[derive(Debug, Default)]
pub struct Tallies {
    deploys: [AtomicU64; 3],
    rollbacks: [AtomicU64; 2],
}

impl Tallies {
    pub fn deploy(&self, outcome: DeployTally) {
        self.deploys[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rollback(&self, kind: RollbackKind) {
        self.rollbacks[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn deploys(&self, outcome: DeployTally) -> u64 {
        self.deploys[outcome as usize].load(Ordering::Relaxed)
    }

    fn rollbacks(&self, kind: RollbackKind) -> u64 {
        self.rollbacks[kind as usize].load(Ordering::Relaxed)
    }
}

/// The gateway's figures: its fleet and its SSH connections.
pub struct GatewayMetrics {
    pub fleet: Arc<Fleet>,
    pub sessions: Arc<Sessions>,
}

impl prom::Source for GatewayMetrics {
    fn render(&self, out: &mut Exposition) {
        let hosts = self.fleet.host_states();
        out.family(
            "cranefleet_hosts",
            "Hosts the gateway knows, by state (up: heard from within --down-after-s; connecting: known from before a restart, not heard from yet).",
            Kind::Gauge,
        );
        for state in [HostState::Up, HostState::Down, HostState::Connecting] {
            let n = hosts.iter().filter(|h| h.state == state).count();
            out.sample(&[("state", state.as_str())], n);
        }
        out.family(
            "cranefleet_host_up",
            "1 while the host is up, 0 while it is down or connecting.",
            Kind::Gauge,
        );
        for h in &hosts {
            out.sample(&[("host", &h.name)], h.state == HostState::Up);
        }
        out.family(
            "cranefleet_host_instances",
            "Instances running on the host, as its last heartbeat said.",
            Kind::Gauge,
        );
        for h in &hosts {
            out.sample(&[("host", &h.name)], h.instances);
        }
        out.family(
            "cranefleet_host_memory_bytes",
            "Memory of the instances running on the host, as its last heartbeat said.",
            Kind::Gauge,
        );
        for h in &hosts {
            out.sample(&[("host", &h.name)], h.memory_bytes);
        }

        let t = &self.fleet.tallies;
        out.family(
            "cranefleet_deploys_total",
            "Deploys through this gateway since it started, by outcome.",
            Kind::Counter,
        );
        for o in DeployTally::ALL {
            out.sample(&[("outcome", o.as_str())], t.deploys(o));
        }
        out.family(
            "cranefleet_rollbacks_total",
            "Rollbacks made fleet-wide since the gateway started: manual (an operator's) or auto (the gateway's, after a failed activation or health check).",
            Kind::Counter,
        )
        .sample(&[("kind", "manual")], t.rollbacks(RollbackKind::Manual))
        .sample(&[("kind", "auto")], t.rollbacks(RollbackKind::Auto));

        let by_role = self.sessions.count_by_role();
        out.family(
            "cranefleet_ssh_connections",
            "Authenticated SSH connections open now, by the role of their key (host: agents' tunnels).",
            Kind::Gauge,
        );
        for role in [Role::Host, Role::Operator, Role::Viewer] {
            let n = by_role
                .iter()
                .find(|(r, _)| *r == role)
                .map_or(0, |(_, n)| *n);
            out.sample(&[("role", role.as_str())], n);
        }
    }
}

/// One host as `/metrics` shows it.
#[derive(Debug, Clone)]
pub struct HostFigures {
    pub name: String,
    pub state: HostState,
    pub instances: u32,
    pub memory_bytes: u64,
}
