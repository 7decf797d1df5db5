//! What `ps` shows of an app and its instances, as the supervisor and a
//! job's runner keep it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use schema::{AppKind, RunState, Version};

/// What `ps` shows of one instance.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub instance: Arc<str>,
    pub release: Version,
    pub state: RunState,
    pub restarts: u32,
    pub started: Option<i64>,
    pub detail: Option<String>,
    pub memory: Arc<AtomicU64>,
}

/// What `ps` shows of one app.
#[derive(Debug, Clone)]
pub struct AppStatus {
    pub kind: AppKind,
    pub release: Option<Version>,
    pub replicas: u32,
    pub running: u32,
    pub restarts: u32,
    pub state: RunState,
    pub detail: Option<String>,
    pub next_run: Option<i64>,
    pub started: Option<i64>,
    pub memory: u64,
    /// http apps: requests per second over the last 10 s.
    pub rps: Option<f64>,
    /// Message apps: the consumer's figures.
    pub messages: Option<schema::MessageStats>,
    /// http and message apps: the last minute's requests.
    pub requests: Option<schema::RequestStats>,
    pub instances: Vec<InstanceStatus>,
}
