//! What flows into the console and what it asks for.
//!
//! The console is a state machine: a driver (the local `console` binary, the
//! gateway's SSH session, a test, the preview) feeds it [`Event`]s and carries
//! out the [`Action`]s it answers with. Nothing here knows whether the bytes
//! travel over a local tty or an SSH channel, which is what lets both front
//! doors run the same app.

use std::collections::BTreeMap;

use ops::{CommandLine, OpError, Progress, Reply};
use schema::{AuditEntry, HostRow, LogRecord, PsRow, ReleaseRow};

use crate::input::Key;

/// Identifies one command the console asked the driver to run, so progress
/// and completion can be matched to it.
pub type CommandId = u64;

/// Something that happened: a key, a resize, the clock, or news from the fleet.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A key press, from crossterm locally or parsed from SSH channel bytes
    /// with [`crate::input::KeyParser`].
    Key(Key),
    /// The terminal (or the SSH pty, on `window-change`) is now this size.
    Resize { width: u16, height: u16 },
    /// Wall-clock time in Unix milliseconds. Relative times ("4s ago") and the
    /// expiry of messages are computed from the last tick, never from a clock
    /// read inside the app, so tests are deterministic.
    Tick { now_ms: i64 },
    /// The driver is talking to this gateway (shown in the header).
    Connected { gateway: String },
    /// The fleet as it is now, pushed whenever it changes: every host and
    /// every app (`hosts --json` and `ps --json` rows).
    Snapshot {
        hosts: Vec<HostRow>,
        apps: Vec<PsRow>,
    },
    /// Requests per second per app, where the fleet knows them. Apps missing
    /// from the map show `-`.
    RequestRates(BTreeMap<String, f64>),
    /// The events feed of the last snapshot, oldest first.
    Events(Vec<schema::AuditEntry>),
    /// Answer to [`Action::LoadReleases`] (or pushed after a change).
    Releases { app: String, rows: Vec<ReleaseRow> },
    /// Answer to [`Action::LoadInstances`]: `ps APP` rows, one per instance.
    Instances { app: String, rows: Vec<PsRow> },
    /// Answer to [`Action::LoadAudit`].
    Audit(Vec<AuditEntry>),
    /// Records of the followed app, oldest first. Records for another app
    /// (late after a switch) and records already seen (same host and an
    /// older or equal `seq`) are dropped, so a driver may resend on reconnect.
    LogRecords(Vec<LogRecord>),
    /// A step of a running command on one host (`host-a: staged v3`,
    /// `host-b: failed: …`), typed.
    CommandProgress { id: CommandId, progress: Progress },
    /// The command finished: its outcome (`None` when it answers nothing
    /// typed), or why it failed (with CLI.md's exit status).
    CommandDone {
        id: CommandId,
        result: Result<Option<Reply>, OpError>,
    },
    /// Something went wrong in the driver that the operator should see.
    Error(String),
    /// The link to the fleet is gone; the console keeps showing the last
    /// state, marked stale, until the driver reconnects.
    Disconnected(String),
}

/// Something the console wants done; the driver does it and reports back
/// with [`Event`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run a CLI.md command, typed (parsed once, where it was typed).
    /// Answered by `CommandProgress` steps and one `CommandDone`. A `deploy`
    /// names a file on the console's machine: only a local console emits one.
    Run {
        id: CommandId,
        request: Box<CommandLine>,
    },
    /// Stream this app's logs (`logs APP -f --json`), replacing any previous
    /// follow. `filter` is an expression for `--where` when the active filter
    /// can run where the records are made; `None` means every record.
    Follow { app: String, filter: Option<String> },
    /// Stop the stream started by `Follow`.
    Unfollow,
    /// Fetch `releases APP`; answered by [`Event::Releases`].
    LoadReleases(String),
    /// Fetch `ps APP`; answered by [`Event::Instances`].
    LoadInstances(String),
    /// Fetch `audit`; answered by [`Event::Audit`].
    LoadAudit,
    /// The operator quit: close the terminal (or the SSH session).
    Quit,
}
