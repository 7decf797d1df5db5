//! One place where a host's settings come together: flags, environment, defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default bound of a request body.
pub const DEFAULT_MAX_BODY: u64 = 64 << 20;
/// A request's headers must arrive within this (nginx's
/// `client_header_timeout` is 60 s; apps here answer in milliseconds).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection with no request for this long is closed
/// (nginx's `keepalive_timeout` is 75 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// Default ingress address (CLI.md).
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
/// Largest artifact a deploy accepts.
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 256 << 20;
/// Releases per app whose compiled code stays on disk for instant rollback.
pub const KEEP_RELEASES: usize = 5;

/// Everything a running host needs to know, validated once.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub data_dir: PathBuf,
    pub socket: PathBuf,
    /// Ingress for http apps; None: no ingress.
    pub http: Option<SocketAddr>,
    /// Where `GET /metrics` is served (`--metrics`); None: nowhere.
    pub metrics: Option<SocketAddr>,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub log_cap_bytes: u64,
    pub max_artifact_bytes: u64,
    pub ingress: IngressConfig,
    /// The key that seals apps' config secrets at rest (`--secrets-key`;
    /// default `DATA/secrets.key`, created 0600 on first start).
    pub secrets_key: PathBuf,
    /// Instances the host can run at once (`--max-instances`).
    pub max_instances: u32,
}

/// What the http ingress lets a client cost (see `ingress`).
#[derive(Debug, Clone, Copy)]
pub struct IngressConfig {
    /// Largest request body passed to an app.
    pub max_body: u64,
    /// Connections served at once; `None`: half the open-file limit, at
    /// most 4096.
    pub max_connections: Option<usize>,
    /// A request's headers must arrive within this.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for IngressConfig {
    fn default() -> IngressConfig {
        IngressConfig {
            max_body: DEFAULT_MAX_BODY,
            max_connections: None,
            header_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the control socket path {0} is longer than the 107 bytes a Unix socket allows; use a shorter --data or set CRANEFLEET_SOCKET"
    )]
    SocketPathTooLong(PathBuf),
    #[error("cannot create the data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `--data`, else `$CRANEFLEET_DATA` (clap fills both into the flag), else
/// `~/.local/share/cranefleet`.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/cranefleet")
}

/// `$CRANEFLEET_SOCKET`, else `DATA/hostd.sock`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    match std::env::var_os("CRANEFLEET_SOCKET") {
        Some(s) if !s.is_empty() => PathBuf::from(s),
        _ => data_dir.join("hostd.sock"),
    }
}

/// This machine's name, for `hosts` and log records.
pub fn default_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl HostConfig {
    pub fn new(
        data_dir: PathBuf,
        http: Option<SocketAddr>,
        name: Option<String>,
    ) -> Result<HostConfig, ConfigError> {
        net::create_private_dir(&data_dir).map_err(|source| ConfigError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let socket = socket_path(&data_dir);
        if socket.as_os_str().len() > 107 {
            return Err(ConfigError::SocketPathTooLong(socket));
        }
        Ok(HostConfig {
            socket,
            http,
            metrics: None,
            name: name.unwrap_or_else(default_name),
            labels: BTreeMap::new(),
            log_cap_bytes: crate::logs::DEFAULT_CAP_BYTES,
            max_artifact_bytes: DEFAULT_MAX_ARTIFACT_BYTES,
            ingress: IngressConfig::default(),
            secrets_key: data_dir.join("secrets.key"),
            max_instances: crate::engine::DEFAULT_MAX_INSTANCES,
            data_dir,
        })
    }
}
