//! The states `ps` and `hosts` show, as types: the code that decides on a
//! state (the supervisor, the fleet's app roll-up, the console's colours)
//! matches on these, never on their spelling. The JSON spelling is the
//! lowercase name (`"running"`, `"crashloop"`, `"up"`), as the CLI
//! contract has it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What `ps` says of an app, or of one of its instances (one field in the
/// JSON for both rows, so one type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    // Instances (and apps rolled up from them).
    /// Instantiating; not yet running its entry point.
    Starting,
    /// Running (a worker's instance; a job's current run).
    Running,
    /// Exited; waiting out its backoff before the next start.
    Backoff,
    /// Asked to stop; finishing within its grace period.
    Stopping,
    /// Not running and not meant to (replicas 0, no active release).
    Stopped,
    /// Kept exiting; restarts stopped until the next deploy or rollback.
    Crashloop,
    // Apps only.
    /// A worker with an instance in backoff.
    Restarting,
    /// An http app with an active release: instances come per request.
    Serving,
    /// A job waiting for its next run.
    Scheduled,
    /// A job with no schedule running.
    Paused,
    /// Placed on a host that is down.
    Degraded,
    /// Placed, not yet reported by any host.
    Pending,
    /// A state this program does not know (a newer peer's): shown as
    /// `unknown`, decided on as neither healthy nor failed.
    #[serde(other)]
    Unknown,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Backoff => "backoff",
            RunState::Stopping => "stopping",
            RunState::Stopped => "stopped",
            RunState::Crashloop => "crashloop",
            RunState::Restarting => "restarting",
            RunState::Serving => "serving",
            RunState::Scheduled => "scheduled",
            RunState::Paused => "paused",
            RunState::Degraded => "degraded",
            RunState::Pending => "pending",
            RunState::Unknown => "unknown",
        }
    }

    /// Doing what it should: an app in this state needs no attention.
    pub fn is_healthy(self) -> bool {
        matches!(
            self,
            RunState::Running | RunState::Serving | RunState::Scheduled
        )
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host's state at the gateway: one state machine.
///
/// ```text
///   (gateway starts, host enrolled)      (hello on a new tunnel)
///            Connecting ────────────────────────► Up
///               │ silent for the grace period      │ silent for the grace period
///               ▼                                  ▼
///              Down ◄──────────────────────────────┘
///               │ hello or heartbeat
///               └──────────────────────────────► Up
/// ```
///
/// `Connecting` is a host the gateway knew before it restarted and has not
/// heard from since: its replicas stay where they are (it counts as up for
/// placement) but nobody is told it is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    Connecting,
    Up,
    Down,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Connecting => "connecting",
            HostState::Up => "up",
            HostState::Down => "down",
        }
    }

    /// Whether placement keeps this host's replicas where they are.
    pub fn keeps_replicas(self) -> bool {
        self != HostState::Down
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match RunState::deserialize(
            serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s),
        ) {
            Ok(RunState::Unknown) | Err(_) => Err(format!("unknown state {s:?}")),
            Ok(state) => Ok(state),
        }
    }
}

impl FromStr for HostState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostState::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s))
            .map_err(|_| format!("unknown host state {s:?} (up, down, connecting)"))
    }
}

/// How a state reads at a glance, for a table's STATE column on a terminal
/// (green, yellow, red): doing what it should, on its way somewhere or
/// recovering, failed. A state with no tone is shown plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tone {
    Good,
    Warn,
    Bad,
}

impl RunState {
    pub fn table_tone(self) -> Option<Tone> {
        match self {
            RunState::Running | RunState::Serving => Some(Tone::Good),
            RunState::Degraded | RunState::Restarting | RunState::Backoff => Some(Tone::Warn),
            RunState::Crashloop => Some(Tone::Bad),
            RunState::Starting
            | RunState::Stopping
            | RunState::Stopped
            | RunState::Scheduled
            | RunState::Paused
            | RunState::Pending
            | RunState::Unknown => None,
        }
    }
}

impl HostState {
    pub fn table_tone(self) -> Option<Tone> {
        Some(match self {
            HostState::Up => Tone::Good,
            HostState::Connecting => Tone::Warn,
            HostState::Down => Tone::Bad,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_their_json_spelling_and_unknown_ones_are_read() {
        for s in [
            RunState::Starting,
            RunState::Crashloop,
            RunState::Serving,
            RunState::Pending,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        let r: RunState = serde_json::from_str("\"hibernating\"").unwrap();
        assert_eq!(r, RunState::Unknown);
        assert_eq!("backoff".parse(), Ok(RunState::Backoff));
        assert!("unknown".parse::<RunState>().is_err());
        assert_eq!("down".parse(), Ok(HostState::Down));
        assert_eq!(
            serde_json::to_string(&HostState::Connecting).unwrap(),
            "\"connecting\""
        );
    }
}
