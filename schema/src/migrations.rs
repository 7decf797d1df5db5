//! The SQL migrations of every database, applied in order.
//!
//! Each database records the last migration it applied in
//! `PRAGMA user_version`; a program opening it applies the ones after that in
//! one transaction each. Migrations are append-only: a released one is never
//! edited, so a database created by any earlier build can be brought forward.

/// One step of a database's schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3…: the `user_version` the database has after this step.
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// `hostd.db`: apps, releases, artifacts, compiled code, audit.
pub const HOSTD: &[Migration] = &[
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
];

/// `logs.db`: a host's log records.
pub const LOGS: &[Migration] = &[
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

/// `gateway.db`: keys, hosts, apps, releases, artifacts, placements, audit.
pub const GATEWAY: &[Migration] = &[
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
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one() {
        for set in [HOSTD, LOGS, GATEWAY] {
            for (i, m) in set.iter().enumerate() {
                assert_eq!(m.version as usize, i + 1, "{}", m.name);
            }
        }
    }
}
