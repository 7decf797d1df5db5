//! What the fleet counts as it works (deploys by outcome, rollbacks by
//! kind) and what it says of each host: the figures `--metrics` serves
//! (`crate::metrics` reads them; the fleet never imports it).

use std::sync::atomic::{AtomicU64, Ordering};

use schema::HostState;

use super::FleetError;

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
    pub const ALL: [DeployTally; 3] = [
        DeployTally::Succeeded,
        DeployTally::Failed,
        DeployTally::Refused,
    ];

    pub fn as_str(self) -> &'static str {
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

    pub fn deploys(&self, outcome: DeployTally) -> u64 {
        self.deploys[outcome as usize].load(Ordering::Relaxed)
    }

    pub fn rollbacks(&self, kind: RollbackKind) -> u64 {
        self.rollbacks[kind as usize].load(Ordering::Relaxed)
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
