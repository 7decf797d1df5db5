//! The domain words of DESIGN.md as types, with the JSON shapes of CLI.md.
//!
//! Field names here are a contract: scripts parse them. Add fields freely;
//! never rename one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::names::Version;

/// What an app is, which decides how hostd runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// A `wasi:http/proxy` component; one fresh instance per request.
    Http,
    /// A WASI command kept running N times.
    Worker,
    /// A WASI command started on a cron schedule.
    Job,
    /// A message handler (Spin's `fermyon:spin/inbound-redis`); one fresh
    /// instance per message of a Redis channel or stream.
    Message,
}

impl AppKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Http => "http",
            AppKind::Worker => "worker",
            AppKind::Job => "job",
            AppKind::Message => "message",
        }
    }
}

impl fmt::Display for AppKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// On a command line (`deploy --kind`): the same words, which completions
/// and `--help` list.
impl clap::ValueEnum for AppKind {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            AppKind::Http,
            AppKind::Worker,
            AppKind::Job,
            AppKind::Message,
        ]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

impl FromStr for AppKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http" => Ok(AppKind::Http),
            "worker" => Ok(AppKind::Worker),
            "job" => Ok(AppKind::Job),
            "message" => Ok(AppKind::Message),
            _ => Err(format!(
                "unknown app kind {s:?}: expected http, worker, job or message"
            )),
        }
    }
}

/// Where a release is in its life (DESIGN.md, "The life of a release").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseState {
    /// Stored and compiled; not serving yet.
    Staged,
    /// Serving.
    Active,
    /// Was active (or staged) and was replaced; kept for rollback.
    Superseded,
    /// Failed staging or its health check; never serves again unless chosen by `rollback --to`.
    Failed,
    /// Its instances kept exiting; restarts stopped.
    Crashloop,
    /// Serving a share next to the active release, until promoted or aborted.
    Canary,
}

impl ReleaseState {
    /// The colour of its STATE cell in a table on a terminal.
    pub fn table_tone(self) -> Option<crate::state::Tone> {
        use crate::state::Tone;
        match self {
            ReleaseState::Active => Some(Tone::Good),
            ReleaseState::Failed | ReleaseState::Crashloop => Some(Tone::Bad),
            ReleaseState::Canary => Some(Tone::Warn),
            ReleaseState::Staged | ReleaseState::Superseded => None,
        }
    }
}

impl ReleaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Staged => "staged",
            ReleaseState::Active => "active",
            ReleaseState::Superseded => "superseded",
            ReleaseState::Failed => "failed",
            ReleaseState::Crashloop => "crashloop",
            ReleaseState::Canary => "canary",
        }
    }
}

impl fmt::Display for ReleaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReleaseState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "staged" => ReleaseState::Staged,
            "active" => ReleaseState::Active,
            "superseded" => ReleaseState::Superseded,
            "failed" => ReleaseState::Failed,
            "crashloop" => ReleaseState::Crashloop,
            "canary" => ReleaseState::Canary,
            _ => return Err(format!("unknown release state {s:?}")),
        })
    }
}

/// Which output of an instance a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// Lines the platform writes about an app: starts, exits, switches, traps.
    System,
    /// One record per message a message app handled (source, id, attempt,
    /// outcome, latency).
    Message,
    /// One record per http request an app served: its line is a JSON
    /// object with `method`, `path`, `status`, `latency_ms`, `bytes`.
    Access,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
            Stream::Message => "message",
            Stream::Access => "access",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stream {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            "system" => Stream::System,
            "message" => Stream::Message,
            "access" => Stream::Access,
            _ => return Err(format!("unknown stream {s:?}")),
        })
    }
}

/// What an `access` record's line holds: one http request an app served.
/// `logs --json` adds these fields to the record, and the filter language
/// reads them by name (`status >= 500`, `latency_ms > 250`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Access {
    pub method: String,
    /// The request's path, without its query (which may carry secrets).
    pub path: String,
    pub status: u16,
    /// From the request's arrival to the response's last byte.
    pub latency_ms: f64,
    /// Bytes of the response body.
    pub bytes: u64,
}

impl Access {
    /// The record's line.
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An access record's line read back (`None`: not one we wrote).
    pub fn parse(line: &str) -> Option<Access> {
        serde_json::from_str(line).ok()
    }

    /// `,"method":…,"bytes":…`: the fields `logs --json` adds to an access
    /// record, as JSON members to append to its object.
    pub fn json_members(line: &str) -> Option<String> {
        let a = Access::parse(line)?;
        let whole = serde_json::to_string(&a).ok()?;
        let inner = whole.strip_prefix('{')?.strip_suffix('}')?;
        Some(format!(",{inner}"))
    }
}

/// One line of output: CLI.md's log record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogRecord {
    /// Per-app, per-host monotonic sequence number; `logs --since SEQ` resumes after it.
    pub seq: u64,
    /// RFC 3339 UTC.
    pub time: String,
    pub host: String,
    pub app: String,
    /// `v3`; absent for records not tied to a release.
    pub release: Option<Version>,
    pub instance: String,
    pub stream: Stream,
    pub line: String,
    /// Set on every piece but the last of a line too long to keep whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

impl Serialize for LogRecord {
    /// CLI.md's fields in order; an `access` record adds its request's
    /// (`method`, `path`, `status`, `latency_ms`, `bytes`).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let access = (self.stream == Stream::Access)
            .then(|| Access::parse(&self.line))
            .flatten();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("time", &self.time)?;
        m.serialize_entry("host", &self.host)?;
        m.serialize_entry("app", &self.app)?;
        m.serialize_entry("release", &self.release)?;
        m.serialize_entry("instance", &self.instance)?;
        m.serialize_entry("stream", &self.stream)?;
        m.serialize_entry("line", &self.line)?;
        if self.partial {
            m.serialize_entry("partial", &true)?;
        }
        if let Some(a) = access {
            m.serialize_entry("method", &a.method)?;
            m.serialize_entry("path", &a.path)?;
            m.serialize_entry("status", &a.status)?;
            m.serialize_entry("latency_ms", &a.latency_ms)?;
            m.serialize_entry("bytes", &a.bytes)?;
        }
        m.end()
    }
}

/// One row of `ps` (apps), or of `ps APP` (instances, with `instance` set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsRow {
    pub app: String,
    pub kind: AppKind,
    /// The active release, if any.
    pub release: Option<Version>,
    /// Replicas wanted.
    pub replicas: u32,
    /// Instances running now.
    pub running: u32,
    pub host: String,
    pub state: crate::RunState,
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// RFC 3339 time the instance (or the oldest instance) started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// Jobs: RFC 3339 time of the next scheduled run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// Why the app or instance is in its state (last exit, crash loop…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// http apps: requests per second over the last 10 s; message apps:
    /// messages handled (or failed) per second over the last 10 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// Message apps: what the consumer has done and what waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<MessageStats>,
    /// http and message apps: requests (messages) of the last minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestStats>,
    /// The hosts, as a list (`host` joins them with commas).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// A live canary of the app: its step, share, time left and the gate's
    /// inputs for both releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<crate::canary::Status>,
}

/// What `ps` shows of an app's requests over the last minute (the health
/// metrics' figures): on a host, or over the fleet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Over the last [`RequestStats::WINDOW_S`] seconds.
    pub requests: u64,
    /// 5xx answers (a message: a failed handling).
    pub errors: u64,
    /// errors / requests; 0 with no requests.
    pub error_rate: f64,
    /// Latency percentiles; over the fleet, the worst host's.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Errors per second over the last seconds (as `rps`): what shows a
    /// recovery at once, where the minute's figures lag.
    #[serde(default)]
    pub errors_per_s: f64,
}

impl RequestStats {
    /// Seconds the figures cover.
    pub const WINDOW_S: u64 = 60;

    /// The fleet's view: counts add up, the rate follows; percentiles are
    /// the worst host's (a fleet-wide percentile needs the histograms).
    pub fn merge(&mut self, o: &RequestStats) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.error_rate = if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        };
        self.p50_ms = self.p50_ms.max(o.p50_ms);
        self.p99_ms = self.p99_ms.max(o.p99_ms);
        self.errors_per_s += o.errors_per_s;
    }
}

/// What `ps` shows of a message app (on a host, or summed over the fleet).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageStats {
    /// Messages of the stream not yet handled by the group: never
    /// delivered (the group's lag) plus delivered and not acknowledged.
    /// Absent for a channel (pub/sub keeps no backlog) or while the source
    /// cannot be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
    /// Handlers running now.
    pub in_flight: u64,
    /// Messages handled per second over the last 10 s.
    pub handled_per_s: f64,
    /// Since the consumer started: handled successfully, failed attempts,
    /// and moved to `STREAM:dead`.
    pub handled: u64,
    pub failed: u64,
    pub dead_lettered: u64,
}

impl MessageStats {
    /// The fleet's view: counts add up; `pending` is the group's, the same
    /// seen from every host, so the freshest (largest) answer stands.
    pub fn merge(&mut self, o: &MessageStats) {
        self.pending = match (self.pending, o.pending) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.in_flight += o.in_flight;
        self.handled_per_s += o.handled_per_s;
        self.handled += o.handled;
        self.failed += o.failed;
        self.dead_lettered += o.dead_lettered;
    }

    /// `pending 12, 350/s, dead-lettered 3`: the DETAIL of `ps`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.pending {
            parts.push(format!("pending {p}"));
        }
        parts.push(format!("{:.0}/s", self.handled_per_s));
        parts.push(format!("handled {}", self.handled));
        if self.failed > 0 {
            parts.push(format!("failed {}", self.failed));
        }
        parts.push(format!("dead-lettered {}", self.dead_lettered));
        parts.join(", ")
    }
}

/// One row of `releases APP`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRow {
    pub app: String,
    pub version: Version,
    /// `sha256:<hex>` of the artifact as uploaded.
    pub digest: String,
    /// RFC 3339.
    pub created: String,
    /// The key (or local user) that made it.
    pub by: String,
    pub state: ReleaseState,
    pub kind: AppKind,
    /// Whether its precompiled code is still on this host (rollback needs no compile).
    pub kept: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The network it may reach (`[allow] outbound`); a rollback restores them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
}

/// One row of `audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// RFC 3339.
    pub time: String,
    /// Who: a key name, or `local:<user>` on a host's control socket.
    pub key: String,
    /// One of `schema::audit::Action`'s names (kept a string here: an
    /// entry from a newer peer is shown as it came).
    pub action: String,
    pub app: Option<String>,
    pub detail: String,
    /// The action was refused (its detail says why).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
}

impl AuditEntry {
    /// An entry of the events feed: an event action (see
    /// [`crate::audit::Action::is_event`]), or a deploy that was refused or
    /// failed.
    pub fn is_event(&self) -> bool {
        match self.action.parse::<crate::audit::Action>() {
            Ok(a) if a.is_event() => true,
            Ok(crate::audit::Action::Deploy) => self.refused,
            _ => false,
        }
    }
}

/// One row of `hosts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRow {
    pub name: String,
    /// `x86_64` or `aarch64`.
    pub arch: String,
    pub state: crate::HostState,
    /// RFC 3339.
    pub last_seen: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Apps with at least one instance (or an active release) here.
    pub apps: u32,
    pub instances: u32,
    /// Bytes of linear memory in use by instances.
    #[serde(default)]
    pub memory_bytes: u64,
}

/// What an enrolled key may do at a gateway. One type for the gateway's key
/// store, its exec and console doors, and the console's read-only mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Opens the agent tunnel for the host it was enrolled as; nothing else.
    Host,
    /// Runs every command.
    Operator,
    /// Runs the read commands only.
    Viewer,
}

impl Role {
    /// Whether this role may change the fleet (deploy, scale, roll back, …).
    pub fn may_change(self) -> bool {
        self == Role::Operator
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// On a command line (`keys add --role`): the same words, which
/// completions and `--help` list.
impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &[Role::Host, Role::Operator, Role::Viewer]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "host" => Ok(Role::Host),
            "operator" => Ok(Role::Operator),
            "viewer" => Ok(Role::Viewer),
            _ => Err(format!(
                "unknown role {s:?}: expected host, operator or viewer"
            )),
        }
    }
}

/// One line of `watch --json`: the whole fleet as it is now.
///
/// The first line of a stream also says who is watching (`role`, `key`) and
/// where (`gateway`), so a console can start read-only for a viewer key
/// before it draws anything; later lines leave those out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchSnapshot {
    pub hosts: Vec<HostRow>,
    pub apps: Vec<PsRow>,
    /// `operator` or `viewer`: what the watching key may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The watching key's name, as the audit log shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The gateway's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The latest events (auto-rollbacks, crash loops, hosts down and up,
    /// failed deploys), oldest first: the console's feed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<AuditEntry>,
}

/// What `deploy` answers once the release is active.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployOutcome {
    pub app: String,
    pub version: Version,
    pub digest: String,
    pub kind: AppKind,
    pub state: ReleaseState,
    /// Milliseconds spent compiling with Cranelift (0 when the cache had it).
    pub compile_ms: u64,
    pub replicas: u32,
    /// How the env differs from the release that was running (names only,
    /// never values); absent for an app's first release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_changes: Option<EnvChanges>,
    /// A canary deploy: where it starts (state `canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Box<crate::canary::Status>>,
}

/// The env variables a deploy added, removed and changed, by name: a
/// deploy's env replaces the running release's (unless `--keep-env`), and
/// says what that did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl EnvChanges {
    /// `old` to `new`, names sorted.
    pub fn between(
        old: &std::collections::BTreeMap<String, String>,
        new: &std::collections::BTreeMap<String, String>,
    ) -> EnvChanges {
        EnvChanges {
            added: new
                .keys()
                .filter(|k| !old.contains_key(*k))
                .cloned()
                .collect(),
            removed: old
                .keys()
                .filter(|k| !new.contains_key(*k))
                .cloned()
                .collect(),
            changed: new
                .iter()
                .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
                .map(|(k, _)| k.clone())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// `env: DB_URL removed, LOG_LEVEL changed, MODE added`, or `None` when
    /// nothing changed.
    pub fn summary(&self) -> Option<String> {
        let parts: Vec<String> = [
            (&self.removed, "removed"),
            (&self.changed, "changed"),
            (&self.added, "added"),
        ]
        .into_iter()
        .filter(|(names, _)| !names.is_empty())
        .map(|(names, what)| format!("{} {what}", names.join(", ")))
        .collect();
        (!parts.is_empty()).then(|| format!("env: {}", parts.join("; ")))
    }
}

/// A release as a rollback chooses among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollbackCandidate {
    pub version: Version,
    pub state: ReleaseState,
    /// Whether its code is still kept (precompiled on a host, the artifact
    /// at the gateway).
    pub kept: bool,
}

/// What `rollback` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackOutcome {
    pub app: String,
    pub from: Option<Version>,
    pub to: Version,
    /// Milliseconds from the request to the switch (no fetch, no compile).
    pub switch_ms: u64,
}

/// What `scale` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleOutcome {
    pub app: String,
    pub from: u32,
    pub replicas: u32,
}

/// What `restart` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartOutcome {
    pub app: String,
    pub release: Version,
    /// Hosts that restarted it (one, on a host).
    pub hosts: Vec<String>,
    /// It was in a crash loop: restarts go on again.
    pub cleared_crashloop: bool,
}

/// What `precompile` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecompileOutcome {
    pub input: String,
    pub output: String,
    pub digest: String,
    /// `module` or `component`.
    pub artifact: String,
    pub target: String,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub compile_ms: u64,
}

/// One row of `config APP`: a secret's value is never here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRow {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// What `config set` and `config unset` answer: the new release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigOutcome {
    pub app: String,
    /// The new release (same code as `from`).
    pub version: Version,
    pub from: Option<Version>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

/// What `kv` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvOutcome {
    pub app: String,
    pub bucket: String,
    /// `list`, `get`, `set` or `del`.
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `list`: the keys (at most a page; `cursor` says there are more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// `get`: the value, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `get`: the value in hex, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
    /// `list`: more keys follow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}
