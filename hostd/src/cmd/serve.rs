//! `hostd serve [--data DIR] [--http ADDR]`: a stand-alone host.

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
    /// This host's name in `hosts`, `ps` and log records (default: the hostname).
    #[arg(long)]
    pub name: Option<String>,
    /// Log records kept per app before the oldest are dropped, MiB.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub log_cap_mb: u64,
    /// Largest artifact a deploy accepts, MiB.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_artifact_mb: u64,
}

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
        std::fs::remove_file(path).with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
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

pub async fn execute(args: ServeArgs, data: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = config::data_dir(data.as_deref());
    let mut cfg = HostConfig::new(dir.clone(), parse_http(&args.http)?, args.name)?;
    cfg.log_cap_bytes = args.log_cap_mb.max(1) << 20;
    cfg.max_artifact_bytes = args.max_artifact_mb.max(1) << 20;
    let _lock = lock_data_dir(&dir)?;
    let listener = bind_socket(&cfg.socket)?;
    let socket = cfg.socket.clone();
    let host = Host::open(cfg).await.context("cannot open the host's state")?;
    let (shutdown_tx, shutdown) = watch::channel(false);
    let control = tokio::spawn(crate::control::serve(listener, host.clone(), shutdown.clone()));
    tracing::info!(data = %dir.display(), socket = %socket.display(), name = %host.config.name, "hostd serving");
    wait_for_signal().await?;
    tracing::info!("shutting down: stopping instances");
    let _ = shutdown_tx.send(true);
    let _ = control.await;
    host.shutdown().await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
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
