//! What a command answers, typed, and where the answer goes.

use std::future::Future;

use bytes::Bytes;
use schema::{
    AppInfo, AuditEntry, ConfigOutcome, ConfigRow, DeployOutcome, HostRow, KvOutcome, LogRecord,
    PsRow, ReleaseRow, RestartOutcome, RollbackOutcome, ScaleOutcome, WatchSnapshot,
};
use serde::{Deserialize, Serialize};

use crate::progress::Progress;

/// What `rm` answers: `{"app","removed":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RmOutcome {
    pub app: String,
    pub removed: bool,
}

/// Log records on their way to a client.
#[derive(Debug, Clone, PartialEq)]
pub enum LogChunk {
    /// Records as values (a host's own store; the gateway's console).
    Records(Vec<LogRecord>),
    /// Records already rendered in the sink's [`LogFormat`]: the gateway
    /// writes them straight from the hosts' binary batches, 64 KiB at a time,
    /// without a `LogRecord` per line.
    Rendered(Bytes),
}

/// How a sink wants log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// CLI.md's `logs` line.
    Text,
    /// One JSON object per line (`--json`).
    Json,
    /// As [`LogRecord`] values.
    Records,
}

/// Everything a command can answer, in the order it answers it: any number
/// of `Progress`, `Logs`, `Snapshot` or `Warning`, and for a one-shot
/// command one outcome at the end.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Progress(Progress),
    Deployed(DeployOutcome),
    RolledBack(RollbackOutcome),
    Scaled(ScaleOutcome),
    Restarted(RestartOutcome),
    /// `promote` and `abort`.
    CanaryEnded(schema::canary::Outcome),
    Removed(RmOutcome),
    /// `ps` (`instances`: one app's instances rather than the apps).
    Ps {
        rows: Vec<PsRow>,
        instances: bool,
    },
    Releases(Vec<ReleaseRow>),
    Hosts(Vec<HostRow>),
    Audit(Vec<AuditEntry>),
    /// `events`: entries of the feed, oldest first (one JSON object per
    /// line with `--json`, so a follow can be read as it comes).
    Events(Vec<AuditEntry>),
    Info(Box<AppInfo>),
    /// `config APP`.
    Config {
        app: String,
        rows: Vec<ConfigRow>,
    },
    /// `config set` / `config unset`: the new release.
    ConfigChanged(ConfigOutcome),
    Kv(KvOutcome),
    Logs(LogChunk),
    /// One `watch` snapshot; the first names the session's key and role.
    Snapshot(WatchSnapshot),
    /// A line for stderr that is not the command's failure (a host that
    /// could not answer a `logs` request).
    Warning(String),
}

/// The client is gone: nobody reads the answer any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl From<Gone> for crate::OpError {
    fn from(_: Gone) -> crate::OpError {
        crate::OpError::gone()
    }
}

/// Where a command's replies go: a door's printer, or a console's queue.
pub trait Sink: Send {
    /// Hands on one reply; waits while the client is slow (a full queue
    /// slows the command down rather than growing); `Err(Gone)` once the
    /// client went away, which ends the command.
    fn send(&mut self, reply: Reply) -> impl Future<Output = Result<(), Gone>> + Send;

    /// How this sink wants log records.
    fn log_format(&self) -> LogFormat;
}
