//! `hostd serve [--data DIR] [--http ADDR] [--metrics ADDR]`: a stand-alone host.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{self, HostConfig};
use crate::host::Host;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Ingress address for http apps (`none` to serve no http).
    #[arg(long, value_name = "ADDR", default_value = config::DEFAULT_HTTP)]
    pub http: String,
    /// Serve Prometheus metrics at http://ADDR/metrics (default: off).
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics)]
    pub metrics: Option<SocketAddr>,
    /// This host's name in `hosts`, `ps` and log records (default: the hostname).
    #[arg(long)]
    pub name: Option<String>,
    /// Log records kept per app before the oldest are dropped, MiB.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub log_cap_mb: u64,
    #[command(flatten)]
    pub ingress: IngressArgs,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Largest artifact a deploy accepts, MiB.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_artifact_mb: u64,
    /// The key that seals apps' config secrets at rest, created 0600 on
    /// first start (default DATA/secrets.key). Keep a copy apart from the
    /// data: without it, the secrets in a restored database cannot be read.
    #[arg(long, value_name = "FILE")]
    pub secrets_key: Option<PathBuf>,
}

/// The ingress's limits, for `serve` and `agent`.
#[derive(Debug, Args)]
pub struct IngressArgs {
    /// Largest request body the ingress passes to an app, MiB.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_request_body_mb: u64,
    /// http connections served at once; one more is answered 503 (default:
    /// half the open-file limit, at most 4096).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub http_max_connections: Option<u64>,
    /// Seconds a client has to send a request's headers.
    #[arg(long, value_name = "S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_header_timeout_s: u64,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, value_name = "S", default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub http_idle_timeout_s: u64,
}

impl IngressArgs {
    pub fn config(&self) -> crate::config::IngressConfig {
        crate::config::IngressConfig {
            max_body: self.max_request_body_mb.clamp(1, 4096) << 20,
            max_connections: self.http_max_connections.map(|n| n as usize),
            header_timeout: std::time::Duration::from_secs(self.http_header_timeout_s),
            idle_timeout: std::time::Duration::from_secs(self.http_idle_timeout_s),
        }
    }
}

/// How many instances a host can run at once, for `serve` and `agent`.
#[derive(Debug, Args)]
pub struct PoolArgs {
    /// Instances this host can run at once: the slots the pooling allocator
    /// reserves (memories, tables and stacks for each). Past it an
    /// instance waits or fails; lower it to fit many hosts on one machine.
    #[arg(long, value_name = "N", default_value_t = crate::engine::DEFAULT_MAX_INSTANCES,
          value_parser = clap::value_parser!(u32).range(4..=100_000))]
    pub max_instances: u32,
}

/// SIGTERM ends the daemon within this, whatever its apps' stop grace.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Holds `DIR/hostd.lock` for the life of the daemon: two daemons on one
/// data directory would corrupt each other's view of what runs.
pub struct DirLock {
    _file: std::fs::File,
}

pub fn lock_data_dir(dir: &Path) -> anyhow::Result<DirLock> {
    let path = dir.join("hostd.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // Safety: flock on a file descriptor we own; no memory is involved.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        anyhow::bail!(
            "another hostd is already serving {} (pid {}); stop it first or use another --data",
            dir.display(),
            holder.trim()
        );
    }
    f.set_len(0)?;
    std::io::Write::write_all(&mut &f, std::process::id().to_string().as_bytes())?;
    Ok(DirLock { _file: f })
}

/// Binds the control socket, replacing a stale file left by a crash (the
/// directory lock proves no live daemon owns it).
pub fn bind_socket(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let l =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

pub fn parse_http(s: &str) -> anyhow::Result<Option<SocketAddr>> {
    if s == "none" || s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .with_context(|| format!("--http {s:?} is not an address like 127.0.0.1:8080 (or `none`)"))
}

/// `--metrics ADDR`: an address and port to listen on, nothing else (the
/// endpoint is unauthenticated: it listens exactly where it is told).
pub fn parse_metrics(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an address like 127.0.0.1:9464 (an IP address and a port)")
    })
}

pub async fn execute(args: ServeArgs, data: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = config::data_dir(data.as_deref());
    let mut cfg = HostConfig::new(dir, parse_http(&args.http)?, args.name)?;
    cfg.metrics = args.metrics;
    cfg.log_cap_bytes = args.log_cap_mb.max(1) << 20;
    cfg.max_artifact_bytes = args.max_artifact_mb.max(1) << 20;
    cfg.ingress = args.ingress.config();
    cfg.max_instances = args.pool.max_instances;
    if let Some(k) = args.secrets_key {
        cfg.secrets_key = k;
    }
    let daemon = Daemon::start(cfg, None).await?;
    wait_for_signal().await?;
    daemon.stop().await;
    Ok(())
}

/// A running host with its control socket and ingress.
pub struct Daemon {
    pub host: std::sync::Arc<Host>,
    pub http: Option<SocketAddr>,
    /// Where `GET /metrics` is served, if anywhere.
    pub metrics: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    control: tokio::task::JoinHandle<()>,
    _lock: DirLock,
}

impl Daemon {
    /// Locks the data directory, binds the socket, the ingress and the
    /// metrics endpoint, restores what the host ran, and starts serving.
    /// An agent passes its tunnel's state, which `/metrics` shows too.
    pub async fn start(
        cfg: HostConfig,
        tunnel: Option<std::sync::Arc<crate::agent::TunnelState>>,
    ) -> anyhow::Result<Daemon> {
        net::private_umask();
        crate::engine::leave_a_core_for_the_daemon();
        let lock = lock_data_dir(&cfg.data_dir)?;
        let listener = bind_socket(&cfg.socket)?;
        let http = match cfg.http {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen for http on {addr}; pick another --http (or `none`)")
            })?),
            None => None,
        };
        let metrics = match cfg.metrics {
            Some(addr) => Some(prom::bind(addr).await?),
            None => None,
        };
        let (dir, socket, cfg_ingress) = (cfg.data_dir.clone(), cfg.socket.clone(), cfg.ingress);
        let host = Host::open(cfg)
            .await
            .context("cannot open the host's state")?;
        let (shutdown, rx) = watch::channel(false);
        let control = tokio::spawn(crate::control::serve(listener, host.clone(), rx.clone()));
        let mut http_addr = None;
        if let Some(l) = http {
            let addr = l.local_addr()?;
            http_addr = Some(addr);
            // Many connections are the ingress's to serve; the cap keeps
            // half of the descriptors for everything else.
            let nofile = net::raise_nofile_limit().unwrap_or(1024);
            let limits = crate::ingress::Limits::new(&cfg_ingress, nofile);
            tracing::info!(max_connections = limits.max_connections, "ingress limits");
            tokio::spawn(crate::ingress::serve(l, host.runtime().clone(), limits, rx));
            tracing::info!(%addr, "ingress serving http apps");
        }
        let mut metrics_addr = None;
        if let Some(l) = metrics {
            let addr = l.local_addr()?;
            metrics_addr = Some(addr);
            let source = crate::exporter::HostMetrics {
                host: host.clone(),
                tunnel,
            };
            let limits = prom::Limits::default();
            tokio::spawn(prom::serve(
                l,
                std::sync::Arc::new(source),
                limits,
                shutdown.subscribe(),
            ));
            tracing::info!(%addr, "serving Prometheus metrics at /metrics");
        }
        tracing::info!(data = %dir.display(), socket = %socket.display(), name = %host.config.name, "hostd serving");
        Ok(Daemon {
            host,
            http: http_addr,
            metrics: metrics_addr,
            shutdown,
            control,
            _lock: lock,
        })
    }

    /// Becomes true when the daemon stops.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops accepting commands and requests, stops every instance, flushes
    /// logs — within [`SHUTDOWN_GRACE`] whatever the apps' stop grace says:
    /// instances still running then end with the process.
    pub async fn stop(self) {
        tracing::info!("shutting down: stopping instances");
        let _ = self.shutdown.send(true);
        let _ = self.control.await;
        if tokio::time::timeout(SHUTDOWN_GRACE, self.host.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "instances still running after {} s end with the daemon",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        self.host.logs.flush().await;
        let _ = std::fs::remove_file(&self.host.config.socket);
    }
}

pub async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
