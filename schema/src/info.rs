//! What `info APP` answers: an app's settings as a release records them
//! (its manifest) and where it runs.

use serde::{Deserialize, Serialize};

use crate::manifest::Health;
use crate::names::Version;
use crate::types::{AppKind, ConfigRow};

/// An http app's serving settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpInfo {
    /// Requests one instance serves before it is dropped (1: a fresh
    /// instance per request).
    pub reuse: u32,
    /// One `access` record per request.
    pub access_log: bool,
}

/// What `info APP` shows: everything about an app but its code, never a
/// secret's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppInfo {
    pub app: String,
    pub kind: AppKind,
    pub release: Option<Version>,
    pub replicas: u32,
    /// Where it runs (the fleet's placement; a single host: itself).
    pub hosts: Vec<String>,
    /// The network it may reach.
    pub grants: Vec<String>,
    /// `sqlite` (each host's own) or `redis`.
    pub keyvalue: String,
    /// The Redis URL, password masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyvalue_url: Option<String>,
    pub keyvalue_max_mb: u64,
    pub buckets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// When the schedule runs, in words (`every 1h (aligned to :00 UTC)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_note: Option<String>,
    pub memory_mb: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    pub health: Health,
    /// http apps: how requests are served and recorded (`[http]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    /// A live canary: its plan and where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<crate::canary::Status>,
    /// Names only.
    pub env: Vec<String>,
    /// Names, secrets flagged; never a value.
    pub config: Vec<ConfigRow>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}
