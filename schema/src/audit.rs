//! What an audit entry records, as types: the action is one of a known
//! set (written by name, decided on by variant), and whether it was
//! refused is a flag, not a prefix of its free text. `audit --json` keeps
//! its field names; `refused` is an added field.

use std::fmt;
use std::str::FromStr;

macro_rules! actions {
    ($($(#[$doc:meta])* $v:ident = $s:literal,)*) => {
        /// The action of an audit entry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[$doc])* $v,)*
        }

        impl Action {
    /// What on-call wants to hear about (`events`, the console's feed):
    /// rollbacks the platform made, crash loops, hosts going and coming.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            Action::HealthRollback
                | Action::AutoRollback
                | Action::Crashloop
                | Action::HostDown
                | Action::HostUp
                | Action::Promote
                | Action::Abort
                | Action::CanaryStep
        )
    }

            /// Every action, in the order declared.
            pub const ALL: &'static [Action] = &[$(Action::$v,)*];

            /// Its name in the audit log (`audit` shows it, scripts read it).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$v => $s,)*
                }
            }
        }

        impl FromStr for Action {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(Action::$v),)*
                    _ => Err(format!("unknown audit action {s:?}")),
                }
            }
        }
    };
}

actions! {
    // What operators (and local users) do.
    Deploy = "deploy",
    Rollback = "rollback",
    Scale = "scale",
    Rm = "rm",
    Restart = "restart",
    Config = "config",
    Kv = "kv",
    Promote = "promote",
    Abort = "abort",
    /// A key enrolled at the gateway (`ssh-gateway keys add`).
    KeysAdd = "keys add",
    /// A key's role changed (`ssh-gateway keys role`).
    KeysRole = "keys role",
    /// A key removed (`ssh-gateway keys rm`).
    KeysRm = "keys rm",
    // What hosts and the gateway do on their own.
    /// A host activated a release the gateway sent.
    Activate = "activate",
    /// A host rolled back an app whose health rule failed.
    HealthRollback = "health-rollback",
    /// The gateway rolled back a deploy that failed on some host.
    AutoRollback = "auto-rollback",
    /// An app's instances kept exiting; restarts stopped.
    Crashloop = "crashloop",
    /// A canary moved to its next share.
    CanaryStep = "canary-step",
    /// A host stopped sending heartbeats (or its tunnel closed).
    HostDown = "host-down",
    /// A host that was down spoke again.
    HostUp = "host-up",
    /// Replicas moved between hosts.
    Replace = "replace",
    /// A host said who it is on its tunnel.
    Hello = "hello",
    /// A host reported on an app or release (refused when not placed on it).
    Report = "report",
    /// A key's role was revoked or changed and its connections closed.
    Revoke = "revoke",
    /// Unauthenticated connections refused (aggregated per source).
    Auth = "auth",
    /// The audit log was pruned to its bound.
    AuditPrune = "audit-prune",
    /// A forwarding request (always refused).
    Forward = "forward",
    /// An exec request.
    Exec = "exec",
    /// A shell (console) request.
    Shell = "shell",
    /// A subsystem request.
    Subsystem = "subsystem",
    /// A tunnel request.
    Tunnel = "tunnel",
    /// Something a host did locally while the gateway was away that has no
    /// fleet meaning of its own.
    Local = "local",
}

impl Action {
    /// The action a command of this verb records, if it changes anything.
    pub fn of_verb(verb: &str) -> Option<Action> {
        verb.parse()
            .ok()
            .filter(|a: &Action| a.is_operator_change())
    }

    /// An operator's change to the fleet (what a local action on a fleet
    /// host is reported to the gateway as).
    pub fn is_operator_change(self) -> bool {
        matches!(
            self,
            Action::Deploy
                | Action::Rollback
                | Action::Scale
                | Action::Rm
                | Action::Restart
                | Action::Config
                | Action::Kv
                | Action::Promote
                | Action::Abort
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Refused; the detail says why (shown as `refused: …`).
    Refused,
}

impl Outcome {
    /// The detail as the audit log shows it.
    pub fn detail(self, detail: String) -> String {
        match self {
            Outcome::Done => detail,
            Outcome::Refused => format!("refused: {detail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_from_its_name() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(*a));
        }
        assert_eq!(Action::of_verb("deploy"), Some(Action::Deploy));
        assert_eq!(Action::of_verb("ps"), None);
        assert_eq!(Action::of_verb("hello"), None);
    }
}
