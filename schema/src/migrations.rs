//! The SQL migrations of every database, applied in order.
//!
//! Each database records the last migration it applied in
//! `PRAGMA user_version`; a program opening it applies the ones after that in
//! one transaction each. Migrations are append-only: a released one is never
//! edited, so a database created by any earlier build can be brought forward.

/// A database's whole schema: the program that owns it (named in errors)
/// and its steps in order.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub program: &'static str,
    pub steps: &'static [Migration],
}

impl Schema {
    /// The version a database has after every step.
    pub fn latest(&self) -> u32 {
        self.steps.last().map(|m| m.version).unwrap_or(0)
    }

    /// The schema as it was at `version` (for tests that bring an old
    /// database forward).
    pub fn up_to(self, version: u32) -> Schema {
        Schema {
            program: self.program,
            steps: &self.steps[..(version as usize).min(self.steps.len())],
        }
    }
}

/// One step of a database's schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3…: the `user_version` the database has after this step.
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// `hostd.db`: apps, releases, artifacts, compiled code, audit.
pub const HOSTD: Schema = Schema {
    program: "hostd",
    steps: HOSTD_STEPS,
};
/// `logs.db`: a host's log records.
pub const LOGS: Schema = Schema {
    program: "hostd",
    steps: LOGS_STEPS,
};
/// `gateway.db`: keys, hosts, apps, releases, artifacts, placements, audit.
pub const GATEWAY: Schema = Schema {
    program: "ssh-gateway",
    steps: GATEWAY_STEPS,
};

const HOSTD_STEPS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/hostd/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "fleet",
        sql: include_str!("../migrations/hostd/0002_fleet.sql"),
    },
    Migration {
        version: 3,
        name: "audit_refused",
        sql: include_str!("../migrations/hostd/0003_audit_refused.sql"),
    },
    Migration {
        version: 4,
        name: "canaries",
        sql: include_str!("../migrations/hostd/0004_canaries.sql"),
    },
];

const LOGS_STEPS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/logs/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "clustered",
        sql: include_str!("../migrations/logs/0002_clustered.sql"),
    },
    Migration {
        version: 3,
        name: "segments",
        sql: include_str!("../migrations/logs/0003_segments.sql"),
    },
];

const GATEWAY_STEPS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/gateway/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "kept",
        sql: include_str!("../migrations/gateway/0002_kept.sql"),
    },
    Migration {
        version: 3,
        name: "audit_refused",
        sql: include_str!("../migrations/gateway/0003_audit_refused.sql"),
    },
    Migration {
        version: 4,
        name: "canaries",
        sql: include_str!("../migrations/gateway/0004_canaries.sql"),
    },
    Migration {
        version: 5,
        name: "ha",
        sql: include_str!("../migrations/gateway/0005_ha.sql"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one() {
        for set in [HOSTD, LOGS, GATEWAY] {
            for (i, m) in set.steps.iter().enumerate() {
                assert_eq!(m.version as usize, i + 1, "{}", m.name);
            }
        }
    }
}
