//! What `ssh-gateway serve --metrics ADDR` serves: the fleet as the gateway
//! sees it (hosts by state, per host), what operators and the gateway did
//! (deploys, rollbacks) and who is connected (SSH connections by role), in
//! the Prometheus text format.

use std::sync::Arc;

use prom::{Exposition, Kind};
use schema::{HostState, Role};

use crate::fleet::Fleet;
use crate::fleet::tallies::{DeployTally, RollbackKind};
use crate::sessions::Sessions;

/// The gateway's figures: its fleet and its SSH connections once it is
/// active; before that (a standby of a fleet on PostgreSQL) only that it
/// is not active.
#[derive(Default)]
pub struct GatewayMetrics {
    serving: std::sync::OnceLock<Serving>,
}

struct Serving {
    fleet: Arc<Fleet>,
    sessions: Arc<Sessions>,
}

impl GatewayMetrics {
    /// The standby became active: from now on its fleet's figures.
    pub fn activate(&self, fleet: Arc<Fleet>, sessions: Arc<Sessions>) {
        let _ = self.serving.set(Serving { fleet, sessions });
    }
}

impl prom::Source for GatewayMetrics {
    fn render(&self, out: &mut Exposition) {
        out.family(
            "cranefleet_gateway_active",
            "1 while this gateway drives the fleet; 0 while it is a standby (another gateway on the same database holds the lease).",
            Kind::Gauge,
        )
        .sample(&[], self.serving.get().is_some());
        let Some(Serving { fleet, sessions }) = self.serving.get() else {
            return;
        };
        let hosts = fleet.host_states();
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

        let t = &fleet.tallies;
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

        let by_role = sessions.count_by_role();
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
