//! `hostd agent --gateway ADDR --host-key FILE`: a host that joins a fleet.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::serve::{Daemon, parse_http, wait_for_signal};
use crate::agent::{self, AgentConfig};
use crate::config::{self, HostConfig};
use ssh_client::{self as ssh, Target};

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// This host's SSH key (created, with FILE.pub, if missing); enroll it at the gateway with role `host`.
    #[arg(long, value_name = "FILE")]
    pub host_key: PathBuf,
    /// This host's name in the fleet (default: the hostname).
    #[arg(long)]
    pub name: Option<String>,
    /// A label for placement (repeatable); `arch` is added automatically.
    #[arg(long, value_name = "K=V", value_parser = parse_label)]
    pub label: Vec<(String, String)>,
    /// Ingress address for http apps (`none` to serve no http).
    #[arg(long, value_name = "ADDR", default_value = config::DEFAULT_HTTP)]
    pub http: String,
    /// Serve Prometheus metrics at http://ADDR/metrics, the tunnel's state
    /// included (default: off).
    #[arg(long, value_name = "ADDR", value_parser = super::serve::parse_metrics)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Log records kept per app before the oldest are dropped, MiB.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub log_cap_mb: u64,
    #[command(flatten)]
    pub ingress: super::serve::IngressArgs,
    #[command(flatten)]
    pub pool: super::serve::PoolArgs,
    /// The key that seals apps' config secrets at rest (default DATA/secrets.key).
    #[arg(long, value_name = "FILE")]
    pub secrets_key: Option<std::path::PathBuf>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

pub async fn execute(
    args: AgentArgs,
    data: Option<PathBuf>,
    gateway: Option<String>,
) -> anyhow::Result<()> {
    let gateway = gateway
        .context("hostd agent needs --gateway [user@]host[:port] (or CRANEFLEET_GATEWAY)")?;
    let dir = config::data_dir(data.as_deref());
    let mut cfg = HostConfig::new(dir.clone(), parse_http(&args.http)?, args.name)?;
    cfg.log_cap_bytes = args.log_cap_mb.max(1) << 20;
    cfg.metrics = args.metrics;
    cfg.labels = args.label.into_iter().collect();
    cfg.labels
        .insert("arch".into(), std::env::consts::ARCH.into());
    let targets = Target::parse_list(&gateway, "host")?;
    let (key, created) = ssh::load_or_create_key(&args.host_key)?;
    if created {
        eprintln!(
            "created the host key {}; enroll it on the gateway:\n  ssh-gateway keys add --role host {} --name {}",
            args.host_key.display(),
            ssh::pub_path(&args.host_key).display(),
            cfg.name
        );
    }
    cfg.ingress = args.ingress.config();
    cfg.max_instances = args.pool.max_instances;
    if let Some(k) = args.secrets_key {
        cfg.secrets_key = k;
    }
    let tunnel = agent::TunnelState::new(&gateway);
    let daemon = Daemon::start(cfg, Some(tunnel.clone())).await?;
    let agent = tokio::spawn(agent::run(
        daemon.host.clone(),
        AgentConfig {
            targets,
            key,
            pin: dir.join("gateway_host_key"),
            tunnel,
        },
        daemon.shutdown_signal(),
    ));
    wait_for_signal().await?;
    daemon.stop().await;
    let _ = agent.await;
    Ok(())
}
